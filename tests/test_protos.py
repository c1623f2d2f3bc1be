"""The contracts: generated code (and the gateway's descriptor set) is fresh (make test checks that
before pytest) and the protos pass buf's STANDARD lint rules."""

import importlib.util
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


def _googleapis() -> pathlib.Path:
    """Where googleapis-common-protos installed google/api and google/rpc (the protos import
    google/api/annotations.proto; scripts/protogen.py includes the same folder)."""
    spec = importlib.util.find_spec("google.api")
    assert spec is not None and spec.submodule_search_locations
    return pathlib.Path(next(iter(spec.submodule_search_locations))).parent.parent


def test_protos_pass_buf_lint(tmp_path):
    """buf lints protos/ with buf.yaml's rules, in a workspace beside the installed googleapis
    protos (buf cannot reach its registry for them here), which it resolves imports from and
    does not lint."""
    config = (ROOT / "buf.yaml").read_text()
    assert "\n  - path: protos\n" in config
    (tmp_path / "buf.yaml").write_text(config.replace("\n  - path: protos\n", "\n  - path: protos\n  - path: googleapis\n"))
    (tmp_path / "protos").symlink_to(ROOT / "protos")
    for folder in ("api", "rpc"):
        target = tmp_path / "googleapis" / "google" / folder
        target.mkdir(parents=True)
        for proto in (_googleapis() / "google" / folder).glob("*.proto"):
            shutil.copy(proto, target)
    done = subprocess.run([str(_buf()), "lint", "protos"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
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
