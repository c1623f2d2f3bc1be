"""Verified contacts: a contact gets notices, and finds its account, only once its owner entered
the code sent to it. The codes are short-lived, single-use, kept hashed, throttled; changing a
contact needs the password entered lately and tells the old one. Through the gateway, the
session's lifecycle delivering the codes to the session's real SMTP server."""

from __future__ import annotations

import datetime as dt
import pathlib
import re
import uuid

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_auth.adapters.tables import contact_codes
from cumulo_devstack.testing import (
    PASSWORD,
    allowed_caller,
    code_sent_to,
    eventually,
    expect_error,
    open_channel,
    unique_email,
    unique_phone,
    verify_email,
)
from cumulo_lifecycle.adapters.tables import accounts as lifecycle_accounts
from cumulo_lifecycle.adapters.tables import notices
from cumulo_platform.identity import OPERATOR
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore

CODE_SUBJECT = "Your cumulo verification code"


async def _signed_up(gateway: str, folder: pathlib.Path) -> tuple[Cumulo, str, auth_pb2.LoginResponse]:
    folder.mkdir(parents=True, exist_ok=True)
    client = Cumulo(gateway, store=TokenStore(folder / "credentials.json"))
    address = unique_email()
    await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
    answer = await client.call(
        client.auth.Login, auth_pb2.LoginRequest(login=address, password=PASSWORD, device_name="phone"), authenticated=False
    )
    await client.login(address, PASSWORD, device_name="phone")
    return client, address, answer


@pytest.fixture
async def newcomer(gateway: str, tmp_path: pathlib.Path):
    client, address, answer = await _signed_up(gateway, tmp_path / "newcomer")
    try:
        yield client, address, answer
    finally:
        await client.close()


async def _find(auth_target: str, login: str, *, as_: str = "blob") -> str:
    """FindAccount as blob asks it (sharing with a person), or as the operator (support)."""
    async with open_channel(auth_target, as_=as_) as channel:
        try:
            return (await auth_pb2_grpc.AuthInternalServiceStub(channel).FindAccount(auth_pb2.FindAccountRequest(login=login), timeout=10)).account_id
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND, exc
            return ""


async def _contacts_for_notices(auth_target: str, account_id: str) -> auth_pb2.GetAccountContactsResponse:
    async with allowed_caller(auth_target, auth_pb2_grpc.AuthInternalServiceStub) as internal:
        return await internal.GetAccountContacts(auth_pb2.GetAccountContactsRequest(account_id=account_id), timeout=10)


async def _lifecycle_copy(lifecycle, account_id: str):
    async with lifecycle.app.db.read() as conn:
        return (await conn.execute(sa.select(lifecycle_accounts).where(lifecycle_accounts.c.account_id == uuid.UUID(account_id)))).first()


async def test_an_unverified_contact_gets_no_notice_finds_no_one_and_the_sign_in_reminds(newcomer, auth, lifecycle) -> None:
    client, address, answer = newcomer
    account_id = answer.account.account_id
    assert answer.verify_contacts and not answer.account.email_verified
    # Nobody finds the account by an address whoever typed it may not own (the operator, for
    # support, does) ...
    assert await _find(auth.target, address) == "" and await _find(auth.target, address, as_="moderation") == ""
    assert await _find(auth.target, address, as_=OPERATOR) == account_id
    # ... and no notice goes there: auth gives the lifecycle no contact, and the notice of this
    # account's second sign-in is recorded as one that reached nobody.
    assert (await _contacts_for_notices(auth.target, account_id)).email == ""

    async def recorded_undeliverable():
        async with lifecycle.app.db.read() as conn:
            return (
                await conn.execute(
                    sa.select(notices).where(notices.c.account_id == uuid.UUID(account_id), notices.c.kind == "new_session")
                )
            ).all()

    rows = await eventually(recorded_undeliverable, what="the sign-in notice's record")
    assert {(r.channel, r.status) for r in rows} == {("none", "undeliverable")}
    assert "verified" in rows[0].last_error
    assert (await _lifecycle_copy(lifecycle, account_id)).email is None


