"""A forgotten password: a code to a verified contact, then a new password; every session ends
and the contacts are told. Nobody learns from it who has an account. The anonymous calls go
straight to auth, each from a client address of its own (their allowance is per address), the
session's lifecycle sending the codes to the session's real SMTP server."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo_devstack.testing import (
    PASSWORD,
    call,
    code_sent_to,
    eventually,
    expect_error,
    lifecycle_has_contact,
    unique_email,
)
from cumulo_devstack.testing.accounts import RESET_SUBJECTS
from cumulo_sdk import Cumulo

NEW = "a fresh passphrase for 2027"
TOLD = "The password of your cumulo account was reset"


def start(direct: Cumulo, login: str, address: str | None = None):
    return call(direct, direct.auth.StartPasswordReset, auth_pb2.StartPasswordResetRequest(login=login), address=address)


def reset(direct: Cumulo, login: str, code: str, password: str = NEW, address: str | None = None):
    request = auth_pb2.ResetPasswordRequest(login=login, code=code, new_password=password)
    return call(direct, direct.auth.ResetPassword, request, address=address)


def reset_codes(mail, address: str) -> list:
    return [m for m in mail.messages() if m["To"] == address and m["Subject"] in RESET_SUBJECTS]


@pytest.fixture
async def person(people, lifecycle):
    """A verified account the lifecycle has the address of (the reset's notice reaches it)."""
    made = await people.new("phone")
    await lifecycle_has_contact(lifecycle, made.email)
    return made


async def test_a_forgotten_password_is_set_anew_every_session_ends_and_the_owner_is_told(direct, person, people, mail) -> None:
    assert await start(direct, person.email) == auth_pb2.StartPasswordResetResponse()
    code = await code_sent_to(mail, person.email, subjects=RESET_SUBJECTS)
    assert len(code) == 8
    await reset(direct, person.email, code)
    # The session that was open (someone who knew the old password) has ended ...
    await expect_error(person.client.whoami(), grpc.StatusCode.UNAUTHENTICATED)
    # ... the old password opens nothing, the new one does ...
    await expect_error(people.login(person.email), grpc.StatusCode.UNAUTHENTICATED, reason="INVALID_CREDENTIALS")
    again = await people.login(person.email, "laptop", password=NEW)
    assert again.account_id == person.account_id
    # ... the code is spent, and the owner hears of it at the verified address.
    await expect_error(reset(direct, person.email, code, "yet another passphrase"), grpc.StatusCode.INVALID_ARGUMENT, reason="CODE_WRONG")

    async def told() -> list:
        return [m for m in mail.messages() if m["To"] == person.email and m["Subject"] == TOLD]

    (notice,) = await eventually(told, timeout=30, what="the reset's notice")
    assert "cumulo reset-password" in notice.get_content() and code not in notice.get_content()


async def test_the_answers_tell_nobody_who_has_an_account(direct, person, gateway, mail, tmp_path) -> None:
    # An address with no account, and an account whose address is not verified.
    nobody = unique_email()
    unverified = unique_email()
    async with Cumulo(gateway) as client:
        await client.register(email=unverified, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    answers = [await start(direct, login) for login in (nobody, unverified, person.email)]
    assert all(answer == auth_pb2.StartPasswordResetResponse() for answer in answers)
    await code_sent_to(mail, person.email, subjects=RESET_SUBJECTS)
    assert reset_codes(mail, nobody) == [] and reset_codes(mail, unverified) == []
    # A code for a login with no account is refused in the same words as a wrong one.
    wrong = await expect_error(reset(direct, nobody, "12345678"), grpc.StatusCode.INVALID_ARGUMENT, field="code", reason="CODE_WRONG")
    also = await expect_error(reset(direct, person.email, "12345678"), grpc.StatusCode.INVALID_ARGUMENT, field="code", reason="CODE_WRONG")
    assert wrong.message == also.message


async def test_a_code_is_tried_a_few_times_and_expires(direct, person, mail, clock) -> None:
    await start(direct, person.email)
    code = await code_sent_to(mail, person.email, subjects=RESET_SUBJECTS)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(5):
        await expect_error(reset(direct, person.email, wrong), grpc.StatusCode.INVALID_ARGUMENT, reason="CODE_WRONG")
    await expect_error(reset(direct, person.email, code), grpc.StatusCode.INVALID_ARGUMENT, reason="CODE_WRONG")  # tried too often
    await start(direct, person.email)
    fresh = await code_sent_to(mail, person.email, after=1, subjects=RESET_SUBJECTS)
    clock.advance(dt.timedelta(minutes=11))
    await expect_error(reset(direct, person.email, fresh), grpc.StatusCode.INVALID_ARGUMENT, reason="CODE_WRONG")  # expired
    # The password is still the old one.
    clock.advance(-dt.timedelta(minutes=11))
    assert (await person.client.whoami()).account.account_id == person.account_id


async def test_bad_input_names_the_field(direct, person) -> None:
    await expect_error(start(direct, "not a login"), grpc.StatusCode.INVALID_ARGUMENT, field="login")
    await expect_error(start(direct, ""), grpc.StatusCode.INVALID_ARGUMENT, field="login")
    await expect_error(reset(direct, person.email, "12ab5678"), grpc.StatusCode.INVALID_ARGUMENT, field="code")
    await expect_error(reset(direct, person.email, "1" * 10_000), grpc.StatusCode.INVALID_ARGUMENT, field="code")
    await expect_error(reset(direct, person.email, "12345678", "short"), grpc.StatusCode.INVALID_ARGUMENT, field="new_password")
    await expect_error(reset(direct, person.email, "12345678", person.email), grpc.StatusCode.INVALID_ARGUMENT, field="new_password")


async def test_one_contact_gets_a_few_codes_an_hour_whoever_asks(direct, person, mail) -> None:
    """(The per-address allowance of these calls is tested on an auth of its own:
    services/auth/tests/test_password_checks.py.)"""
    for _ in range(7):
        assert await start(direct, person.email) == auth_pb2.StartPasswordResetResponse()  # the same answer all along
    await code_sent_to(mail, person.email, after=4, subjects=RESET_SUBJECTS)
    assert len(reset_codes(mail, person.email)) == 5


async def test_neither_the_code_nor_the_new_password_reaches_the_logs(direct, person, mail, debug_logs) -> None:
    await start(direct, person.email)
    code = await code_sent_to(mail, person.email, subjects=RESET_SUBJECTS)
    secret = f"tell no one {uuid.uuid4().hex}"
    await reset(direct, person.email, code, secret)
    logged = "\n".join(line for line in debug_logs().splitlines() if line.startswith("{") and "mail.log" not in line)
    assert "/cumulo.auth.v1.AuthService/ResetPassword" in logged or "verification_code_sent" in logged
    assert not re.search(rf"(?<![\d.]){code}(?!\d)", logged) and secret not in logged and person.email not in logged
