"""The caller's identity at the door (cumulo_platform.identity, cumulo_platform.trust): a
service's port takes mutual TLS with a certificate of the internal CA only, and each method
only from the identities its allow-list names. Against a server of the test's own with the
platform's interceptor and the real allow-list; what every real service does is
tests/test_service_identity.py's."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cumulo_devstack.tls import ensure_identities
from cumulo_platform.clients import ClientRegistry
from cumulo_platform.identity import GATEWAY, OPERATOR, Identity, IdentityError, caller
from cumulo_platform.interceptors import CallInterceptor, current_call
from cumulo_platform.tokens import KeyCache, TokenVerifier
from cumulo_platform.trust import INTERNAL_CALLERS, allowed_callers, readme_table

ROLES = "/cumulo.auth.v1.AuthInternalService/SetAccountRoles"
UNLISTED = "/cumulo.auth.v1.AuthInternalService/BecomeEveryone"
TERMS = "/cumulo.auth.v1.AuthService/GetTerms"  # public, anonymous


@dataclasses.dataclass
class Door:
    target: str  # mutual TLS
    plaintext: str  # the same interceptor without TLS (what a misconfigured port would be)
    identities: pathlib.Path


async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return json.dumps({"caller": caller(context), "seen": current_call().caller}).encode()


@pytest.fixture(scope="module")
async def door(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Door]:
    identities = ensure_identities(tmp_path_factory.mktemp("identity"), ["auth", "moderation", "blob", GATEWAY, OPERATOR])

    async def no_keys() -> dict[str, bytes]:
        return {}

    async def registered(client_id: str) -> bool:
        return client_id == "cumulo-cli"

    interceptor = CallInterceptor(
        verifier=TokenVerifier(KeyCache(no_keys)), clients=ClientRegistry(registered), anonymous_methods=[TERMS]
    )
    server = grpc.aio.server(interceptors=[interceptor])
    handler = grpc.unary_unary_rpc_method_handler(who)
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("cumulo.auth.v1.AuthInternalService", {"SetAccountRoles": handler, "BecomeEveryone": handler}),
        grpc.method_handlers_generic_handler("cumulo.auth.v1.AuthService", {"GetTerms": handler}),
    ))
    health_pb2_grpc.add_HealthServicer_to_server(_Healthy(), server)
    port = server.add_secure_port("127.0.0.1:0", Identity.load(identities, "auth").server_credentials())
    plain = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Door(f"127.0.0.1:{port}", f"127.0.0.1:{plain}", identities)
    finally:
        await server.stop(None)


class _Healthy(health_pb2_grpc.HealthServicer):
    async def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def call_as(door: Door, name: str, path: str = ROLES) -> dict[str, str]:
    async with Identity.load(door.identities, name).channel(door.target, "auth") as channel:
        answer = await channel.unary_unary(path)(b"", metadata=(("x-cumulo-client-id", "cumulo-cli"),), timeout=10)
    return json.loads(answer)


async def refusal(channel: grpc.aio.Channel, path: str = ROLES) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(path)(b"", metadata=(("x-cumulo-client-id", "cumulo-cli"),), timeout=10)
    return caught.value


async def test_the_allowed_caller_is_let_in_and_its_identity_is_known_to_the_method(door):
    assert await call_as(door, OPERATOR) == {"caller": OPERATOR, "seen": OPERATOR}


@pytest.mark.parametrize("name", ["moderation", "blob", GATEWAY])
async def test_an_identity_not_on_the_list_is_refused_by_name(door, name, capsys):
    async with Identity.load(door.identities, name).channel(door.target, "auth") as channel:
        refused = await refusal(channel)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"{name} may not call {ROLES}" in (refused.details() or "")


async def test_a_method_nobody_is_listed_for_is_refused_to_everyone_even_the_operator(door):
    async with Identity.load(door.identities, OPERATOR).channel(door.target, "auth") as channel:
        refused = await refusal(channel, UNLISTED)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_public_methods_are_for_the_gateway_alone(door):
    assert (await call_as(door, GATEWAY, TERMS))["caller"] == GATEWAY
    async with Identity.load(door.identities, "blob").channel(door.target, "auth") as channel:
        refused = await refusal(channel, TERMS)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_without_a_certificate_the_handshake_itself_is_refused(door):
    ca = (door.identities / "ca.crt").read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)  # trusts the server, proves nothing
    async with grpc.aio.secure_channel(door.target, credentials, options=[("grpc.ssl_target_name_override", "auth")]) as channel:
        refused = await refusal(channel)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_of_another_ca_with_a_trusted_name_is_refused(door, tmp_path):
    """An attacker's own CA can name its certificate "operator": the door trusts one CA only."""
    forged = Identity.load(ensure_identities(tmp_path / "forged", [OPERATOR]), OPERATOR)
    own = (door.identities / "ca.crt").read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=own, private_key=forged.key, certificate_chain=forged.cert)
    async with grpc.aio.secure_channel(door.target, credentials, options=[("grpc.ssl_target_name_override", "auth")]) as channel:
        refused = await refusal(channel)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_server_that_is_not_the_service_named_is_not_trusted(door):
    """The client checks the other side too: auth's certificate does not pass for blob's."""
    async with Identity.load(door.identities, OPERATOR).channel(door.target, "blob") as channel:
        refused = await refusal(channel)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE


async def test_on_a_port_without_tls_the_interceptor_refuses_for_want_of_an_identity(door):
    async with grpc.aio.insecure_channel(door.plaintext) as channel:
        refused = await refusal(channel)
        public = await refusal(channel, TERMS)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert refused.code() == public.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "needs a caller identity" in (refused.details() or "")
    assert health.status == health_pb2.HealthCheckResponse.SERVING  # health stays open to probes


def test_every_internal_method_of_every_service_has_its_callers_listed():
    """A new internal method is closed until someone lists who needs it: this names it."""
    import importlib

    listed = set(INTERNAL_CALLERS)
    found = set()
    for module in ("auth", "blob", "lifecycle", "evidence", "takeout"):
        pb = importlib.import_module(f"cumulo.{module}.v1.{module}_pb2")
        for service in pb.DESCRIPTOR.services_by_name.values():
            if service.name.endswith("InternalService"):
                found |= {f"/{service.full_name}/{method.name}" for method in service.methods}
    assert found - listed == set(), "internal methods with no callers listed (refused to all)"
    assert listed - found == set(), "callers listed for methods that do not exist"


def test_the_gateway_is_no_caller_of_any_internal_method():
    assert all(GATEWAY not in callers for callers in INTERNAL_CALLERS.values())
    assert allowed_callers("/grpc.health.v1.Health/Check") is None


def test_the_readme_shows_the_allow_list_as_it_is():
    readme = (pathlib.Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert readme_table() in readme


def test_an_identity_folder_that_is_not_there_is_named(tmp_path):
    with pytest.raises(IdentityError, match="CUMULO_IDENTITY_DIR"):
        Identity.load("", "auth")
    with pytest.raises(IdentityError, match="no folder auth/"):
        Identity.load(tmp_path, "auth")
    (tmp_path / "auth").mkdir()
    with pytest.raises(IdentityError, match="ca.crt"):
        Identity.load(tmp_path, "auth")
