"""The edge's own limits: a deadline for unary calls, idle limits for streams by kind, bounded
flow-control windows and memory, and a token bucket per client address for the expensive
anonymous calls, shown against a gateway of this module's own with the production defaults."""

import asyncio
import datetime as dt
import os

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_devstack.stack import running_gateway
from cumulo_devstack.testing import PASSWORD, unique_email
from cumulo_gateway.envoy_config import CLIENT_STREAM_WINDOW, CONNECTION_WINDOW, STREAM_WINDOW, EdgeLimits, render
from cumulo_gateway.methods import EXPENSIVE_ANONYMOUS, LONG_LIVED, public_methods
from cumulo_platform.registry import SERVICES
from cumulo_sdk import CumuloRpcError
from cumulo_sdk.transport import Transport

ATTACKER, VICTIM = "198.51.100.7", "203.0.113.9"


def _config() -> dict:
    return render(listen_host="127.0.0.1", listen_port=1, admin_port=2, backends={n: "127.0.0.1:3" for n in SERVICES}, tls=None)


def _routes(config: dict) -> list[dict]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return manager["route_config"]["virtual_hosts"][0]["routes"]


def test_unary_calls_have_a_deadline_and_streams_an_idle_limit_by_kind():
    routes = {
        r["match"].get("path") or r["match"]["prefix"]: r
        for r in _routes(_config())
        if "route" in r and r["match"]["headers"][0]["name"] != ":method"
    }
    for method in public_methods():
        route = routes.get(method.path) or routes[f"/{method.service}/"]
        if method.streaming:
            assert route["route"]["timeout"] == "0s", method.key  # a long upload is not cut off ...
            expected = "3600s" if method.key in LONG_LIVED else "60s"
            assert route["route"]["idle_timeout"] == expected, method.key  # ... a stalled one is
        else:
            assert route["route"]["timeout"] == "60s", method.key
    assert all("Internal" not in key for key in routes)


def test_flow_control_windows_and_memory_are_bounded():
    config = _config()
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    downstream = manager["http2_protocol_options"]
    assert downstream["initial_stream_window_size"] == CLIENT_STREAM_WINDOW < 16 * 2**20
    assert downstream["initial_connection_window_size"] == CONNECTION_WINDOW
    for cluster in config["static_resources"]["clusters"]:
        upstream = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert upstream["explicit_http_config"]["http2_protocol_options"]["initial_stream_window_size"] == STREAM_WINDOW
        assert cluster["circuit_breakers"]["thresholds"][0]["max_pending_requests"] > 0
    actions = {a["name"] for a in config["overload_manager"]["actions"]}
    assert {"envoy.overload_actions.reset_high_memory_stream", "envoy.overload_actions.stop_accepting_requests"} <= actions


def test_every_expensive_anonymous_method_is_public_and_limited_per_address():
    keys = {m.key for m in public_methods()}
    assert keys >= EXPENSIVE_ANONYMOUS
    limited = {r["match"]["path"] for r in _routes(_config()) if "typed_per_filter_config" in r}
    assert limited == {f"/{key}" for key in EXPENSIVE_ANONYMOUS}


@pytest.fixture(scope="module")
def limited_gateway(infra, backends):
    """A gateway with the production edge limits, trusting one proxy hop in front of it (so
    that a test can speak for two client addresses through x-forwarded-for)."""
    with running_gateway(infra.tls, infra.root, backends, EdgeLimits(trusted_hops=1), identities=infra.identities) as target:
        yield target


def _from(address: str) -> list[tuple[str, str]]:
    return [("x-cumulo-client-id", "cumulo-cli"), ("x-forwarded-for", address)]


async def _register(stub, address: str, email: str = "", password: str = PASSWORD) -> grpc.aio.AioRpcError | None:
    request = auth_pb2.RegisterRequest(
        email=email, password=password, birth_date=auth_pb2.Date(year=1990, month=5, day=17), accepted_terms_version="2026-11"
    )
    try:
        await stub.Register(request, metadata=_from(address), timeout=60)
    except grpc.aio.AioRpcError as error:
        return error
    return None