async def test_the_code_sent_to_the_address_verifies_it_and_notices_and_finding_follow(newcomer, auth, lifecycle, mail) -> None:
    client, address, answer = newcomer
    account_id = answer.account.account_id
    sent = await client.send_verification_code("email")
    assert sent.sent_to == f"{address[0]}***@{address.split('@')[1]}" and address not in str(sent)
    code = await code_sent_to(mail, address)
    message = [m for m in mail.messages() if m["To"] == address and m["Subject"] == CODE_SUBJECT][-1]
    assert code in message.get_content() and code not in str(message["Subject"])
    # The code is kept only as a keyed hash.
    async with auth.app.db.read() as conn:
        stored = (await conn.execute(sa.select(contact_codes).where(contact_codes.c.account_id == uuid.UUID(account_id)))).one()
    assert stored.code_digest and code.encode() not in stored.code_digest and len(stored.code_digest) >= 32

    account = await client.verify_contact("email", code)
    assert account.email_verified
    assert (await client.whoami()).account.email_verified
    assert await _find(auth.target, address) == account_id
    assert (await _contacts_for_notices(auth.target, account_id)).email == address

    async def lifecycle_knows():
        row = await _lifecycle_copy(lifecycle, account_id)
        return row is not None and row.email == address

    await eventually(lifecycle_knows, what="the lifecycle's copy of the verified address")
    # Single use: the same code again is refused as nothing waiting (the contact stays verified).
    again = await client.verify_contact("email", code)
    assert again.email_verified
    await expect_error(client.send_verification_code("email"), grpc.StatusCode.FAILED_PRECONDITION, reason="CONTACT_ALREADY_VERIFIED")


async def test_wrong_codes_void_the_code_and_a_new_one_works(newcomer, mail) -> None:
    client, address, _ = newcomer
    await client.send_verification_code("email")
    code = await code_sent_to(mail, address)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        await expect_error(client.verify_contact("email", wrong), grpc.StatusCode.INVALID_ARGUMENT, field="code", reason="CODE_WRONG")
    # Five wrong guesses: even the right code is refused now.
    await expect_error(client.verify_contact("email", code), grpc.StatusCode.FAILED_PRECONDITION, reason="CODE_ATTEMPTS_EXHAUSTED")
    await client.send_verification_code("email")
    fresh = await code_sent_to(mail, address, after=1)
    if fresh != code:  # (one in a million: the same six digits twice)
        await expect_error(client.verify_contact("email", code), grpc.StatusCode.INVALID_ARGUMENT, reason="CODE_WRONG")
    assert (await client.verify_contact("email", fresh)).email_verified


async def test_bad_input_names_the_field(newcomer) -> None:
    client, _, _ = newcomer
    await expect_error(client.send_verification_code("fax"), grpc.StatusCode.INVALID_ARGUMENT, field="channel")
    await expect_error(client.send_verification_code(""), grpc.StatusCode.INVALID_ARGUMENT, field="channel")
    await expect_error(client.verify_contact("email", "12a456"), grpc.StatusCode.INVALID_ARGUMENT, field="code")
    await expect_error(client.verify_contact("email", "1" * 10_000), grpc.StatusCode.INVALID_ARGUMENT, field="code")
    await expect_error(client.verify_contact("sms", "123456"), grpc.StatusCode.INVALID_ARGUMENT, field="channel")
    # No phone number on the account: nothing to send to.
    await expect_error(client.send_verification_code("phone"), grpc.StatusCode.FAILED_PRECONDITION, reason="NO_SUCH_CONTACT")
    # No code was ever sent.
    await expect_error(client.verify_contact("email", "123456"), grpc.StatusCode.FAILED_PRECONDITION, reason="NO_CODE_WAITING")


async def test_a_code_expires(newcomer, mail, clock) -> None:
    client, address, _ = newcomer
    await client.send_verification_code("email")
    code = await code_sent_to(mail, address)
    clock.advance(dt.timedelta(minutes=11))
    await expect_error(client.verify_contact("email", code), grpc.StatusCode.FAILED_PRECONDITION, reason="NO_CODE_WAITING")


