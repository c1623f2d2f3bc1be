"""A standard tool, grpcurl (pinned in the dev dependencies), with the public descriptor set
that `make protos` builds: it lists the public services and calls them through the gateway
over TLS; the internal services, named in a descriptor set of their own, stay unreachable,
and so does reflection. The README's grpcurl block works as pasted."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

from cumulo.auth.v1 import auth_pb2
from cumulo.blob.v1 import blob_pb2
from cumulo.lifecycle.v1 import lifecycle_pb2
from cumulo.locator.v1 import locator_pb2
from cumulo.moderation.v1 import moderation_pb2
from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.testing import PASSWORD, unique_email
from cumulo_devstack.testing.readme import shell_blocks
from cumulo_gateway.routes import PUBLIC_SERVICES

ROOT = pathlib.Path(__file__).resolve().parents[2]
PUBLIC_SET = ROOT / "gen" / "descriptors" / "cumulo_public.pb"
GRPCURL = pathlib.Path(sys.prefix) / "bin" / "grpcurl"
CLIENT = ["-H", "x-cumulo-client-id: cumulo-cli"]
INTERNAL_CALLS = [
    ("cumulo.auth.v1.AuthInternalService/GetSigningKeys", "{}"),
    ("cumulo.auth.v1.AuthInternalService/SetAccountRoles", '{"account_id": "00000000-0000-0000-0000-000000000001"}'),
    ("cumulo.blob.v1.BlobInternalService/PurgeAccount", '{"account_id": "00000000-0000-0000-0000-000000000001"}'),
]


@dataclasses.dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def grpcurl(*args: str) -> Ran:
    done = await asyncio.to_thread(
        subprocess.run, [str(GRPCURL), *args], capture_output=True, text=True, timeout=60
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def _file_set(*files: FileDescriptor) -> bytes:
    """The files and everything they import, as a FileDescriptorSet (imports first)."""
    seen: dict[str, FileDescriptor] = {}

    def add(file: FileDescriptor) -> None:
        if file.name in seen:
            return
        for dependency in file.dependencies:
            add(dependency)
        seen[file.name] = file

    for file in files:
        add(file)
    return descriptor_pb2.FileDescriptorSet(
        file=[descriptor_pb2.FileDescriptorProto.FromString(f.serialized_pb) for f in seen.values()]
    ).SerializeToString()


@pytest.fixture(scope="module")
def every_set(tmp_path_factory) -> pathlib.Path:
    """A descriptor set with the internal services too (what an attacker could build from protos/)."""
    path = tmp_path_factory.mktemp("protoset") / "cumulo_all.pb"
    path.write_bytes(
        _file_set(*(m.DESCRIPTOR for m in (auth_pb2, blob_pb2, lifecycle_pb2, locator_pb2, moderation_pb2, sync_pb2)))
    )
    return path


def _to(gateway: str, *args: str, protoset: pathlib.Path = PUBLIC_SET) -> list[str]:
    return ["-cacert", os.environ["CUMULO_CA"], "-protoset", str(protoset), *CLIENT, *args, gateway]


async def test_the_public_descriptor_set_lists_the_public_services_only():
    listed = await grpcurl("-protoset", str(PUBLIC_SET), "list")
    assert listed.returncode == 0, listed
    services = set(listed.stdout.split())
    assert services == set(PUBLIC_SERVICES), services
    assert not any("Internal" in s for s in services)


async def test_grpcurl_calls_an_anonymous_and_an_authenticated_method_over_tls(gateway, client):
    terms = await grpcurl(*_to(gateway), "cumulo.auth.v1.AuthService/GetTerms")
    assert terms.returncode == 0, terms
    assert json.loads(terms.stdout)["version"] == await client.terms_version()

    email = unique_email()
    await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    login = json.dumps({"login": email, "password": PASSWORD, "device_name": "grpcurl"})
    answer = await grpcurl(*_to(gateway, "-d", login), "cumulo.auth.v1.AuthService/Login")
    assert answer.returncode == 0, answer
    token = json.loads(answer.stdout)["tokens"]["accessToken"]
    usage = await grpcurl(*_to(gateway, "-H", f"authorization: Bearer {token}"), "cumulo.blob.v1.BlobService/GetUsage")
    assert usage.returncode == 0, usage
    assert int(json.loads(usage.stdout)["quota"]) > 0


async def test_grpcurl_sees_the_errors_reason_and_field(gateway):
    bad = await grpcurl(*_to(gateway, "-format-error", "-d", '{"login": "", "password": "x"}'), "cumulo.auth.v1.AuthService/Login")
    assert bad.returncode == 64 + 3 and bad.stdout == "", bad  # grpcurl's exit code: 64 + the status code
    error = json.loads(bad.stderr)
    assert error["code"] == 3  # INVALID_ARGUMENT
    reasons = [d["reason"] for d in error["details"] if "reason" in d]
    fields = [v["field"] for d in error["details"] for v in d.get("fieldViolations", [])]
    assert (reasons, fields) == (["INVALID_ARGUMENT"], ["login"]), error


async def test_no_token_is_refused_to_grpcurl_as_to_anyone(gateway):
    refused = await grpcurl(*_to(gateway), "cumulo.blob.v1.BlobService/GetUsage")
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr, refused


@pytest.mark.parametrize(("method", "body"), INTERNAL_CALLS)
async def test_internal_methods_are_unreachable_through_the_gateway(gateway, every_set, method, body):
    answer = await grpcurl(*_to(gateway, "-d", body, protoset=every_set), method)
    assert answer.returncode != 0, answer
    assert "Unimplemented" in answer.stderr, answer
    assert answer.stdout == ""


async def test_the_gateway_serves_no_reflection(gateway):
    answer = await grpcurl("-cacert", os.environ["CUMULO_CA"], *CLIENT, gateway, "list")
    assert answer.returncode != 0, answer


async def test_a_plaintext_grpcurl_is_refused(gateway):
    answer = await grpcurl("-plaintext", "-protoset", str(PUBLIC_SET), *CLIENT, gateway, "cumulo.auth.v1.AuthService/GetTerms")
    assert answer.returncode != 0 and answer.stdout == "", answer


async def test_the_readme_grpcurl_lines_work_as_pasted(gateway, client, tmp_path):
    """Run by bash from the repository's root against the session's gateway (its address and
    CA in place of make run's), for a fresh account of the README's password."""
    (block,) = shell_blocks("### grpcurl")
    assert block.count(".venv/bin/grpcurl ") == 4
    email = unique_email()
    await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    script = (
        block.replace(".venv/bin/grpcurl", str(GRPCURL))
        .replace("127.0.0.1:8080", gateway)
        .replace("var/tls/ca.pem", os.environ["CUMULO_CA"])
        .replace("alice@example.com", email)
    )
    done = await asyncio.to_thread(
        subprocess.run, ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "cumulo.blob.v1.BlobService" in done.stdout  # list
    assert '"version"' in done.stdout  # GetTerms
    assert '"quota"' in done.stdout  # the authenticated GetUsage
