"""The door of every cumulo RPC, tried once with every kind of bad token: the platform's
CallInterceptor and TokenVerifier in a small real gRPC server, with a key set, a client-app
registry, a clock and an account gate of the test's own.

Each service then only shows that every method of its public API is behind this door
(cumulo_devstack.testing.gate_cases / assert_gated), and what a genuine token of another
account reaches there (authorization, which is the service's own)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cumulo_devstack.testing import FORGERIES, b64json, everything_said, expect_error, forge_token, token_expiry, with_client_id
from cumulo_platform.clients import ClientRegistry
from cumulo_platform.clock import OffsetClock
from cumulo_platform.errors import FailedPrecondition
from cumulo_platform.interceptors import CallInterceptor, current_call
from cumulo_platform.tokens import ALGORITHM, KeyCache, Principal, TokenVerifier, access_claims, sign
from cumulo_sdk import CumuloRpcError

SERVICE = "cumulo.test.v1.DoorService"
INTERNAL = "cumulo.test.v1.DoorInternalService"
ANONYMOUS = f"/{SERVICE}/Open"
APP = "door-test-app"
TTL = 900
LEEWAY = 5.0
SHAPES = ["Whoami", "Watch", "Upload", "Chat"]  # unary, server stream, client stream, both streams


class Issuer:
    """Signs access tokens as auth does (cumulo_auth.adapters.signing): EdDSA, key id in the header."""

    def __init__(self) -> None:
        self.key_id = f"k{dt.date.today():%Y%m%d}-{secrets.token_hex(4)}"
        self.private = Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def claims(self, account_id: str, *, issued_at: float | None = None, **changes: Any) -> dict[str, Any]:
        """Auth's claim layout (cumulo_platform.tokens.access_claims), with `changes` written over it."""
        iat = dt.datetime.fromtimestamp(int(time.time() if issued_at is None else issued_at), dt.UTC)
        claims = access_claims(
            account_id=account_id, session_id=str(uuid.uuid4()), client_id=APP, minor=False, roles=[],
            issued_at=iat, expires_at=iat + dt.timedelta(seconds=TTL), password_at=iat,
        )
        return {**claims, **changes}

    def token(self, account_id: str | None = None, **changes: Any) -> str:
        return sign(self.claims(account_id or str(uuid.uuid4()), **changes), self.key_id, self.private)


@dataclasses.dataclass
class Door:
    """The server's address and what the test controls and watches of its door."""

    target: str
    issuer: Issuer
    clock: OffsetClock
    gated: list[str]  # the account ids the account gate was asked about, in order
    frozen: set[str]
    key_fetches: list[float]


def who() -> bytes:
    call = current_call()
    principal = call.principal
    return json.dumps(
        {"account_id": principal.account_id if principal else None, "roles": list(principal.roles) if principal else [],
         "bearer": call.bearer_token is not None, "client_id": call.client_id}
    ).encode()


async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return who()


async def server_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield who()
    yield who()


async def client_stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    async for _ in requests:
        pass
    return who()


async def both_streams(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield who()
    async for _ in requests:
        yield who()


@pytest.fixture(scope="module")
async def door() -> AsyncIterator[Door]:
    issuer, clock = Issuer(), OffsetClock()
    gated: list[str] = []
    frozen: set[str] = set()
    fetches: list[float] = []

    async def fetch_keys() -> dict[str, bytes]:
        fetches.append(time.monotonic())
        return {issuer.key_id: issuer.public}

    async def registered(client_id: str) -> bool:
        return client_id == APP

    async def gate(principal: Principal) -> None:
        gated.append(principal.account_id)
        if principal.account_id in frozen:
            raise FailedPrecondition("the account is frozen", reason="ACCOUNT_FROZEN")

    interceptor = CallInterceptor(
        verifier=TokenVerifier(KeyCache(fetch_keys), clock=clock, leeway=LEEWAY),
        clients=ClientRegistry(registered),
        anonymous_methods=[ANONYMOUS],
        account_gate=gate,
        callers=lambda method: None,  # the caller's identity is test_caller_identity.py's
    )
    server = grpc.aio.server(interceptors=[interceptor])
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(SERVICE, {
            "Whoami": grpc.unary_unary_rpc_method_handler(unary),
            "Watch": grpc.unary_stream_rpc_method_handler(server_stream),
            "Upload": grpc.stream_unary_rpc_method_handler(client_stream),
            "Chat": grpc.stream_stream_rpc_method_handler(both_streams),
            "Open": grpc.unary_unary_rpc_method_handler(unary),
        }),
        grpc.method_handlers_generic_handler(INTERNAL, {"Whoami": grpc.unary_unary_rpc_method_handler(unary)}),
    ))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Door(f"127.0.0.1:{port}", issuer, clock, gated, frozen, fetches)
    finally:
        await server.stop(None)


