"""Helpers for the tests of every package (pytest runs with --import-mode=importlib, so test
modules cannot import each other; they import these instead).

- `eventually`: bounded polling.
- `rpc`, `call`, `expect_error`: gRPC calls that raise the SDK's CumuloRpcError, and the
  assertion that one does; `bare_rpc_error` for a call without the SDK.
- `unique_email`, `unique_phone`, `unique_event_type`, `fake_client_address`: values no other
  test uses.
- `forge_token`: an access token of one of the kinds in `FORGERIES` that auth never issued
  (`b64url`, `b64json`: the JWT encodings it writes them in).
- `read_stream`: the event envelopes JetStream holds on a subject.
- `new_member`: an account signed up and logged in through the gateway, with one photo.
- `Ages`: ages one account on purpose for the lifecycle (a year unused, a grace over), once
  every access event already made has landed; `notices_sent`: its e-mails are out.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import pathlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import jwt
import nats
import nats.errors
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import DecodeError
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from cumulo.events.v1 import events_pb2
from cumulo_platform.events import STREAM_NAME
from cumulo_sdk import Cumulo, CumuloRpcError

PASSWORD = "correct horse battery staple"


async def eventually(check: Callable[[], Awaitable[object]], *, timeout: float = 15.0, what: str = "condition") -> object:
    """Poll until check() is truthy and return that; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


# --- calls ---------------------------------------------------------------------------------


async def rpc(method: Callable[..., Awaitable[Any]], request: Any, *, metadata=None, timeout: float = 20) -> Any:
    """A unary call whose failure is raised as a CumuloRpcError (code, reason, field ...)."""
    try:
        return await method(request, metadata=metadata, timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


def fake_client_address() -> str:
    """A made-up client address (IPv6 documentation range) no other call uses."""
    return f"2001:db8:{secrets.token_hex(2)}::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


async def call(client: Cumulo, method, request, token: str | None = None, *, address: str | None = None, timeout: float = 20):
    """Call `method` with the client's client id, `token` if given, and `address` (a fresh
    fake one if not) in x-forwarded-for.

    The per-address login throttle counts the client address; every call made straight to a
    service without one comes from 127.0.0.1, which the whole session shares."""
    metadata = client.metadata(token) + [("x-forwarded-for", address or fake_client_address())]
    return await rpc(method, request, metadata=metadata, timeout=timeout)


async def expect_error(awaitable: Awaitable[object], code: grpc.StatusCode, reason=None, field=None) -> CumuloRpcError:
    """Await `awaitable`, which must fail with `code` (and `reason`, `field` when given)."""
    with pytest.raises(CumuloRpcError) as info:
        await awaitable
    err = info.value
    assert err.code == code, err
    if reason is not None:
        assert err.reason == reason, err
    if field is not None:
        assert err.field == field, err
    return err


async def bare_rpc_error(target: str, stub_class, method: str, request: Any, *, metadata=None, timeout: float = 10):
    """The grpc.aio.AioRpcError that a call through a bare stub (no SDK, so no client id unless
    `metadata` has one) to `target` must fail with."""
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(stub_class(channel), method)(request, metadata=metadata, timeout=timeout)
    return caught.value


# --- unique values -----------------------------------------------------------------------------


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def unique_phone() -> str:
    """A Chinese mobile number in E.164 form."""
    return "+8613" + "".join(secrets.choice("0123456789") for _ in range(9))


def unique_event_type() -> str:
    """An event type (and so a JetStream subject) of the test's own."""
    return f"test.{uuid.uuid4().hex[:12]}"


# --- forged access tokens ------------------------------------------------------------------


def b64url(data: bytes) -> str:
    """Base64url without padding, as a JWT writes its parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict) -> str:
    """A JWT header or payload: compact JSON in base64url."""
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# The forgeries of the signature itself, which every service's tests try.
FORGED_SIGNATURES: list[str] = [
    "foreign-key-real-kid",  # signed with a key of the forger's own, under auth's key id
    "foreign-key-unknown-kid",  # the same under a key id auth never had
    "alg-none",  # unsigned, the header saying "none"
    "alg-none-with-real-signature",  # the genuine signature pasted under a header saying "none"
    "hs256-with-public-key",  # the classic confusion: auth's public key used as an HMAC secret
]
# Every kind forge_token makes; each test module tries those that suit it.
FORGERIES: list[str] = [
    *FORGED_SIGNATURES,
    "signature-stripped",  # the genuine token without its signature
    "expiry-extended",  # the genuine token with a later expiry written into it
    "tampered-claims",  # the genuine token's payload edited to name another (made-up) account
    "intruders-token-naming-the-holder",  # another account's genuine token edited to name the holder
    "refresh-token",  # the holder's refresh token where an access token belongs
    "not-a-jwt",
]


def forge_token(kind: str, *, genuine: str, signing_key: tuple[str, bytes], intruder_token: str = "", refresh_token: str = "") -> str:
    """A token of `kind` (one of FORGERIES) naming the holder of the access token `genuine`,
    that auth never issued. `signing_key` is auth's (key id, public key); `intruder_token`,
    another account's genuine access token, is wanted by "intruders-token-naming-the-holder"
    only, and the holder's `refresh_token` by "refresh-token" only."""
    kid, public_key = signing_key
    header, payload, signature = genuine.split(".")
    original = jwt.decode(genuine, options={"verify_signature": False})
    now = int(time.time())
    claims = {**original, "iat": now, "exp": now + 600}  # the holder's, with an expiry well in the future
    if kind == "foreign-key-real-kid":
        return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    if kind == "foreign-key-unknown-kid":
        return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "k20260101-deadbeef"})
    if kind == "alg-none":
        return f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64json(claims)}."
    if kind == "alg-none-with-real-signature":
        return f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload}.{signature}"
    if kind == "hs256-with-public-key":
        signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64json(claims)}"
        return f"{signing_input}.{b64url(hmac.new(public_key, signing_input.encode(), hashlib.sha256).digest())}"
    if kind == "signature-stripped":
        return f"{header}.{payload}."
    if kind == "expiry-extended":
        return f"{header}.{b64json({**original, 'exp': original['exp'] + 86400})}.{signature}"
    if kind == "tampered-claims":
        return f"{header}.{b64json({**claims, 'sub': str(uuid.uuid4())})}.{signature}"
    if kind == "intruders-token-naming-the-holder":
        assert intruder_token, "intruders-token-naming-the-holder wants the intruder's genuine token"
        intruder_header, _, intruder_signature = intruder_token.split(".")
        intruder_claims = jwt.decode(intruder_token, options={"verify_signature": False})
        return f"{intruder_header}.{b64json({**intruder_claims, 'sub': original['sub']})}.{intruder_signature}"
    if kind == "refresh-token":
        assert refresh_token, "refresh-token wants the holder's refresh token"
        return refresh_token
    if kind == "not-a-jwt":
        return "a.b.c"
    raise AssertionError(f"unknown forgery {kind!r}")


