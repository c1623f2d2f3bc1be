"""The public edge: what it routes, what it refuses, what it adds."""

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.testing import bare_rpc_error, open_channel
from cumulo_gateway.envoy_config import JSON_PREFIX, render
from cumulo_gateway.routes import PUBLIC_SERVICES
from cumulo_platform.interceptors import _client_address
from cumulo_platform.registry import SERVICES
from cumulo_sdk import Cumulo, CumuloRpcError


async def test_call_without_client_id_is_refused_at_the_edge(gateway):
    err = await bare_rpc_error(gateway, auth_pb2_grpc.AuthServiceStub, "GetTerms", auth_pb2.GetTermsRequest(), timeout=5)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "x-cumulo-client-id" in err.details()


async def test_unknown_client_id_is_refused_by_the_service(gateway):
    async with Cumulo(gateway, client_id="not-a-registered-app") as stranger:
        with pytest.raises(CumuloRpcError) as caught:
            await stranger.terms_version()
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.reason == "CLIENT_NOT_AUTHORIZED"


async def test_registered_client_is_routed(client):
    assert await client.terms_version()


async def test_internal_services_are_not_routed(gateway):
    err = await bare_rpc_error(
        gateway,
        auth_pb2_grpc.AuthInternalServiceStub,
        "GetSigningKeys",
        auth_pb2.GetSigningKeysRequest(),
        metadata=[("x-cumulo-client-id", "cumulo-cli")],
        timeout=5,
    )
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_internal_service_is_reachable_directly_by_a_caller_it_allows(auth):
    async with open_channel(auth.target, as_="blob") as channel:
        keys = await auth_pb2_grpc.AuthInternalServiceStub(channel).GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=5)
    assert keys.keys


async def test_gateway_sets_a_request_id_that_errors_carry(client):
    with pytest.raises(CumuloRpcError) as caught:
        await client.call(client.auth.Login, auth_pb2.LoginRequest(login="", password="x"), authenticated=False)
    assert caught.value.field == "login"
    assert len(caught.value.request_id) >= 16


async def test_gateway_replaces_a_client_chosen_request_id(gateway):
    err = await bare_rpc_error(
        gateway,
        auth_pb2_grpc.AuthServiceStub,
        "Login",
        auth_pb2.LoginRequest(login="", password="x"),
        metadata=[("x-cumulo-client-id", "cumulo-cli"), ("x-request-id", "chosen-by-client")],
        timeout=5,
    )
    request_ids = [v for k, v in err.trailing_metadata() if k == "x-request-id"]
    assert request_ids and request_ids[0] != "chosen-by-client"


def test_every_public_service_has_a_route_and_internal_ones_none():
    config = render(listen_host="127.0.0.1", listen_port=1, admin_port=2, backends={name: "127.0.0.1:3" for name in SERVICES}, tls=None)
    routes = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "route_config"
    ]["virtual_hosts"][0]["routes"]
    # The JSON paths' preflights, OPTIONS only, are the CORS filter's to answer (none is forwarded).
    json_preflights = [r for r in routes if r["match"].get("prefix") == JSON_PREFIX]
    assert [r["match"]["headers"] for r in json_preflights] == [[{"name": ":method", "string_match": {"exact": "OPTIONS"}}]]
    forwarded = {r["match"].get("prefix") or r["match"]["path"] for r in routes if "route" in r and r not in json_preflights}
    # Each service's prefix, and some of its methods on routes of their own (streams, limits).
    assert {p for p in forwarded if p.endswith("/")} == {f"/{service}/" for service in PUBLIC_SERVICES}
    assert all(p.split("/")[1] in PUBLIC_SERVICES for p in forwarded)
    assert not any("Internal" in prefix for prefix in forwarded)
    # Forwarding requires the client-id header (a browser's CORS preflight aside).
    for r in routes:
        if "route" in r and r["match"]["headers"][0]["name"] != ":method":
            assert r["match"]["headers"] == [{"name": "x-cumulo-client-id", "present_match": True}]


def test_render_refuses_a_missing_backend():
    with pytest.raises(ValueError, match="auth"):
        render(listen_host="127.0.0.1", listen_port=1, admin_port=2, backends={}, tls=None)


@pytest.mark.parametrize(
    ("forwarded", "peer", "expected"),
    [
        ("198.51.100.7, 10.0.0.1", "ipv4:127.0.0.1:5000", "10.0.0.1"),  # the gateway's entry is the last
        ("", "ipv4:192.0.2.4:5000", "192.0.2.4"),
        ("", "ipv6:[::1]:5000", "::1"),
    ],
)
def test_client_address_is_the_gateways_entry(forwarded, peer, expected):
    metadata = {"x-forwarded-for": forwarded} if forwarded else {}
    assert _client_address(metadata, peer) == expected
