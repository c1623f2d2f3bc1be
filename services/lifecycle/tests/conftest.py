"""Fixtures of the lifecycle's tests against the session's services (product periods: P12M
and P30D, so nothing freezes by itself).

- `member`: a new account, registered and logged in through the gateway, with a file.
- `ages` (cumulo_devstack.testing.Ages): moves one account's clock on purpose: its last access a year back (the next sweep
  freezes it), or its deletion date into the past (the next sweep starts deleting it). Only
  that account's rows change, so the rest of the session is untouched.
- `mailbox`: the notices the real SMTP server received for an address.
- `internal`: the lifecycle's internal API, as other services and cumulo-admin call it.
- `sms_provider`, `own`: an SMS provider's webhook, and a sweeper and notifier of a test's own
  (test_notices*.py: see test_notices.py for why).
- `ledger`: a ledger of the test's own (a fresh database, ledger.py), for sweeps and re-timings
  that would otherwise act on every test's accounts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.message
import hashlib
import pathlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web

from cumulo.events.v1 import events_pb2
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.servers import MailCatcher, SmsCatcher
from cumulo_devstack.stack import Infra
from cumulo_devstack.testing import PASSWORD, Ages, allowed_caller, eventually, new_member, verify_contact
from cumulo_devstack.testing.accounts import CODE_SUBJECTS
from cumulo_lifecycle.adapters.delivery import Delivery
from cumulo_lifecycle.adapters.tables import accounts, notices
from cumulo_lifecycle.bootstrap import compose
from cumulo_lifecycle.notifier import Notifier
from cumulo_platform.clock import OffsetClock
from cumulo_platform.db import make_envelope
from cumulo_platform.event_types import Event, decode
from cumulo_platform.grpc_convert import timestamp

from .ledger import Ledger, open_ledger


@pytest.fixture
async def member(gateway: str, lifecycle: Any, tmp_path: pathlib.Path, mail: MailCatcher) -> Any:
    made = await new_member(gateway, tmp_path, mail=mail)
    try:
        # Every use so far has reached the lifecycle (the upload's last): a test that ages the
        # account afterwards is not undone by a late access event.
        row = await eventually(
            lambda: row_of(lifecycle, made.account_id, lambda r: r.email == made.email and r.last_access_at >= made.uploaded_at),
            what="the lifecycle to know the account, its contact and its uses",
        )
        assert row.state == "active"
        yield made
    finally:
        await made.client.close()


async def row_of(lifecycle: Any, account_id: str, condition: Any = lambda row: True) -> Any:
    async with lifecycle.app.db.read() as conn:
        held = lifecycle.app.legal_holds.is_held(accounts.c.account_id).label("held")
        row = (await conn.execute(sa.select(accounts, held).where(accounts.c.account_id == uuid.UUID(account_id)))).first()
    return row if row is not None and condition(row) else None


class Rows:
    """The lifecycle's row of an account, with whether it is held (None until `condition` holds)."""

    def __init__(self, lifecycle: Any) -> None:
        self.lifecycle = lifecycle

    async def get(self, account_id: str, condition: Any = lambda row: True) -> Any:
        return await row_of(self.lifecycle, account_id, condition)


@pytest.fixture
def rows(lifecycle: Any) -> Rows:
    return Rows(lifecycle)


@pytest.fixture
def ages(lifecycle: Any, auth: Any, blob: Any, infra: Infra) -> Ages:
    return Ages(lifecycle, (auth, blob), infra.nats.url)


class Mailbox:
    def __init__(self, mail: MailCatcher) -> None:
        self.mail = mail

    def to(self, address: str) -> list[email.message.EmailMessage]:
        """The notices to `address` (not the code that verified it)."""
        return [m for m in self.mail.messages() if m["To"] == address and m["Subject"] not in CODE_SUBJECTS]

    async def wait_for(self, address: str, subject_part: str, *, count: int = 1) -> list[email.message.EmailMessage]:
        async def arrived() -> list[email.message.EmailMessage]:
            found = [m for m in self.to(address) if subject_part in m["Subject"]]
            return found if len(found) >= count else []

        return await eventually(arrived, timeout=20, what=f"a notice '{subject_part}' to {address}")


@pytest.fixture
def mailbox(mail: MailCatcher) -> Mailbox:
    return Mailbox(mail)


@pytest.fixture
async def internal(lifecycle: Any) -> Any:

    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as internal:
        yield internal


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# --- notices: a provider's SMS webhook, a sweeper and notifier of a test's own (test_notices*.py) ---


# How far the own sweeper's and notifier's clock runs ahead of the session lifecycle's: the
# background notifier does not see the test's notices before real time gets there.
AHEAD = dt.timedelta(minutes=10)
TOKEN = re.compile(r"\?token=([A-Za-z0-9_-]+)")


# --- a provider's SMS webhook ---------------------------------------------------------------