# --- JetStream -------------------------------------------------------------------------------


@dataclasses.dataclass
class Delivered:
    """One message of the stream: the envelope, the bytes it came in, its headers."""

    subject: str
    envelope: events_pb2.Envelope
    data: bytes
    headers: dict[str, str]


async def read_stream(
    nats_url: str,
    subject: str,
    where: Callable[[events_pb2.Envelope], bool] = lambda envelope: True,
    *,
    at_least: int = 1,
    timeout: float = 20.0,
    what: str | None = None,
    skip_undecodable: bool = True,
) -> list[Delivered]:
    """Every message the stream holds on `subject` (wildcards allowed) whose envelope passes
    `where`, read by a throw-away consumer; read again until at least `at_least` are there,
    failing after `timeout` seconds.

    A message that is not an envelope (another test's deliberately broken one) is skipped,
    or fails the read if `skip_undecodable` is false."""
    connection = await nats.connect(nats_url, connect_timeout=2, allow_reconnect=False)
    try:
        js = connection.jetstream(timeout=5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found: list[Delivered] = []
            try:
                subscription = await js.pull_subscribe(
                    subject,
                    stream=STREAM_NAME,
                    config=js_api.ConsumerConfig(
                        ack_policy=js_api.AckPolicy.NONE, deliver_policy=js_api.DeliverPolicy.ALL, inactive_threshold=30
                    ),
                )
            except NotFoundError:  # the stream appears with the first published event
                subscription = None
            if subscription is not None:
                pending = (await subscription.consumer_info()).num_pending
                while pending > 0:
                    try:
                        messages = await subscription.fetch(min(pending, 256), timeout=2)
                    except nats.errors.TimeoutError:
                        if loop.time() > deadline:  # never a partial read: it could hide a duplicate
                            raise AssertionError(f"the stream's messages on {subject} unread after {timeout} s") from None
                        continue  # a busy machine: the pending messages are there, ask again
                    pending -= len(messages)
                    for message in messages:
                        try:
                            envelope = events_pb2.Envelope.FromString(message.data)
                        except DecodeError:
                            if skip_undecodable:
                                continue
                            raise
                        if where(envelope):
                            found.append(Delivered(message.subject, envelope, message.data, dict(message.headers or {})))
                await subscription.unsubscribe()
            if len(found) >= at_least:
                return found
            if loop.time() > deadline:
                raise AssertionError(f"{what or 'envelopes on ' + subject}: {len(found)} within {timeout} s, wanted {at_least}")
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


# --- a user with a photo ----------------------------------------------------------------------


@dataclasses.dataclass
class Member:
    """A registered, logged-in account that has uploaded one file."""

    client: Cumulo
    email: str
    account_id: str
    file_id: str
    content: bytes
    uploaded_at: dt.datetime  # just before the upload: its access events are from then on


async def new_member(gateway: str, folder: pathlib.Path, *, locale: str = "en") -> Member:
    """Signs up through the gateway (session and pending uploads kept in `folder`), logs in
    and uploads a photo. The caller closes `member.client`."""
    from cumulo_sdk.client import TokenStore

    client = Cumulo(gateway, store=TokenStore(folder / "credentials.json"), pending_uploads=folder / "uploads.json")
    address = unique_email()
    await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale=locale)
    account = await client.login(address, PASSWORD, device_name="test phone")
    content = secrets.token_bytes(300_000)
    path = folder / "photo.jpg"
    path.write_bytes(content)
    uploaded_at = dt.datetime.now(dt.UTC)
    node = await client.files.upload(path)
    return Member(client, address, account.account_id, node.node_id, content, uploaded_at)


