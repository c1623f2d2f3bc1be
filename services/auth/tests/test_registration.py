"""Register and GetTerms: who may register, what input is refused (naming the field), and that
a refused registration writes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo_devstack.testing import call, expect_error, transport_for, unique_email, unique_phone
from cumulo_sdk.errors import CumuloRpcError

TERMS = "2026-11"
SHANGHAI_OFFSET = dt.timedelta(hours=8)


def set_clock(clock, when: dt.datetime) -> None:
    """Put the service's clock at `when` (the fixture restores it afterwards)."""
    clock.offset = when - dt.datetime.now(dt.UTC)


# --- terms and the happy paths --------------------------------------------------------


async def test_get_terms_returns_the_current_version_without_a_token(direct):
    response = await call(direct, direct.auth.GetTerms, auth_pb2.GetTermsRequest())
    assert response.version == TERMS


async def test_adult_registers_with_an_email(direct, accounts):
    email = unique_email()
    response = await accounts.register(direct, email="  " + email.upper() + " ")
    account = response.account
    assert uuid.UUID(account.account_id)
    assert account.email == email
    assert account.phone == ""
    assert (account.birth_date.year, account.birth_date.month, account.birth_date.day) == (1990, 5, 17)
    assert account.minor is False
    assert account.guardian_account_id == ""
    assert account.accepted_terms_version == TERMS
    assert account.status == auth_pb2.ACCOUNT_STATUS_ACTIVE
    assert account.created_at.seconds > 0


async def test_adult_registers_with_only_a_phone_and_logs_in_with_it(direct, accounts):
    phone = unique_phone()
    spaced = f"{phone[:3]} {phone[3:6]} {phone[6:10]}-{phone[10:]}"
    account = (await accounts.register(direct, phone=spaced)).account
    assert account.phone == phone
    assert account.email == ""
    response = await accounts.login_call(direct, phone)
    assert response.account.account_id == account.account_id


async def test_adult_registers_with_both_email_and_phone(direct, accounts):
    email, phone = unique_email(), unique_phone()
    account = (await accounts.register(direct, email=email, phone=phone)).account
    assert (account.email, account.phone) == (email, phone)


async def test_password_of_exactly_8_and_128_characters_is_accepted(direct, accounts):
    assert (await accounts.register(direct, email=unique_email(), password="xkcd-936")).account.account_id
    assert (await accounts.register(direct, email=unique_email(), password="horse-" * 21 + "xy")).account.account_id


# --- bad input: INVALID_ARGUMENT naming the field ---------------------------------------


async def test_registration_without_email_or_phone_is_refused(direct, accounts):
    await expect_error(accounts.register(direct), grpc.StatusCode.INVALID_ARGUMENT, field="email")
    await expect_error(accounts.register(direct, email="  ", phone=" "), grpc.StatusCode.INVALID_ARGUMENT, field="email")


@pytest.mark.parametrize("email", ["alice", "alice@", "@example.com", "alice@example", "a b@example.com", "x@@example.com"])
async def test_malformed_email_is_refused(direct, email, accounts):
    await expect_error(accounts.register(direct, email=email), grpc.StatusCode.INVALID_ARGUMENT, field="email")


@pytest.mark.parametrize("phone", ["13800138000", "+0123456789", "+1234567", "+1234567890123456", "+86 138 abcd 8000"])
async def test_phone_not_in_e164_form_is_refused(direct, phone, accounts):
    await expect_error(accounts.register(direct, phone=phone), grpc.StatusCode.INVALID_ARGUMENT, field="phone")


@pytest.mark.parametrize("password", ["", "xkcd-93", "horse-" * 21 + "xyz"])
async def test_password_outside_8_to_128_characters_is_refused(direct, password, accounts):
    err = await expect_error(
        accounts.register(direct, email=unique_email(), password=password), grpc.StatusCode.INVALID_ARGUMENT, field="password"
    )
    assert err.reason != "PASSWORD_TOO_COMMON"


@pytest.mark.parametrize("password", ["password123", "Password1", "woaini1314"])
async def test_common_password_is_refused(direct, password, accounts):
    await expect_error(
        accounts.register(direct, email=unique_email(), password=password),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason="PASSWORD_TOO_COMMON",
        field="password",
    )


async def test_password_equal_to_the_email_is_refused(direct, accounts):
    email = unique_email()
    await expect_error(
        accounts.register(direct, email=email, password=email.upper()), grpc.StatusCode.INVALID_ARGUMENT, field="password"
    )


async def test_missing_birth_date_is_refused(direct, accounts):
    await expect_error(
        accounts.register(direct, email=unique_email(), birth_date=None), grpc.StatusCode.INVALID_ARGUMENT, field="birth_date"
    )


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(2001, 2, 30), (2023, 2, 29), (2001, 13, 1), (2001, 0, 1), (0, 0, 0), (-1, 1, 1), (99999, 1, 1), (2999, 1, 1), (1800, 6, 1)],
    ids=["feb-30", "feb-29-common-year", "month-13", "month-0", "all-zero", "negative-year", "year-99999", "future", "over-150-years"],
)
async def test_impossible_birth_date_is_refused(direct, year, month, day, accounts):
    await expect_error(
        accounts.register(direct, email=unique_email(), birth_date=auth_pb2.Date(year=year, month=month, day=day)),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="birth_date",
    )


