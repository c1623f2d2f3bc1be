"""Every internal service of the session, called as the cluster's identities would call it:
without an identity the connection is refused, an identity the allow-list does not name is
PERMISSION_DENIED `CALLER_NOT_ALLOWED`, the caller it names is answered. The gateway is no
caller of any of them. (The rules themselves: libs/cumulo_platform/tests/test_caller_identity.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_devstack.testing import identity
from cumulo_platform.identity import GATEWAY, OPERATOR

# (service fixture, service name, stub, method, request maker, allowed caller, refused callers)
Case = tuple[str, str, Callable[[Any], Any], str, Callable[[], Any], str, tuple[str, ...]]

CASES: list[Case] = [
    ("auth", "auth", auth_pb2_grpc.AuthInternalServiceStub, "GetSigningKeys", auth_pb2.GetSigningKeysRequest, "blob", (GATEWAY, OPERATOR)),
    (
        "auth", "auth", auth_pb2_grpc.AuthInternalServiceStub, "SetAccountRoles",
        lambda: auth_pb2.SetAccountRolesRequest(account_id=str(uuid.uuid4()), roles=["moderator"], reason="identity test", actor="test"),
        OPERATOR, ("moderation", "blob", GATEWAY),
    ),
    (
        "blob", "blob", blob_pb2_grpc.BlobInternalServiceStub, "DescribePaths",
        lambda: blob_pb2.DescribePathsRequest(account_id=str(uuid.uuid4())), "moderation", ("sync", GATEWAY),
    ),
    (
        "blob", "blob", blob_pb2_grpc.BlobInternalServiceStub, "BlockContent",
        lambda: blob_pb2.BlockContentRequest(sha256=["ab" * 32], blocked=False, reason="identity test", actor="test"),
        "moderation", ("sync", "lifecycle", GATEWAY, OPERATOR),
    ),
    (
        "blob", "blob", blob_pb2_grpc.BlobInternalServiceStub, "PurgeAccount",
        lambda: blob_pb2.PurgeAccountRequest(account_id=str(uuid.uuid4())), "lifecycle", ("moderation", "sync", GATEWAY, OPERATOR),
    ),
    ("lifecycle", "lifecycle", lifecycle_pb2_grpc.LifecycleInternalServiceStub, "GetReport", lifecycle_pb2.GetReportRequest, OPERATOR, ("blob", GATEWAY)),
    (
        "lifecycle", "lifecycle", lifecycle_pb2_grpc.LifecycleInternalServiceStub, "Sweep",
        lambda: lifecycle_pb2.SweepRequest(dry_run=True), OPERATOR, ("moderation", "auth", GATEWAY),
    ),
    *[
        (
            fixture, fixture, evidence_pb2_grpc.EvidenceInternalServiceStub, "ExportAccount",
            lambda: evidence_pb2.ExportAccountRequest(account_id=str(uuid.uuid4()), export_id=str(uuid.uuid4())),
            "moderation", ("blob", "lifecycle", GATEWAY),
        )
        for fixture in ("sync", "locator")
    ],
]


@pytest.fixture
def targets(backends: dict[str, str]) -> dict[str, str]:
    """Where each of the session's services listens."""
    return backends


def _id(case: Case) -> str:
    return f"{case[1]}.{case[3]}"


async def _call(target: str, service: str, stub: Any, method: str, request: Any, caller: str) -> Any:
    async with identity(caller).channel(target, service) as channel:
        return await getattr(stub(channel), method)(request, timeout=20)


@pytest.mark.parametrize("case", CASES, ids=_id)
async def test_the_allowed_caller_is_answered(targets, case: Case):
    """By the method itself: its answer, or its own NOT_FOUND for the made-up account."""
    fixture, service, stub, method, make, allowed, _ = case
    target = targets[fixture]
    try:
        await _call(target, service, stub, method, make(), allowed)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        assert "no such account" in (error.details() or ""), error


@pytest.mark.parametrize("case", CASES, ids=_id)
async def test_another_identity_is_refused_naming_the_rule(targets, case: Case):
    fixture, service, stub, method, make, _, refused = case
    target = targets[fixture]
    for caller in refused:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _call(target, service, stub, method, make(), caller)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, caller
        assert f"{caller} may not call" in (caught.value.details() or "")


@pytest.mark.parametrize("fixture", ["auth", "blob", "lifecycle", "sync", "locator", "moderation"])
async def test_a_call_without_an_identity_never_reaches_the_service(targets, infra, fixture):
    """TLS that trusts the service but proves nothing, and plaintext: the handshake refuses both."""
    target = targets[fixture]
    credentials = grpc.ssl_channel_credentials(root_certificates=(infra.identities / "ca.crt").read_bytes())
    channels = [
        grpc.aio.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", fixture)]),
        grpc.aio.insecure_channel(target),
    ]
    for channel in channels:
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_refused_call_changed_nothing(auth, people):
    """Moderation's identity asking auth to make someone a moderator: refused, and the
    person's roles are as they were (their next token carries none)."""
    person = await people.new("phone")
    request = auth_pb2.SetAccountRolesRequest(account_id=person.account_id, roles=["moderator"], reason="takeover", actor="x")
    with pytest.raises(grpc.aio.AioRpcError):
        await _call(auth.target, "auth", auth_pb2_grpc.AuthInternalServiceStub, "SetAccountRoles", request, "moderation")
    assert list((await person.client.whoami()).account.roles) == []
