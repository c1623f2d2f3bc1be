"""The freeze mail as it lands in a mailbox (the session's real SMTP catcher, raw bytes): its
Subject is one line, date and zone included, so `grep '^Subject'` shows it whole; and its
wording follows the rule that computed the deletion time: a grace of days ends "when <day>
ends", an exact grace at a time. See test_notices.py for the `own` sweeper and notifier."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib

from cumulo_devstack.testing import eventually, unique_email
from cumulo_platform.durations import IsoDuration
from cumulo_platform.text import local_time

from .conftest import notices_of


def raw_mails(folder: pathlib.Path, address: str) -> list[list[str]]:
    """The lines of every mail to `address`, as the catcher stored them, but the code that
    verified the address (`register`)."""
    found = []
    for path in sorted(folder.glob("*.eml")):
        lines = path.read_bytes().decode().split("\r\n")
        if f"To: {address}" in lines and "Subject: Your cumulo verification code" not in lines:
            found.append(lines)
    return found


def subject_lines(lines: list[str]) -> list[str]:
    header = lines[: lines.index("")]
    return [line for line in header if line.startswith("Subject:")]


async def test_a_day_grace_freeze_mail_has_a_one_line_subject_and_says_when_the_last_day_ends(register, client, rows, lifecycle, ages, mail):
    address = unique_email()
    account_id = await register(email=address, locale="en")
    frozen = await ages.freeze(account_id)
    cal = lifecycle.app.settings.calendar
    exact = local_time(frozen.delete_at, cal.time_zone)
    async def arrived() -> list[list[str]]:
        return raw_mails(mail.folder, address)

    (lines,) = await eventually(arrived, timeout=20, what="the freeze mail")
    assert subject_lines(lines) == [f"Subject: Your cumulo account is frozen: its data will be deleted at {exact}"]
    assert exact.endswith(" CST (Asia/Shanghai)")
    body = "\n".join(lines[lines.index("") + 1:])
    last_day = cal.last_day_of_grace(frozen.delete_at).isoformat()
    assert f"deleted permanently at {exact}, that is, when {last_day} ends." in body.replace("\n", " ")


async def test_an_exact_grace_freeze_mail_states_the_time_only(register, client, rows, lifecycle, own, mail):
    address = unique_email()
    account_id = await register(email=address, locale="en")
    cal = lifecycle.app.settings.calendar
    mine = own(calendar=dataclasses.replace(cal, grace=IsoDuration.parse("PT30S"), safety_margin=dt.timedelta(seconds=3)))
    frozen = await mine.freeze(account_id)
    assert frozen.delete_at - frozen.frozen_at == dt.timedelta(seconds=30)
    notice = (await notices_of(lifecycle, account_id))["email"]
    assert await mine.deliver(notice.notice_id) == 1
    (lines,) = raw_mails(mail.folder, address)
    exact = local_time(frozen.delete_at, cal.time_zone)
    assert subject_lines(lines) == [f"Subject: Your cumulo account is frozen: its data will be deleted at {exact}"]
    body = " ".join(lines[lines.index("") + 1:])
    assert f"deleted permanently at {exact}." in body
    assert "ends" not in body