@pytest.mark.parametrize("terms", ["", "2025-01", "2026-11 ", "latest"])
async def test_registration_with_another_terms_version_is_refused(direct, terms, accounts):
    await expect_error(
        accounts.register(direct, email=unique_email(), terms=terms),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason="TERMS_NOT_ACCEPTED",
        field="accepted_terms_version",
    )


# --- minors ----------------------------------------------------------------------------


async def test_someone_under_18_cannot_register_themselves(direct, auth, accounts):
    today = auth.clock.now().astimezone(auth.app.settings.time_zone).date()
    seventeen = auth_pb2.Date(year=today.year - 17, month=1, day=1)
    await expect_error(
        accounts.register(direct, email=unique_email(), birth_date=seventeen),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="GUARDIAN_REQUIRED",
    )


async def test_eighteenth_birthday_is_reckoned_in_asia_shanghai(direct, clock, accounts):
    born = auth_pb2.Date(year=2013, month=7, day=15)
    # 23:00 on 14 July in Shanghai: still 17 there.
    set_clock(clock, dt.datetime(2031, 7, 14, 23, 0, tzinfo=dt.UTC) - SHANGHAI_OFFSET)
    email = unique_email()
    await expect_error(
        accounts.register(direct, email=email, birth_date=born), grpc.StatusCode.PERMISSION_DENIED, reason="GUARDIAN_REQUIRED"
    )
    # 04:00 on 15 July in Shanghai, while it is still 14 July in UTC: 18 today.
    set_clock(clock, dt.datetime(2031, 7, 15, 4, 0, tzinfo=dt.UTC) - SHANGHAI_OFFSET)
    account = (await accounts.register(direct, email=email, birth_date=born)).account
    assert account.minor is False
    # Born a day later: 18 only tomorrow.
    await expect_error(
        accounts.register(direct, email=unique_email(), birth_date=auth_pb2.Date(year=2013, month=7, day=16)),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="GUARDIAN_REQUIRED",
    )


# --- uniqueness ------------------------------------------------------------------------


async def test_duplicate_email_is_refused_whatever_its_case(direct, accounts):
    email = unique_email()
    await accounts.register(direct, email=email)
    await expect_error(accounts.register(direct, email=email), grpc.StatusCode.ALREADY_EXISTS, field="email")
    await expect_error(accounts.register(direct, email=" " + email.upper()), grpc.StatusCode.ALREADY_EXISTS, field="email")


async def test_duplicate_phone_is_refused_whatever_its_spacing(direct, accounts):
    phone = unique_phone()
    await accounts.register(direct, phone=phone)
    spaced = f"{phone[:3]} {phone[3:]}"
    await expect_error(accounts.register(direct, email=unique_email(), phone=spaced), grpc.StatusCode.ALREADY_EXISTS, field="phone")


async def test_concurrent_registrations_of_one_email_create_one_account(direct, accounts):
    email = unique_email()
    results = await asyncio.gather(*(accounts.register(direct, email=email) for _ in range(3)), return_exceptions=True)
    created = [r for r in results if isinstance(r, auth_pb2.RegisterResponse)]
    refused = [r for r in results if isinstance(r, CumuloRpcError)]
    assert len(created) == 1, results
    assert len(refused) == 2, results
    assert all(r.code == grpc.StatusCode.ALREADY_EXISTS for r in refused), refused
    assert (await accounts.login_call(direct, email)).account.account_id == created[0].account.account_id


# --- a refused registration writes nothing ------------------------------------------------


async def test_refused_registrations_leave_the_email_and_phone_free(direct, auth, accounts):
    email, phone = unique_email(), unique_phone()
    today = auth.clock.now().astimezone(auth.app.settings.time_zone).date()
    attempts = [
        dict(phone="12345", email=email),  # bad phone next to a good e-mail
        dict(email=email, phone=phone, password="password123"),  # common password
        dict(email=email, phone=phone, terms="2020-01"),  # terms not accepted
        dict(email=email, phone=phone, birth_date=auth_pb2.Date(year=today.year - 10, month=1, day=1)),  # a child
        dict(email=email, phone=phone, birth_date=None),  # no birth date
    ]
    for attempt in attempts:
        with pytest.raises(CumuloRpcError) as info:
            await accounts.register(direct, **attempt)
        assert info.value.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED), info.value
    account = (await accounts.register(direct, email=email, phone=phone)).account
    assert (account.email, account.phone) == (email, phone)


async def test_registration_from_an_unregistered_client_app_is_refused_and_writes_nothing(direct, auth, accounts):
    from cumulo_sdk import Cumulo

    email = unique_email()
    async with Cumulo(auth.target, transport=transport_for(auth.target), client_id="not-a-registered-app") as stranger:
        await expect_error(
            accounts.register(stranger, email=email), grpc.StatusCode.PERMISSION_DENIED, reason="CLIENT_NOT_AUTHORIZED"
        )
    assert (await accounts.register(direct, email=email)).account.email == email