class SmsProvider:
    """A real HTTP server taking `POST {"to", "text"}`; answers the queued statuses in turn
    (then 200). Its error answers echo the message, as some providers' do."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.answers: list[int] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.received.append(payload)
        status = self.answers.pop(0) if self.answers else 200
        if status >= 400:
            return web.json_response({"error": "rejected", "message": payload}, status=status)
        return web.json_response({"id": uuid.uuid4().hex}, status=status)

    def to(self, phone: str) -> list[str]:
        return [m["text"] for m in self.received if m.get("to") == phone]


@pytest.fixture
async def sms_provider() -> AsyncIterator[SmsProvider]:
    provider = SmsProvider()
    app = web.Application()
    app.router.add_post("/v1/sms", provider.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    provider.url = f"http://127.0.0.1:{port}/v1/sms"
    try:
        yield provider
    finally:
        await runner.cleanup()


# --- a sweeper and notifier of the test's own -------------------------------------------------


class Own:
    """The session lifecycle's settings (with `changes`), database and contact lookup, on a
    clock AHEAD of the session's."""

    def __init__(self, lifecycle: Any, ages: Ages, **changes: Any) -> None:
        self.lifecycle = lifecycle
        self.ages = ages
        self.db = lifecycle.app.db
        self.settings = dataclasses.replace(lifecycle.app.settings, **changes)
        self.clock = OffsetClock()
        self.clock.offset = lifecycle.clock.offset + AHEAD
        self.cases = compose(
            self.db, self.settings, self.clock, holds=lifecycle.app.legal_holds, contacts=lifecycle.app.cases.accounts.contacts
        )
        self.delivery = Delivery(self.settings)
        self.notifier = Notifier(self.db, self.settings, self.clock, self.delivery)

    async def freeze(self, account_id: str) -> Any:
        """Ages the account a year (the `ages` fixture) and sweeps: it freezes, and its freeze
        notices are due for this notifier only."""
        await self.ages.unused_for_a_year(account_id)
        await self.cases.sweeper.sweep()
        row = await account_row(self.lifecycle, account_id)
        assert row.state == "frozen", row.state
        return row

    async def deliver(self, *notice_ids: uuid.UUID) -> int:
        """One `deliver_due()` round that can only reach these notices: every other pending
        notice is held locked meanwhile (the notifier skips locked rows)."""
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.select(notices.c.notice_id)
                .where(notices.c.status == "pending", notices.c.notice_id.not_in(notice_ids))
                .with_for_update(skip_locked=True)
            )
            return await self.notifier.deliver_due()


@pytest.fixture
async def own(lifecycle: Any, ages: Ages) -> AsyncIterator[Callable[..., Own]]:
    made: list[Own] = []

    def make(**changes: Any) -> Own:
        made.append(Own(lifecycle, ages, **changes))
        return made[-1]

    try:
        yield make
    finally:
        for each in made:
            await each.delivery.close()


@pytest.fixture
async def ledger(infra: Infra) -> AsyncIterator[Ledger]:
    async with open_ledger(infra.service_environ()) as opened:
        yield opened


# --- helpers ----------------------------------------------------------------------------------


async def account_row(lifecycle: Any, account_id: str) -> Any:
    async with lifecycle.app.db.read() as conn:
        return (await conn.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account_id)))).one()


async def notices_of(lifecycle: Any, account_id: str, kind: str = "frozen") -> dict[str, Any]:
    """The account's notices of a kind, by channel."""
    async with lifecycle.app.db.read() as conn:
        found = (
            await conn.execute(
                sa.select(notices).where(notices.c.account_id == uuid.UUID(account_id), notices.c.kind == kind)
            )
        ).all()
    by_channel = {row.channel: row for row in found}
    assert len(by_channel) == len(found), found  # one notice per channel and occurrence
    return by_channel


@pytest.fixture
def register(client: Any, rows: Rows, mail: MailCatcher, sms: SmsCatcher) -> Callable[..., Awaitable[str]]:
    """`await register(email=..., phone=..., locale=...)`: a new account, registered through the
    gateway, signed in on `client`, its contacts verified through the real flow (the codes read
    from the session's mail and SMS catchers); returns once the lifecycle has its contacts."""

    async def registered(*, email: str = "", phone: str = "", locale: str = "") -> str:
        account = await client.register(email=email, phone=phone, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale=locale)
        await client.login(email or phone, PASSWORD, device_name="test phone")
        if email:
            await verify_contact(client, mail, "email", email)
        if phone:
            await verify_contact(client, sms, "phone", phone)
        await eventually(
            lambda: rows.get(account.account_id, lambda r: (r.email or "") == email and (r.phone or "") == phone),
            what="the lifecycle to know the new account and its contacts",
        )
        return account.account_id

    return registered


def access_event(account_id: str, at: dt.datetime) -> Event[events_pb2.AccessRecorded]:
    """An `access.recorded` event as the lifecycle's access consumer receives it."""
    envelope = make_envelope(
        "access.recorded",
        events_pb2.AccessRecorded(account_id=account_id, accessed_at=timestamp(at), service="test"),
        account_id=account_id,
        producer="test",
        occurred_at=at,
    )
    return decode(envelope)
