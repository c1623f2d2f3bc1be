"""Generate Python code and typed stubs from protos/ into gen/python/, the descriptor set
of the public protos (gen/descriptors/cumulo_public.pb) that the gateway's JSON transcoder reads,
and the web console's TypeScript messages and service descriptors (web/src/gen/, by
protoc-gen-es from web/node_modules) from that same public set: the console cannot even name
an internal service.

`python scripts/protogen.py` regenerates; `--check` regenerates into a scratch
folder and fails if the committed files differ (stale generated code).
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import pathlib
import shutil
import sys
import tempfile

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
PYTHON = "python"
DESCRIPTORS = "descriptors"
PUBLIC_DESCRIPTOR_SET = "cumulo_public.pb"
WEB_GEN = ROOT / "web" / "src" / "gen"
PROTOC_GEN_ES = ROOT / "web" / "node_modules" / ".bin" / "protoc-gen-es"
# What protobuf-es ships itself (@bufbuild/protobuf/wkt): not generated again.
WELL_KNOWN = "google/protobuf/"
# Always in the public descriptor set: what errors carry (google.rpc.Status and its details),
# so that the gateway can write an error's details as JSON.
ERROR_PROTOS = ("google/rpc/status.proto", "google/rpc/error_details.proto")


def _include_paths() -> list[str]:
    """protos/, protobuf's well-known types (shipped with grpc_tools) and googleapis'
    google/api and google/rpc protos (shipped with googleapis-common-protos)."""
    import grpc_tools

    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    spec = importlib.util.find_spec("google.api")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("googleapis-common-protos is not installed (google/api/annotations.proto)")
    googleapis = next(
        pathlib.Path(p).parent.parent for p in spec.submodule_search_locations if (pathlib.Path(p) / "annotations.proto").exists()
    )
    return [f"-I{PROTOS}", f"-I{well_known}", f"-I{googleapis}"]


def _protoc(*args: str) -> None:
    if protoc.main(["protoc", *_include_paths(), *args]) != 0:
        raise SystemExit("protoc failed")


def _sources() -> list[str]:
    return sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto"))


def generate_python(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _protoc(f"--python_out={out}", f"--grpc_python_out={out}", f"--mypy_out={out}", f"--mypy_grpc_out={out}", *_sources())
    # Regular packages, so that tools and setuptools find them without namespace magic.
    for folder in [out / "cumulo", *(p for p in (out / "cumulo").rglob("*") if p.is_dir())]:
        if folder.name != "__pycache__":
            (folder / "__init__.py").touch()


def public_services() -> set[str]:
    """The gRPC services the gateway routes, from the service registry (the one list)."""
    sys.path.insert(0, str(ROOT / "libs"))
    from cumulo_platform.registry import public_routes

    return set(public_routes())


def public_descriptor_set(scratch: pathlib.Path) -> bytes:
    """The files that define public services, with everything they import and the error
    protos: internal services are left out of it (those files' messages stay), so nothing
    that reads the set can map a request to one. Serialized deterministically."""
    everything = scratch / "all.pb"
    _protoc(f"--descriptor_set_out={everything}", "--include_imports", *_sources(), *ERROR_PROTOS)
    files = descriptor_pb2.FileDescriptorSet.FromString(everything.read_bytes()).file
    by_name = {f.name: f for f in files}
    public = public_services()
    roots = [f.name for f in files if any(f"{f.package}.{s.name}" in public for s in f.service)]
    declared = {f"{by_name[name].package}.{s.name}" for name in roots for s in by_name[name].service}
    if missing := public - declared:
        raise SystemExit(f"no proto defines the public service(s) {', '.join(sorted(missing))}")
    wanted: set[str] = set()
    pending = [*roots, *ERROR_PROTOS]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(by_name[name].dependency)
    kept = descriptor_pb2.FileDescriptorSet()
    for file in files:  # protoc's order: every file after the files it imports
        if file.name in wanted:
            copy = kept.file.add()
            copy.CopyFrom(file)
            del copy.service[:]
            copy.service.extend(s for s in file.service if f"{file.package}.{s.name}" in public)
    return kept.SerializeToString(deterministic=True)


def generate_typescript(public_set: pathlib.Path, out: pathlib.Path) -> None:
    if not PROTOC_GEN_ES.exists():
        raise SystemExit("web/node_modules is not installed: run `make web-deps` (npm ci in web/)")
    files = descriptor_pb2.FileDescriptorSet.FromString(public_set.read_bytes()).file
    names = [f.name for f in files if not f.name.startswith(WELL_KNOWN)]
    out.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"--descriptor_set_in={public_set}", f"--plugin=protoc-gen-es={PROTOC_GEN_ES}"]
    if protoc.main([*args, f"--es_out={out}", "--es_opt=target=ts,import_extension=none", *names]) != 0:
        raise SystemExit("protoc-gen-es failed")


def generate(gen: pathlib.Path, web_gen: pathlib.Path) -> None:
    generate_python(gen / PYTHON)
    (gen / DESCRIPTORS).mkdir(parents=True, exist_ok=True)
    public_set = gen / DESCRIPTORS / PUBLIC_DESCRIPTOR_SET
    with tempfile.TemporaryDirectory() as scratch:
        public_set.write_bytes(public_descriptor_set(pathlib.Path(scratch)))
    generate_typescript(public_set, web_gen)


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
    parser.add_argument("--check", action="store_true", help="fail if gen/ is stale")
    args = parser.parse_args()
    if not args.check:
        shutil.rmtree(GEN / PYTHON / "cumulo", ignore_errors=True)
        shutil.rmtree(GEN / DESCRIPTORS, ignore_errors=True)
        shutil.rmtree(WEB_GEN, ignore_errors=True)
        generate(GEN, WEB_GEN)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = pathlib.Path(scratch)
        generate(fresh, fresh / "web")
        diffs = [d for folder in (PYTHON, DESCRIPTORS) for d in differences(GEN / folder, fresh / folder)]
        diffs += differences(WEB_GEN, fresh / "web")
    if diffs:
        print("gen/ or web/src/gen/ is stale; run `make protos`:", *diffs, sep="\n  ", file=sys.stderr)
        return 1
    print("gen/ and web/src/gen/ are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