# --- the lifecycle, on purpose ---------------------------------------------------------------


class Ages:
    """Ages one account on purpose. First it waits until every access event already made
    (auth's and blob's recorders, their outboxes, the lifecycle's consumer) has been applied,
    so that a late event cannot undo the aging."""

    def __init__(self, lifecycle, services, nats_url: str) -> None:
        self.lifecycle = lifecycle
        self.services = services  # the running services whose access events must land first
        self.nats_url = nats_url
        self.cal = lifecycle.app.settings.calendar

    async def _settled(self) -> bool:
        for service in self.services:
            if not service.app.recorder.idle:
                return False
            async with service.app.db.read() as conn:
                if (await conn.execute(sa.select(sa.func.count()).select_from(service.app.db.outbox))).scalar_one():
                    return False
        connection = await nats.connect(self.nats_url)
        try:
            info = await connection.jetstream().consumer_info(STREAM_NAME, "lifecycle-access")
        finally:
            await connection.close()
        return info.num_pending == 0 and info.num_ack_pending == 0

    async def settle(self) -> None:
        await eventually(self._settled, timeout=30, what="every access event to reach the lifecycle")

    async def _update(self, account_id: str, **values: Any) -> None:
        from cumulo_lifecycle.adapters.tables import accounts

        async with self.lifecycle.app.db.unit_of_work() as uow:
            await uow.execute(sa.update(accounts).where(accounts.c.account_id == uuid.UUID(account_id)).values(**values))
            await uow.commit()

    async def unused_for_a_year(self, account_id: str) -> None:
        await self.settle()
        past = self.lifecycle.clock.now() - dt.timedelta(days=400)
        await self._update(
            account_id,
            last_access_at=past,
            freeze_at=self.cal.freeze_at(past),
            reminders_done=len(self.cal.freeze_reminders),
            next_due_at=self.lifecycle.clock.now(),
        )

    async def grace_over(self, account_id: str) -> None:
        await self.settle()
        now = self.lifecycle.clock.now()
        await self._update(
            account_id,
            frozen_at=now - dt.timedelta(days=31),
            delete_at=now - self.cal.safety_margin - dt.timedelta(minutes=1),
            reminders_done=len(self.cal.deletion_reminders),
            next_due_at=now,
        )

    async def freeze(self, account_id: str) -> Any:
        await self.unused_for_a_year(account_id)
        planned, done = await self.lifecycle.app.ledger.sweep()
        row = await self.lifecycle.app.ledger.state_of(account_id)
        assert row.state == "frozen", (row.state, [p for p in planned if str(p.account_id) == account_id])
        return row


async def notices_sent(lifecycle, account_id: str) -> None:
    """Waits until the session lifecycle has no e-mail of the account still to send."""
    from cumulo_lifecycle.adapters.tables import notices

    async def sent() -> bool:
        async with lifecycle.app.db.read() as conn:
            pending = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(notices)
                    .where(notices.c.account_id == uuid.UUID(account_id), notices.c.channel == "email", notices.c.status == "pending")
                )
            ).scalar_one()
        return pending == 0

    await eventually(sent, what="the account's e-mails to be sent")
