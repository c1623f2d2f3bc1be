"""Owners are told: of every new sign-in to their account (which device and app, from which
address, when; and how to end it), and when someone shares a folder or file with them (who,
what). Auth and blob ask by kind (`notice.requested`); the lifecycle words the notice in the
recipient's language and sends it to the contacts on record, once per session or share.
What a person typed (a device's name, a folder's name) is shown as typed, never read as part
of the template."""

from __future__ import annotations

import datetime as dt
import email.message
import re
import urllib.parse
import uuid

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2
from cumulo_devstack.testing import PASSWORD, eventually, expect_error, lifecycle_has_contact, unique_email, verify_email
from cumulo_lifecycle.adapters.tables import notices
from cumulo_sdk import Cumulo

NEW_SIGN_IN = "New sign-in to your cumulo account"


def mails(mail, address: str, subject_part: str) -> list[email.message.EmailMessage]:
    return [m for m in mail.messages() if m["To"] == address and subject_part in m["Subject"]]


async def arrived(mail, address: str, subject_part: str, count: int = 1) -> list[email.message.EmailMessage]:
    async def there() -> list[email.message.EmailMessage]:
        found = mails(mail, address, subject_part)
        return found if len(found) >= count else []

    return await eventually(there, timeout=30, what=f"{count} notice(s) '{subject_part}' to {address}")


def naming(mail, address: str, device: str) -> list[str]:
    return [m.get_content() for m in mails(mail, address, NEW_SIGN_IN) if f"{device} (cumulo-cli)" in m.get_content()]


async def _naming(mail, address: str, device: str) -> list[str]:
    return naming(mail, address, device)


async def test_each_new_sign_in_is_told_to_the_owner_with_device_app_and_address(people, mail, lifecycle):
    # (The first sign-in came before the address was verified: whether its notice reaches the
    # address depends on which the lifecycle learns first. Each sign-in after has a name of its own.)
    person = await people.new("first phone")
    await lifecycle_has_contact(lifecycle, person.email)
    await people.login(person.email, "laptop")
    (text,) = await eventually(lambda: _naming(mail, person.email, "laptop"), timeout=30, what="the laptop's sign-in notice")
    assert "laptop (cumulo-cli)" in text and "cumulo sessions" in text, text
    assert re.search(r"from the address [0-9a-f.:]+\.", text), text  # where the sign-in came from
    # A device name with template braces is shown as typed, on one line: a line of its own
    # ("Click ...") cannot pass for the notice's own text.
    await people.login(person.email, "phone {at} {address}\nClick http://evil.example")
    (second,) = await eventually(
        lambda: _naming(mail, person.email, "phone {at} {address} Click http://evil.example"), timeout=30, what="the second notice"
    )
    assert "\nClick" not in second
    # A refresh is not a new sign-in: after it, the next sign-in's notice is the only new one.
    before = len(mails(mail, person.email, NEW_SIGN_IN))
    await person.client.access_token(force_refresh=True)
    await people.login(person.email, "tablet")
    await eventually(lambda: _naming(mail, person.email, "tablet"), timeout=30, what="the tablet's sign-in notice")
    assert len(mails(mail, person.email, NEW_SIGN_IN)) == before + 1
    assert len(naming(mail, person.email, "laptop")) == 1


async def _verified_account(gateway: str, mail, lifecycle, locale: str) -> str:
    """An account of `locale` whose address is verified (people share with verified addresses
    only) and known to the lifecycle."""
    address = unique_email()
    async with Cumulo(gateway) as client:
        await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale=locale)
        await client.login(address, PASSWORD, device_name="first device")
        await verify_email(client, mail, address)
    await lifecycle_has_contact(lifecycle, address)
    return address


async def test_a_share_is_told_to_the_recipient_in_their_language_once(people, gateway, mail, lifecycle):
    owner = await people.new("owner")
    address = await _verified_account(gateway, mail, lifecycle, "zh-CN")
    folder = await owner.client.files.mkdir("", "Holiday {name} 2026")
    await owner.client.files.share_with(folder.node_id, address)
    (told,) = await arrived(mail, address, "与您共享了")
    assert told["Subject"] == f"{owner.email} 与您共享了「Holiday {{name}} 2026」"
    assert "文件夹" in told.get_content() and "cumulo shared" in told.get_content()
    # Shared again (the same folder, the same person): no second notice.
    await owner.client.files.share_with(folder.node_id, address)
    other = await owner.client.files.mkdir("", "Receipts")
    await owner.client.files.share_with(other.node_id, address)
    await arrived(mail, address, "Receipts")
    assert len(mails(mail, address, "Holiday")) == 1