@pytest.fixture
def clock(door: Door) -> Iterator[OffsetClock]:
    """The door's clock (which judges expiry); put back afterwards."""
    before = door.clock.offset
    yield door.clock
    door.clock.offset = before


async def knock(door: Door, metadata: list[tuple[str, str]], method: str = "Whoami", service: str = SERVICE) -> dict[str, Any]:
    """One call of `method` in its shape; who the door let in (from the first message). The
    client streams send no message: one written while the server refuses the call can turn
    the refusal into grpc's own INTERNAL."""
    path = f"/{service}/{method}"
    async with grpc.aio.insecure_channel(door.target) as channel:
        try:
            if method in ("Watch", "Chat"):
                if method == "Watch":
                    call = channel.unary_stream(path)(b"", metadata=metadata, timeout=10)
                else:
                    call = channel.stream_stream(path)(iter(()), metadata=metadata, timeout=10)
                try:
                    answer = await call.read()
                finally:
                    call.cancel()
                assert answer is not grpc.aio.EOF
            elif method == "Upload":
                answer = await channel.stream_unary(path)(iter(()), metadata=metadata, timeout=10)
            else:
                answer = await channel.unary_unary(path)(b"", metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None
    return json.loads(answer)


async def refused(door: Door, metadata: list[tuple[str, str]]) -> grpc.aio.AioRpcError:
    """The raw error of a call that must fail (everything it says, for the secrets checks)."""
    async with grpc.aio.insecure_channel(door.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{SERVICE}/Whoami")(b"", metadata=metadata, timeout=10)
    return caught.value


# --- genuine tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", SHAPES)
async def test_a_genuine_token_is_let_in_as_its_own_account_in_every_call_shape(door, method):
    """(Whose data an account reaches is the service's to show, for its methods that take ids.)"""
    account = str(uuid.uuid4())
    answer = await knock(door, with_client_id(door.issuer.token(account, roles=["moderator"]), APP), method)
    assert (answer["account_id"], answer["roles"], answer["client_id"]) == (account, ["moderator"], APP)
    assert door.gated[-1] == account  # the account gate ran, after the verification


async def test_a_token_issued_by_a_clock_ahead_of_the_services_is_accepted(door):
    """iat is not judged: auth's clock may run ahead of a service's."""
    account = str(uuid.uuid4())
    token = door.issuer.token(account, issued_at=time.time() + 3600)
    assert (await knock(door, with_client_id(token, APP)))["account_id"] == account


# --- no token ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", SHAPES)
async def test_a_call_without_a_token_is_unauthenticated(door, method):
    await expect_error(knock(door, with_client_id(None, APP), method), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_MISSING")


@pytest.mark.parametrize("authorization", ["", "Basic dXNlcjpwYXNz", "bearer x", "Token abc", "Bearer", "BEARER x"])
async def test_an_authorization_that_is_not_a_bearer_token_counts_as_missing(door, authorization):
    metadata = with_client_id(None, APP) + [("authorization", authorization)]
    await expect_error(knock(door, metadata), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_MISSING")


# --- expiry, by the service's clock --------------------------------------------------------------


@pytest.mark.parametrize("method", SHAPES)
async def test_an_expired_token_is_unauthenticated_even_once_let_in(door, clock, method):
    token = door.issuer.token()
    await knock(door, with_client_id(token, APP), method)  # verified, and remembered
    clock.advance(dt.timedelta(seconds=TTL + LEEWAY + 60))
    await expect_error(knock(door, with_client_id(token, APP), method), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_EXPIRED")


@pytest.mark.parametrize("before_end", [30, 0, -LEEWAY + 3], ids=["half-a-minute-before", "at-its-end", "within-the-leeway"])
async def test_a_token_works_until_its_end_and_the_leeway(door, clock, before_end):
    account = str(uuid.uuid4())
    token = door.issuer.token(account)
    clock.advance(dt.timedelta(seconds=token_expiry(token) - time.time() - before_end))
    assert (await knock(door, with_client_id(token, APP)))["account_id"] == account


async def test_a_token_expired_before_it_is_first_seen_is_unauthenticated(door):
    token = door.issuer.token(issued_at=time.time() - TTL - 60)
    await expect_error(knock(door, with_client_id(token, APP)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_EXPIRED")


# --- forged tokens -------------------------------------------------------------------------------


def forged(door: Door, kind: str, holder: str) -> str:
    return forge_token(
        kind,
        genuine=door.issuer.token(holder),
        signing_key=(door.issuer.key_id, door.issuer.public),
        intruder_token=door.issuer.token(),
        refresh_token="crt_" + secrets.token_urlsafe(32),  # auth's refresh tokens: opaque, never JWTs
    )


@pytest.mark.parametrize("method", SHAPES)
@pytest.mark.parametrize("kind", FORGERIES)
async def test_a_forged_token_is_unauthenticated_and_never_reaches_the_account_gate(door, kind, method):
    holder = str(uuid.uuid4())
    await expect_error(knock(door, with_client_id(forged(door, kind, holder), APP), method), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID")
    assert holder not in door.gated


@pytest.mark.parametrize("kind", ["expired", *FORGERIES])
async def test_a_refused_token_is_never_repeated_in_the_answer(door, clock, kind):
    if kind == "expired":
        token = door.issuer.token()
        clock.advance(dt.timedelta(seconds=TTL + LEEWAY + 60))
    else:
        token = forged(door, kind, str(uuid.uuid4()))
    err = await refused(door, with_client_id(token, APP))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    said = everything_said(err)
    for part in {token, *(p for p in token.split(".") if len(p) >= 16)}:
        assert part not in said, said


@pytest.mark.parametrize("claim", ["sub", "sid", "roles", "minor", "pwd_at", "azp", "exp"])
async def test_a_genuine_token_with_any_claim_edited_is_no_token(door, claim):
    """The role, the password's time, the account: all signed alike."""
    token = door.issuer.token()
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    edited = {"sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "roles": ["moderator"], "minor": True,
              "pwd_at": int(time.time()) + 60, "azp": "another-app", "exp": claims["exp"] + 86400}[claim]
    token = f"{header}.{b64json({**claims, claim: edited})}.{signature}"
    await expect_error(knock(door, with_client_id(token, APP)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID")


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJFZERTQSJ9", "eyJhbGciOiJFZERTQSJ9.e30.", "WzFd.e30.", "eyJhbGciOiJFZERTQSIsImtpZCI6NX0.e30.", "x" * 4_000],
    ids=["empty", "word", "three-junk-parts", "header-only", "no-kid", "header-is-a-list", "kid-is-a-number", "four-kilobytes"],
)
async def test_a_malformed_token_is_unauthenticated_not_a_crash(door, token):
    metadata = with_client_id(None, APP) + [("authorization", f"Bearer {token}")]
    await expect_error(knock(door, metadata), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID")


@pytest.mark.parametrize(
    "changes",
    [{"aud": "another-audience"}, {"iss": "someone-else"}, {"aud": None}, {"iss": None}, {"sub": None}, {"sid": None}, {"exp": None}, {"iat": None}],
    ids=["wrong-audience", "wrong-issuer", "no-audience", "no-issuer", "no-subject", "no-session", "no-expiry", "no-issued-at"],
)
async def test_a_token_signed_with_the_right_key_but_not_an_access_token_is_invalid(door, changes):
    claims = door.issuer.claims(str(uuid.uuid4()))
    for name, value in changes.items():
        if value is None:
            del claims[name]
        else:
            claims[name] = value
    token = jwt.encode(claims, door.issuer.private, algorithm=ALGORITHM, headers={"kid": door.issuer.key_id})
    await expect_error(knock(door, with_client_id(token, APP)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID")


async def test_forged_key_ids_cost_at_most_one_key_fetch(door):
    """Made-up key ids are refused from the cached key set: a flood of them is no flood of
    calls to auth."""
    before = len(door.key_fetches)
    for _ in range(20):
        token = jwt.encode(door.issuer.claims(str(uuid.uuid4())), Ed25519PrivateKey.generate(), algorithm=ALGORITHM, headers={"kid": f"k{secrets.token_hex(6)}"})
        await expect_error(knock(door, with_client_id(token, APP)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID")
    assert len(door.key_fetches) - before <= 1


@pytest.mark.parametrize("order", ["genuine-first", "forged-first"])
async def test_two_authorization_headers_never_let_in_the_account_a_forgery_names(door, order):
    holder, intruder = str(uuid.uuid4()), str(uuid.uuid4())
    genuine = door.issuer.token(intruder)
    naming_the_holder = forge_token(
        "intruders-token-naming-the-holder", genuine=door.issuer.token(holder), signing_key=(door.issuer.key_id, door.issuer.public),
        intruder_token=genuine,
    )
    headers = [("authorization", f"Bearer {genuine}"), ("authorization", f"Bearer {naming_the_holder}")]
    if order == "forged-first":
        headers.reverse()
    try:
        answer = await knock(door, with_client_id(None, APP) + headers)
    except CumuloRpcError as err:
        assert err.code == grpc.StatusCode.UNAUTHENTICATED, err
    else:
        assert answer["account_id"] == intruder
    assert holder not in door.gated


# --- the account gate ----------------------------------------------------------------------------


async def test_the_account_gate_judges_only_genuine_tokens(door):
    """A frozen account's genuine token meets the gate's answer; a forged one naming it is
    refused as forged, so forgeries learn nothing of the account's state."""
    account = str(uuid.uuid4())
    door.frozen.add(account)
    await expect_error(knock(door, with_client_id(door.issuer.token(account), APP)), grpc.StatusCode.FAILED_PRECONDITION, reason="ACCOUNT_FROZEN")
    await expect_error(
        knock(door, with_client_id(forged(door, "foreign-key-real-kid", account), APP)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID"
    )
    assert door.gated.count(account) == 1


# --- client apps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["none", "genuine", "forged"])
@pytest.mark.parametrize("client_id", [None, "", "not-a-registered-app"], ids=["no-client-id", "empty", "unregistered"])
@pytest.mark.parametrize("method", ["Whoami", "Open"], ids=["needs-a-token", "anonymous"])
async def test_a_call_from_no_registered_app_is_refused_before_its_token_is_read(door, method, client_id, token):
    account = str(uuid.uuid4())
    bearer = {"none": None, "genuine": door.issuer.token(account), "forged": forged(door, "alg-none", account)}[token]
    metadata = with_client_id(bearer, client_id) if client_id is not None else with_client_id(bearer)[1:]
    err = await expect_error(knock(door, metadata, method), grpc.StatusCode.PERMISSION_DENIED, reason="CLIENT_NOT_AUTHORIZED")
    if client_id is None:
        assert "x-cumulo-client-id" in err.message
    assert account not in door.gated


# --- anonymous and internal methods --------------------------------------------------------------


@pytest.mark.parametrize("token", ["none", "genuine", "forged"])
async def test_an_anonymous_method_lets_a_registered_app_in_and_hands_any_token_on_unverified(door, token):
    """Verifying a token sent anyway is the method's own choice (moderation's complaints do)."""
    account = str(uuid.uuid4())
    bearer = {"none": None, "genuine": door.issuer.token(account), "forged": forged(door, "alg-none", account)}[token]
    answer = await knock(door, with_client_id(bearer, APP), "Open")
    assert (answer["account_id"], answer["bearer"]) == (None, bearer is not None)
    assert account not in door.gated


@pytest.mark.parametrize("metadata", ["nothing", "a-forged-token"])
async def test_an_internal_service_needs_no_client_id_and_reads_no_token(door, metadata):
    """Internal services are reached only inside the cluster (the gateway routes none)."""
    account = str(uuid.uuid4())
    sent = [] if metadata == "nothing" else [("authorization", f"Bearer {forged(door, 'alg-none', account)}")]
    answer = await knock(door, sent, "Whoami", service=INTERNAL)
    assert (answer["account_id"], answer["client_id"]) == (None, "")
    assert account not in door.gated
