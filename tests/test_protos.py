"""The contracts: generated code is fresh (make test checks that before pytest) and the protos
pass buf's STANDARD lint rules."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
BUF_VERSION = "1.75.0"


def _buf() -> pathlib.Path:
    buf = TOOLS / "node_modules" / ".bin" / "buf"
    if buf.exists():
        return buf
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so buf cannot be; install Node.js to lint the protos")
    subprocess.run(
        [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(TOOLS), f"@bufbuild/buf@{BUF_VERSION}"],
        check=True,
        timeout=300,
    )
    return buf


def test_protos_pass_buf_lint():
    done = subprocess.run([str(_buf()), "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_code_is_fresh():
    done = subprocess.run(
        ["python", str(ROOT / "scripts" / "protogen.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": f"{pathlib.Path(__import__('sys').executable).parent}:/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