@pytest.mark.parametrize("locale, subject", [("en", NEW_SIGN_IN), ("zh-CN", "您的 cumulo 账号有新的登录")])
async def test_the_sign_in_notice_is_in_the_accounts_language(gateway, people, mail, lifecycle, locale, subject):
    address = await _verified_account(gateway, mail, lifecycle, locale)
    await people.login(address, "desk")

    async def told() -> list[str]:
        return [m.get_content() for m in mails(mail, address, subject) if "desk" in m.get_content()]

    assert len(await eventually(told, timeout=30, what="the desk's sign-in notice")) == 1


async def test_a_flood_of_shares_to_one_person_stops_reaching_their_inbox(people, gateway, mail, lifecycle):
    """One account sharing folder after folder with someone: at most 20 notices an hour reach
    the recipient; every share still works (it is in their Shared with me)."""
    owner = await people.new("spammer")
    recipient = await people.new("recipient")
    await lifecycle_has_contact(lifecycle, recipient.email)
    folders = [await owner.client.files.mkdir("", f"flood {i}") for i in range(24)]
    for folder in folders:
        await owner.client.files.share_with(folder.node_id, recipient.email)
    last = await owner.client.files.mkdir("", "a last one")
    await owner.client.files.share_with(last.node_id, recipient.email)
    assert len(await recipient.client.files.shared_with_me()) == 25

    async def all_taken() -> list:  # the lifecycle has taken every share's request: 20 sent, 5 on record only
        async with lifecycle.app.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(notices.c.status, notices.c.last_error).where(
                        notices.c.account_id == uuid.UUID(recipient.account_id), notices.c.kind == "shared_with_you"
                    )
                )
            ).all()
        return rows if len(rows) == 25 and all(r.status != "pending" for r in rows) else []

    taken = await eventually(all_taken, timeout=60, what="the lifecycle to take every share's notice")
    assert sorted(r.status for r in taken) == ["sent"] * 20 + ["undeliverable"] * 5
    assert all("more than 20" in r.last_error for r in taken if r.status == "undeliverable")
    await arrived(mail, recipient.email, "shared", count=20)
    assert len(mails(mail, recipient.email, "shared")) == 20


async def test_the_sign_in_notice_links_to_ending_that_session_alone(people, mail, lifecycle, direct):
    """"Not you?": the notice's link ends the one session it is about, without signing in;
    the owner's other sessions go on. A wrong, reused or forged token ends nothing."""
    person = await people.new("first phone")
    await lifecycle_has_contact(lifecycle, person.email)
    stranger = await people.login(person.email, "stranger's laptop")
    (text,) = await eventually(lambda: _naming(mail, person.email, "stranger's laptop"), timeout=30, what="the sign-in notice")
    link = re.search(r"https://\S+/revoke-session\?token=([A-Za-z0-9_%-]+)", text)
    assert link, text
    token = urllib.parse.unquote(link.group(1))

    ended = await direct.call(direct.auth.RevokeSessionWithLink, auth_pb2.RevokeSessionWithLinkRequest(token=token), authenticated=False)
    assert ended.revoked and ended.device_name == "stranger's laptop"
    await expect_error(stranger.client.whoami(), grpc.StatusCode.UNAUTHENTICATED)
    assert (await person.client.whoami()).account.account_id == person.account_id  # the owner's own session goes on
    again = await direct.call(direct.auth.RevokeSessionWithLink, auth_pb2.RevokeSessionWithLinkRequest(token=token), authenticated=False)
    assert not again.revoked  # a second click says it had ended
    for wrong in ("", token[:-2] + "xx", "x" * 500):
        await expect_error(
            direct.call(direct.auth.RevokeSessionWithLink, auth_pb2.RevokeSessionWithLinkRequest(token=wrong), authenticated=False),
            grpc.StatusCode.NOT_FOUND, "LINK_INVALID",
        )
    assert (await person.client.whoami()).account.account_id == person.account_id