async def test_a_flood_of_codes_stops_at_the_hourly_cap_while_another_user_is_served(newcomer, gateway, tmp_path, mail) -> None:
    client, address, _ = newcomer
    for _ in range(5):
        await client.send_verification_code("email")
    await expect_error(client.send_verification_code("email"), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="TOO_MANY_CODES")
    assert len([m for m in mail.messages() if m["To"] == address]) == 5
    # The last code sent still verifies; someone else is served meanwhile.
    other, other_address, _ = await _signed_up(gateway, tmp_path / "other")
    try:
        await verify_email(other, mail, other_address)
        assert (await other.whoami()).account.email_verified
    finally:
        await other.close()
    assert (await client.verify_contact("email", await code_sent_to(mail, address, after=4))).email_verified


async def test_a_code_never_reaches_the_logs(newcomer, mail, debug_logs) -> None:
    client, address, _ = newcomer
    await client.send_verification_code("email")
    code = await code_sent_to(mail, address)
    await client.verify_contact("email", code)
    # cumulo's own lines (the test's SMTP server, aiosmtpd, logs what it receives; the services
    # must not), the code as a number of its own (not six digits of a timestamp's fraction).
    logged = "\n".join(line for line in debug_logs().splitlines() if line.startswith("{") and "mail.log" not in line)
    assert "verification_code_sent" in logged  # the log was captured ...
    assert not re.search(rf"(?<![\d.]){code}(?!\d)", logged) and address not in logged  # ... without the code or the address


async def test_changing_a_contact_needs_a_recent_password_tells_the_old_one_and_starts_unverified(
    people, auth, lifecycle, mail, clock
) -> None:
    person = await people.new("phone")  # its address verified
    old = person.email
    await eventually(lambda: _lifecycle_has(lifecycle, person.account_id, old), what="the lifecycle's copy")
    new = unique_email()
    # A session left open is not enough: the password, entered in the last 10 minutes.
    clock.advance(dt.timedelta(minutes=11))
    await expect_error(person.client.update_contacts(email=new), grpc.StatusCode.FAILED_PRECONDITION, reason="RECENT_PASSWORD_REQUIRED")
    await person.client.confirm_password(PASSWORD)
    account = await person.client.update_contacts(email=new)
    assert account.email == new and not account.email_verified
    # The old address hears it; the new one finds nobody until it is verified.
    told = await eventually(
        lambda: _mail_to(mail, old, "The e-mail address of your cumulo account was changed"), timeout=30, what="the old address told"
    )
    assert new not in told[0].get_content()
    assert await _find(auth.target, old) == "" and await _find(auth.target, new) == ""
    await verify_email(person.client, mail, new)
    assert await _find(auth.target, new) == person.account_id


async def _lifecycle_has(lifecycle, account_id: str, address: str) -> bool:
    row = await _lifecycle_copy(lifecycle, account_id)
    return row is not None and row.email == address


async def _mail_to(mail, address: str, subject: str) -> list:
    return [m for m in mail.messages() if m["To"] == address and m["Subject"] == subject]


async def test_a_phone_number_is_verified_by_the_code_in_a_text_message(gateway, tmp_path, auth, sms) -> None:
    phone = unique_phone()
    async with Cumulo(gateway, store=TokenStore(tmp_path / "credentials.json")) as client:
        await client.register(phone=phone, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="zh-CN")
        account = await client.login(phone, PASSWORD, device_name="phone")
        assert await _find(auth.target, phone) == ""
        sent = await client.send_verification_code("phone")
        assert sent.sent_to == f"{phone[:3]}***{phone[-2:]}"
        code = await code_sent_to(sms, phone)
        (text,) = [m["text"] for m in sms.messages() if m["to"] == phone]
        assert "验证码" in text  # in the account's language
        assert (await client.verify_contact("phone", code)).phone_verified
        assert await _find(auth.target, phone) == account.account_id
