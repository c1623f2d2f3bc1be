"""The lifecycle's notices where they cannot go or must not tell: an account without a contact
(recorded as undeliverable), the reactivation link kept out of logs and error texts, each notice
in the account's language, and a notice being sent when the service stops. (Delivery and its
retries: test_notices.py, which also explains the test's own sweeper and notifier, `own`.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import uuid

import grpc
import pytest

from cumulo_devstack.servers import MailCatcher, free_port
from cumulo_devstack.testing import expect_error, notices_sent, unique_email, unique_phone
from cumulo_lifecycle.adapters.delivery import Delivery, DeliveryFailed
from cumulo_platform.text import local_time

from .conftest import TOKEN, access_event, account_row, notices_of

# --- no contact ---------------------------------------------------------------------------------


async def test_an_account_without_a_contact_gets_its_notice_recorded_as_undeliverable(rows, lifecycle, ages):
    """An account the lifecycle knows only from its use (auth gave it no contact)."""
    account_id = str(uuid.uuid4())
    used = lifecycle.clock.now() - dt.timedelta(days=2)
    async with lifecycle.app.db.unit_of_work() as uow:
        await lifecycle.app.cases.access.apply_batch([access_event(account_id, used)], uow)
        await uow.commit()
    row = await rows.get(account_id)
    assert row.email is None and row.phone is None

    frozen = await ages.freeze(account_id)
    assert frozen.state == "frozen"
    (notice,) = (await notices_of(lifecycle, account_id)).values()
    assert (notice.channel, notice.status, notice.destination, notice.body) == ("none", "undeliverable", "", "")
    assert notice.last_error == "no verified contact method on record"
    assert notice.attempts == 0 and notice.next_attempt_at is None
    # The notifiers never pick it up; the account stays frozen with its deletion scheduled.
    await lifecycle.app.notifier.deliver_due()
    assert (await notices_of(lifecycle, account_id))["none"].status == "undeliverable"
    assert (await rows.get(account_id)).next_due_at is not None


# --- secrets ---------------------------------------------------------------------------------------


async def test_the_reactivation_link_token_never_reaches_logs_or_error_texts(
    register, client, rows, lifecycle, own, sms_provider, capsys
):
    address, phone = unique_email(), unique_phone()
    account_id = await register(email=address, phone=phone, locale="en")
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
async def test_notices_are_in_the_accounts_language(register, client, rows, lifecycle, ages, mailbox, locale, subject, body_start):
    address = unique_email()
    account_id = await register(email=address, locale=locale)
    assert (await rows.get(account_id)).locale == (locale or "zh-CN")
    frozen = await ages.freeze(account_id)
    exact = local_time(frozen.delete_at, lifecycle.app.settings.calendar.time_zone)
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