async def test_a_register_flood_from_one_address_is_cut_at_the_edge_while_another_address_signs_up(limited_gateway):
    transport = Transport(ca=os.environ["CUMULO_CA"])
    async with transport.channel(limited_gateway) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        terms = (await stub.GetTerms(auth_pb2.GetTermsRequest(), metadata=_from(VICTIM), timeout=30)).version
        # The flood: empty registrations (each refused by auth if it gets there) from one address.
        flood = await asyncio.gather(*(_register(stub, ATTACKER) for _ in range(60)))
        refused = [e for e in flood if e is not None and CumuloRpcError.from_rpc_error(e).reason == "EDGE_RATE_LIMITED"]
        assert refused, [e.details() for e in flood if e]
        error = CumuloRpcError.from_rpc_error(refused[0])
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.retry_after_seconds
        # Meanwhile (the attacker's bucket is empty) another address signs up and logs in.
        email = unique_email()
        request = auth_pb2.RegisterRequest(
            email=email, password=PASSWORD, birth_date=auth_pb2.Date(year=1990, month=5, day=17), accepted_terms_version=terms
        )
        await stub.Register(request, metadata=_from(VICTIM), timeout=60)
        login = await stub.Login(auth_pb2.LoginRequest(login=email, password=PASSWORD), metadata=_from(VICTIM), timeout=60)
        assert login.tokens.access_token
        # The attacker is still refused at once: its bucket refills a few a second, not at a burst.
        again = await _register(stub, ATTACKER)
        assert again is not None
        # ... and an authenticated call from the attacker's own address is not limited at all.
        metadata = [*_from(ATTACKER), ("authorization", f"Bearer {login.tokens.access_token}")]
        account = await stub.GetAccount(auth_pb2.GetAccountRequest(), metadata=metadata, timeout=30)
        assert account.account.email == email


async def test_the_edge_bucket_refills(limited_gateway):
    """Refused now is not refused for good: after a pause the address is served again."""
    transport = Transport(ca=os.environ["CUMULO_CA"])
    address = "192.0.2.77"
    async with transport.channel(limited_gateway) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        results = await asyncio.gather(*(_register(stub, address) for _ in range(40)))
        assert any(e is not None and CumuloRpcError.from_rpc_error(e).reason == "EDGE_RATE_LIMITED" for e in results)
        deadline = asyncio.get_running_loop().time() + dt.timedelta(seconds=30).total_seconds()
        while True:  # bounded: the bucket gets 5 tokens a second
            error = await _register(stub, address)
            if error is None or CumuloRpcError.from_rpc_error(error).reason != "EDGE_RATE_LIMITED":
                break
            assert asyncio.get_running_loop().time() < deadline, "the edge never served the address again"
            await asyncio.sleep(0.5)
        assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT  # it reached auth


async def test_guessing_reactivation_links_is_cut_at_the_edge_while_another_address_is_answered(limited_gateway):
    """InspectReactivationLink answers anyone who holds a link: a flood of guesses from one
    address is refused at the edge; another address's question still reaches the lifecycle."""
    attacker, victim = "198.51.100.23", "203.0.113.23"  # addresses no other test of this module spends
    transport = Transport(ca=os.environ["CUMULO_CA"])
    async with transport.channel(limited_gateway) as channel:
        stub = lifecycle_pb2_grpc.LifecycleServiceStub(channel)

        async def guess(address: str, token: str) -> CumuloRpcError:
            request = lifecycle_pb2.InspectReactivationLinkRequest(token=token)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.InspectReactivationLink(request, metadata=_from(address), timeout=30)
            return CumuloRpcError.from_rpc_error(refused.value)

        flood = await asyncio.gather(*(guess(attacker, f"guess-{i:04}") for i in range(60)))
        reasons = {e.reason for e in flood}
        assert "EDGE_RATE_LIMITED" in reasons and reasons <= {"EDGE_RATE_LIMITED", "LINK_INVALID"}
        # Meanwhile another address's question is answered by the lifecycle itself.
        answered = await guess(victim, "a-token-that-names-no-link")
        assert (answered.code, answered.reason) == (grpc.StatusCode.NOT_FOUND, "LINK_INVALID")
