"""Delivery of the lifecycle's notices on the session's real servers: SMS through a provider's
webhook (a real aiohttp server of the test's own), e-mail through the real SMTP catcher or a
closed port ("SMTP down"), retries with a doubling delay, undeliverable after the last attempt,
bodies and addresses forgotten once a notice is done, secrets kept out of logs and errors, and
each notice in the account's language.

The session lifecycle delivers pending notices in the background every 0.2 s (by e-mail through
the session's catcher; it has no SMS provider). The tests that check one notifier's outcome
therefore run a sweeper and a notifier of their own (`Own`): the session lifecycle's settings,
database and contact lookup, with their own delivery settings and a clock `AHEAD` of the
session's. Their sweep freezes the account (aged by the `ages` fixture) exactly as the session's
would, but its notices are due at the own clock's time, which the background notifier reaches
only minutes after the test has ended; and while the own notifier runs, every other pending
notice is held locked, which its `SKIP LOCKED` passes by. So each test's notices are delivered
by the test's notifier alone, and no other test's notices are touched. Where either notifier
gives the same outcome (locale, no contact), the session's own freeze and delivery are used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from aiohttp import web

from cumulo.events.v1 import events_pb2
from cumulo_devstack.servers import MailCatcher, free_port
from cumulo_devstack.testing import PASSWORD, eventually, expect_error, notices_sent, unique_email, unique_phone
from cumulo_lifecycle.adapters.delivery import Delivery, DeliveryFailed
from cumulo_lifecycle.adapters.tables import accounts, notices, transitions
from cumulo_lifecycle.domain.notices import format_time
from cumulo_lifecycle.ledger import Ledger
from cumulo_lifecycle.notifier import Notifier, mask
from cumulo_platform.clock import OffsetClock
from cumulo_platform.db import make_envelope
from cumulo_platform.grpc_convert import timestamp

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

    def __init__(self, lifecycle, ages, **changes: Any) -> None:  # type: ignore[no-untyped-def]
        self.lifecycle = lifecycle
        self.ages = ages
        self.db = lifecycle.app.db
        self.settings = dataclasses.replace(lifecycle.app.settings, **changes)
        self.clock = OffsetClock()
        self.clock.offset = lifecycle.clock.offset + AHEAD
        self.ledger = Ledger(self.db, self.settings, self.clock, lifecycle.app.ledger.contacts)
        self.delivery = Delivery(self.settings)
        self.notifier = Notifier(self.db, self.settings, self.clock, self.delivery)

    async def freeze(self, account_id: str) -> Any:
        """Ages the account a year (the `ages` fixture) and sweeps: it freezes, and its freeze
        notices are due for this notifier only."""
        await self.ages.unused_for_a_year(account_id)
        await self.ledger.sweep()
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
async def own(lifecycle, ages) -> AsyncIterator[Callable[..., Own]]:  # type: ignore[no-untyped-def]
    made: list[Own] = []

    def make(**changes: Any) -> Own:
        made.append(Own(lifecycle, ages, **changes))
        return made[-1]

    try:
        yield make
    finally:
        for each in made:
            await each.delivery.close()


# --- helpers ----------------------------------------------------------------------------------


async def account_row(lifecycle, account_id: str) -> Any:  # type: ignore[no-untyped-def]
    async with lifecycle.app.db.read() as conn:
        return (await conn.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account_id)))).one()


async def notices_of(lifecycle, account_id: str, kind: str = "frozen") -> dict[str, Any]:  # type: ignore[no-untyped-def]
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


async def register(client, rows, *, email: str = "", phone: str = "", locale: str = "") -> str:  # type: ignore[no-untyped-def]
    """A new account, registered through the gateway; returns once the lifecycle has its contacts."""
    account = await client.register(email=email, phone=phone, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale=locale)
    await eventually(
        lambda: rows.get(account.account_id, lambda r: (r.email or "") == email and (r.phone or "") == phone),
        what="the lifecycle to know the new account and its contacts",
    )
    return account.account_id


# --- SMS ----------------------------------------------------------------------------------------


async def test_a_phone_only_account_gets_its_freeze_notice_by_sms_with_the_exact_deletion_time(
    client, rows, lifecycle, own, sms_provider
):
    phone = unique_phone()
    account_id = await register(client, rows, phone=phone)  # the default locale: zh-CN
    mine = own(sms_webhook_url=sms_provider.url)
    frozen = await mine.freeze(account_id)
    pending = await notices_of(lifecycle, account_id)
    assert set(pending) == {"sms"}  # no e-mail on record, so the phone is told
    notice = pending["sms"]
    assert (notice.status, notice.destination, notice.attempts, notice.locale) == ("pending", phone, 0, "zh-CN")

    assert await mine.deliver(notice.notice_id) == 1
    (text,) = sms_provider.to(phone)
    exact = format_time(frozen.delete_at, lifecycle.app.settings.calendar.time_zone)
    assert exact in text
    assert text.startswith(f"您的 cumulo 账号已被冻结，数据将于 {exact} 删除\n")
    link = TOKEN.search(text)
    assert link is not None and text.count(lifecycle.app.settings.reactivate_url + "?token=") == 1

    done = (await notices_of(lifecycle, account_id))["sms"]
    assert (done.status, done.attempts, done.last_error, done.next_attempt_at) == ("sent", 1, "", None)
    assert done.sent_at is not None
    # Done: the text (with its link) is forgotten, the number kept only recognisably.
    assert done.body == ""
    assert done.destination == mask(phone) and phone not in done.destination
    assert done.destination.startswith("+86***") and done.destination.endswith(phone[-2:])
    # Delivered once: another round sends nothing more.
    assert await mine.deliver(notice.notice_id) == 0
    assert len(sms_provider.to(phone)) == 1
    # The link in it is the account's own: it brings the account back.
    assert await lifecycle.app.ledger.reactivate_with_link(link.group(1)) == "active"
    assert (await account_row(lifecycle, account_id)).state == "active"


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_provider_failure_is_retried_later_with_a_doubling_delay(
    client, rows, lifecycle, own, sms_provider, status
):
    phone = unique_phone()
    account_id = await register(client, rows, phone=phone, locale="en")
    mine = own(sms_webhook_url=sms_provider.url)
    await mine.freeze(account_id)
    notice_id = (await notices_of(lifecycle, account_id))["sms"].notice_id
    retry = mine.settings.notice_retry
    sms_provider.answers = [status, status]

    for attempt in (1, 2):
        before = mine.clock.now()
        assert await mine.deliver(notice_id) == 0  # nothing reached a final state
        after = mine.clock.now()
        row = (await notices_of(lifecycle, account_id))["sms"]
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.last_error == f"SMS provider answered {status}"
        delay = retry * 2 ** (attempt - 1)
        assert before + delay <= row.next_attempt_at <= after + delay
        # Kept for the next attempt, as it was.
        assert row.destination == phone and row.body and row.sent_at is None
        assert len(sms_provider.to(phone)) == attempt
        # Not due again before its time ...
        assert await mine.deliver(notice_id) == 0
        assert len(sms_provider.to(phone)) == attempt
        # ... and due once it has come.
        mine.clock.advance(delay)

    assert await mine.deliver(notice_id) == 1
    row = (await notices_of(lifecycle, account_id))["sms"]
    assert (row.status, row.attempts, row.last_error, row.body) == ("sent", 3, "", "")
    assert row.destination == mask(phone)
    texts = sms_provider.to(phone)
    assert len(texts) == 3 and len(set(texts)) == 1  # the same message each time
    assert texts[0].startswith("Your cumulo account is frozen")


async def test_a_refused_message_is_undeliverable_at_once(client, rows, lifecycle, own, sms_provider):
    phone = unique_phone()
    account_id = await register(client, rows, phone=phone)
    mine = own(sms_webhook_url=sms_provider.url)
    await mine.freeze(account_id)
    notice_id = (await notices_of(lifecycle, account_id))["sms"].notice_id
    sms_provider.answers = [400]

    assert await mine.deliver(notice_id) == 1
    row = (await notices_of(lifecycle, account_id))["sms"]
    assert (row.status, row.attempts, row.next_attempt_at, row.sent_at) == ("undeliverable", 1, None, None)
    assert row.last_error == "SMS provider refused the message (400)"
    assert row.body == ""
    assert row.destination == mask(phone) and phone not in row.destination
    # Never tried again, however much later.
    mine.clock.advance(dt.timedelta(days=1))
    assert await mine.deliver(notice_id) == 0
    assert len(sms_provider.to(phone)) == 1
    assert (await notices_of(lifecycle, account_id))["sms"].attempts == 1


# --- e-mail: the SMTP server is down ------------------------------------------------------------


async def test_with_the_smtp_server_down_a_notice_is_retried_then_undeliverable_and_the_freeze_stands(
    client, rows, lifecycle, own, mailbox
):
    address = unique_email()
    account_id = await register(client, rows, email=address, locale="en")
    closed = free_port()  # bound a moment ago and let go: nothing listens there
    mine = own(smtp_host="127.0.0.1", smtp_port=closed)
    frozen = await mine.freeze(account_id)
    notice_id = (await notices_of(lifecycle, account_id))["email"].notice_id
    attempts, retry = mine.settings.notice_attempts, mine.settings.notice_retry
    assert attempts == lifecycle.app.settings.notice_attempts >= 2

    for attempt in range(1, attempts):
        before = mine.clock.now()
        assert await mine.deliver(notice_id) == 0
        after = mine.clock.now()
        row = (await notices_of(lifecycle, account_id))["email"]
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.last_error == "mail server: SMTPConnectError"  # the failure, not the address
        assert address not in row.last_error and address.split("@")[0] not in row.last_error
        assert str(closed) not in row.last_error
        delay = retry * 2 ** (attempt - 1)
        assert before + delay <= row.next_attempt_at <= after + delay
        assert row.destination == address and TOKEN.search(row.body)
        mine.clock.advance(delay)

    assert await mine.deliver(notice_id) == 1
    row = (await notices_of(lifecycle, account_id))["email"]
    assert (row.status, row.attempts, row.next_attempt_at, row.sent_at) == ("undeliverable", attempts, None, None)
    assert row.last_error == "mail server: SMTPConnectError"
    assert row.body == "" and row.destination == mask(address) == f"{address[0]}***@example.com"

    # The lifecycle went on regardless: the account is frozen, its deletion scheduled, and
    # the notice that could not be sent is on record.
    account = await account_row(lifecycle, account_id)
    assert account.state == "frozen" and account.version == frozen.version
    assert account.delete_at == frozen.delete_at and account.next_due_at is not None
    async with lifecycle.app.db.read() as conn:
        moved = (
            await conn.execute(sa.select(transitions.c.from_state, transitions.c.to_state).where(transitions.c.account_id == uuid.UUID(account_id)))
        ).all()
    assert [tuple(m) for m in moved] == [("active", "frozen")]
    # Nothing reached the session's mail server for it.
    assert mailbox.to(address) == []


# --- no contact ---------------------------------------------------------------------------------


async def test_an_account_without_a_contact_gets_its_notice_recorded_as_undeliverable(rows, lifecycle, ages):
    """An account the lifecycle knows only from its use (auth gave it no contact)."""
    account_id = str(uuid.uuid4())
    used = lifecycle.clock.now() - dt.timedelta(days=2)
    async with lifecycle.app.db.unit_of_work() as uow:
        await lifecycle.app.ledger.apply_access_batch(
            [
                make_envelope(
                    "access.recorded",
                    events_pb2.AccessRecorded(account_id=account_id, accessed_at=timestamp(used), service="test"),
                    account_id=account_id,
                    producer="test",
                    occurred_at=used,
                )
            ],
            uow,
        )
        await uow.commit()
    row = await rows.get(account_id)
    assert row.email is None and row.phone is None

    frozen = await ages.freeze(account_id)
    assert frozen.state == "frozen"
    (notice,) = (await notices_of(lifecycle, account_id)).values()
    assert (notice.channel, notice.status, notice.destination, notice.body) == ("none", "undeliverable", "", "")
    assert notice.last_error == "no contact method on record"
    assert notice.attempts == 0 and notice.next_attempt_at is None
    # The notifiers never pick it up; the account stays frozen with its deletion scheduled.
    await lifecycle.app.notifier.deliver_due()
    assert (await notices_of(lifecycle, account_id))["none"].status == "undeliverable"
    assert (await rows.get(account_id)).next_due_at is not None


# --- secrets ---------------------------------------------------------------------------------------


async def test_the_reactivation_link_token_never_reaches_logs_or_error_texts(
    client, rows, lifecycle, own, sms_provider, capsys
):
    address, phone = unique_email(), unique_phone()
    account_id = await register(client, rows, email=address, phone=phone, locale="en")
    # Both channels fail, and the provider echoes the message (and so the link) in its errors.
    mine = own(sms_webhook_url=sms_provider.url, smtp_host="127.0.0.1", smtp_port=free_port())
    await mine.freeze(account_id)
    ids = [row.notice_id for row in (await notices_of(lifecycle, account_id)).values()]
    assert len(ids) == 2
    sms_provider.answers = [500, 400]

    for _ in range(mine.settings.notice_attempts):
        await mine.deliver(*ids)
        mine.clock.advance(mine.settings.notice_retry * 2 ** mine.settings.notice_attempts)
    done = await notices_of(lifecycle, account_id)
    assert {c: r.status for c, r in done.items()} == {"sms": "undeliverable", "email": "undeliverable"}
    assert done["sms"].attempts == 2 and done["email"].attempts == mine.settings.notice_attempts

    texts = sms_provider.to(phone)
    assert len(texts) == 2
    token = TOKEN.search(texts[0]).group(1)
    assert texts[1] == texts[0]

    # The link works once, through the gateway; the refusal after that does not repeat it.
    await client.reactivate_with_link(token)
    assert (await account_row(lifecycle, account_id)).state == "active"
    refused = await expect_error(client.reactivate_with_link(token), grpc.StatusCode.NOT_FOUND, "LINK_INVALID")
    assert token not in str(refused) and token not in repr(refused.metadata)

    captured = capsys.readouterr()
    logs = captured.err + captured.out
    assert "notice_not_delivered" in logs  # the failures were logged (and captured) ...
    assert token not in logs  # ... without the token
    for line in logs.splitlines():
        if "notice_not_delivered" in line:
            assert phone not in line and address not in line
    for row in done.values():
        assert token not in row.last_error and phone not in row.last_error and address not in row.last_error
        assert row.body == ""
        # Nothing of the finished notice holds the token any more.
        assert token not in repr(tuple(row))
    await notices_sent(lifecycle, account_id)  # the session's notifier sends "active again"


# --- locale ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "locale, subject, body_start",
    [
        ("", "您的 cumulo 账号已被冻结，数据将于 {exact} 删除", "您的 cumulo 账号自 "),
        ("zh-CN", "您的 cumulo 账号已被冻结，数据将于 {exact} 删除", "您的 cumulo 账号自 "),
        ("en", "Your cumulo account is frozen: its data will be deleted at {exact}", "Your cumulo account has not been used since "),
    ],
    ids=["default", "zh-CN", "en"],
)
async def test_notices_are_in_the_accounts_language(client, rows, lifecycle, ages, mailbox, locale, subject, body_start):
    address = unique_email()
    account_id = await register(client, rows, email=address, locale=locale)
    assert (await rows.get(account_id)).locale == (locale or "zh-CN")
    frozen = await ages.freeze(account_id)
    exact = format_time(frozen.delete_at, lifecycle.app.settings.calendar.time_zone)
    (mail,) = await mailbox.wait_for(address, exact)  # delivered by the session's notifier
    assert mail["Subject"] == subject.format(exact=exact)
    body = mail.get_content()
    assert body.startswith(body_start)
    assert exact in body and TOKEN.search(body)
    assert (await notices_of(lifecycle, account_id))["email"].locale == (locale or "zh-CN")
    await notices_sent(lifecycle, account_id)


# --- stopping --------------------------------------------------------------------------------------


async def test_a_notice_being_sent_gives_way_to_cancellation(lifecycle, tmp_path):
    """A service stops by cancelling its jobs; a notice in the middle of its sending must let
    the notifier's job end (the notice stays pending and is sent after the restart)."""
    catcher = MailCatcher(tmp_path / "mail", free_port())  # a real SMTP server of the test's own
    catcher.start()
    delivery = Delivery(dataclasses.replace(lifecycle.app.settings, smtp_host="127.0.0.1", smtp_port=catcher.port))
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        await delivery.send("email", unique_email(), "Your cumulo account is frozen", "text")
        took = loop.time() - started  # how long one notice takes to send here
        interrupted, carried_on, failed = 0, 0, 0
        for _ in range(1000):
            if interrupted >= 40:
                break
            sending = asyncio.create_task(delivery.send("email", unique_email(), "Your cumulo account is frozen", "text"))
            await asyncio.sleep(random.uniform(0, took))
            if sending.done():
                continue
            sending.cancel()  # as ServiceRuntime.stop() cancels the notifier's job
            interrupted += 1
            try:
                await sending
            except asyncio.CancelledError:
                continue
            except DeliveryFailed:
                failed += 1
            else:
                carried_on += 1
        assert interrupted >= 40, f"only {interrupted} sends could be interrupted"
        assert (carried_on, failed) == (0, 0), (
            f"of {interrupted} sends cancelled midway, {carried_on} finished as if not cancelled "
            f"and {failed} turned the cancellation into a delivery failure"
        )
    finally:
        await delivery.close()
        catcher.stop()
