"""Delivery of the lifecycle's notices on the session's real servers: SMS through a provider's
webhook (a real aiohttp server of the test's own), e-mail through the real SMTP catcher or a
closed port ("SMTP down"), retries with a doubling delay, undeliverable after the last attempt,
bodies and addresses forgotten once a notice is done, secrets kept out of logs and errors, and
each notice in the account's language.

The session lifecycle delivers pending notices in the background every 0.2 s (by e-mail and SMS
through the session's catchers). The tests that check one notifier's outcome
therefore run a sweeper and a notifier of their own (`own`, conftest.py): the session lifecycle's settings,
database and contact lookup, with their own delivery settings and a clock `AHEAD` of the
session's. Their sweep freezes the account (aged by the `ages` fixture) exactly as the session's
would, but its notices are due at the own clock's time, which the background notifier reaches
only minutes after the test has ended; and while the own notifier runs, every other pending
notice is held locked, which its `SKIP LOCKED` passes by. So each test's notices are delivered
by the test's notifier alone, and no other test's notices are touched. Where either notifier
gives the same outcome (locale, no contact), the session's own freeze and delivery are used.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from cumulo_devstack.servers import free_port
from cumulo_devstack.testing import unique_email, unique_phone
from cumulo_lifecycle.adapters.tables import transitions
from cumulo_lifecycle.notifier import mask
from cumulo_platform.text import local_time

from .conftest import TOKEN, account_row, notices_of

# --- SMS ----------------------------------------------------------------------------------------


async def test_a_phone_only_account_gets_its_freeze_notice_by_sms_with_the_exact_deletion_time(
    register, client, rows, lifecycle, own, sms_provider
):
    phone = unique_phone()
    account_id = await register(phone=phone)  # the default locale: zh-CN
    mine = own(sms_webhook_url=sms_provider.url)
    frozen = await mine.freeze(account_id)
    pending = await notices_of(lifecycle, account_id)
    assert set(pending) == {"sms"}  # no e-mail on record, so the phone is told
    notice = pending["sms"]
    assert (notice.status, notice.destination, notice.attempts, notice.locale) == ("pending", phone, 0, "zh-CN")

    assert await mine.deliver(notice.notice_id) == 1
    (text,) = sms_provider.to(phone)
    exact = local_time(frozen.delete_at, lifecycle.app.settings.calendar.time_zone)
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
    assert await lifecycle.app.cases.access.reactivate_with_link(link.group(1)) == "active"
    assert (await account_row(lifecycle, account_id)).state == "active"


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_provider_failure_is_retried_later_with_a_doubling_delay(
    register, client, rows, lifecycle, own, sms_provider, status
):
    phone = unique_phone()
    account_id = await register(phone=phone, locale="en")
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


async def test_a_refused_message_is_undeliverable_at_once(register, client, rows, lifecycle, own, sms_provider):
    phone = unique_phone()
    account_id = await register(phone=phone)
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
    register, client, rows, lifecycle, own, mailbox
):
    address = unique_email()
    account_id = await register(email=address, locale="en")
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
