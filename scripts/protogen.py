"""Generate Python code and typed stubs from protos/ into gen/python/.

`python scripts/protogen.py` regenerates; `--check` regenerates into a scratch
folder and fails if the committed code differs (stale generated code).
"""

from __future__ import annotations

import argparse
import filecmp
import pathlib
import shutil
import sys
import tempfile

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "gen" / "python"


def generate(out: pathlib.Path) -> None:
    import grpc_tools

    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Regular packages, so that tools and setuptools find them without namespace magic.
    for folder in [out / "cumulo", *(p for p in (out / "cumulo").rglob("*") if p.is_dir())]:
        if folder.name != "__pycache__":
            (folder / "__init__.py").touch()


def differences(a: pathlib.Path, b: pathlib.Path) -> list[str]:
    diffs: list[str] = []
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    diffs += [f"missing: {p}" for p in sorted(files_b - files_a)]
    diffs += [f"unexpected: {p}" for p in sorted(files_a - files_b)]
    diffs += [
        f"differs: {p}"
        for p in sorted(files_a & files_b)
        if not filecmp.cmp(a / p, b / p, shallow=False)
    ]
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if gen/python is stale")
    args = parser.parse_args()
    if not args.check:
        shutil.rmtree(OUT / "cumulo", ignore_errors=True)
        generate(OUT)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = pathlib.Path(scratch)
        generate(fresh)
        diffs = differences(OUT, fresh)
    if diffs:
        print("gen/python is stale; run `make protos`:", *diffs, sep="\n  ", file=sys.stderr)
        return 1
    print("gen/python is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
