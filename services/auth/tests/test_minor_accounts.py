"""CreateMinorAccount: a logged-in adult creates the account of a minor in their care."""

from __future__ import annotations

import datetime as dt

import grpc
import jwt
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo_devstack.testing import PASSWORD, call, expect_error, unique_email

CHILD_PASSWORD = "purple monkey dishwasher"
TERMS = "2026-11"
ADULT = auth_pb2.Date(year=1990, month=5, day=17)


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def as_date(day: dt.date) -> auth_pb2.Date:
    return auth_pb2.Date(year=day.year, month=day.month, day=day.day)


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def create_minor(client, guardian, *, email="", phone="", password=CHILD_PASSWORD, birth_date=None, consent=True):
    request = auth_pb2.CreateMinorAccountRequest(email=email, phone=phone, password=password, guardian_consent=consent)
    if birth_date is not None:
        request.birth_date.CopyFrom(birth_date)
    return call(client, client.auth.CreateMinorAccount, request, guardian.access_token)


def today_in_shanghai(auth) -> dt.date:
    return auth.clock.now().astimezone(auth.app.settings.time_zone).date()


@pytest.fixture(scope="module")
async def guardian(module_client, accounts):
    return await accounts.new_member(module_client)


@pytest.fixture
def child_birth_date(auth) -> auth_pb2.Date:
    return as_date(years_before(today_in_shanghai(auth), 10))


async def test_adult_creates_a_minor_account_linked_to_them(direct, guardian, child_birth_date):
    email = unique_email()
    account = (await create_minor(direct, guardian, email=email, birth_date=child_birth_date)).account
    assert account.minor is True
    assert account.guardian_account_id == guardian.account_id
    assert account.email == email
    assert account.status == auth_pb2.ACCOUNT_STATUS_ACTIVE
    assert account.accepted_terms_version == TERMS
    assert account.account_id != guardian.account_id


async def test_minor_logs_in_and_their_access_token_says_minor(direct, guardian, child_birth_date, accounts):
    email = unique_email()
    created = (await create_minor(direct, guardian, email=email, birth_date=child_birth_date)).account
    response = await accounts.login_call(direct, email, CHILD_PASSWORD)
    assert response.account.account_id == created.account_id
    assert claims(response.tokens.access_token)["minor"] is True
    assert claims(guardian.access_token)["minor"] is False
    me = await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), response.tokens.access_token)
    assert me.account.minor is True
    assert me.account.guardian_account_id == guardian.account_id


async def test_minor_account_without_guardian_consent_is_refused_and_not_created(direct, guardian, child_birth_date):
    email = unique_email()
    await expect_error(
        create_minor(direct, guardian, email=email, birth_date=child_birth_date, consent=False),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="guardian_consent",
    )
    # Nothing was written: the same e-mail can still be used.
    account = (await create_minor(direct, guardian, email=email, birth_date=child_birth_date)).account
    assert account.email == email


async def test_minor_account_for_an_adult_birth_date_is_refused(direct, guardian, auth):
    eighteen_today = as_date(years_before(today_in_shanghai(auth), 18))
    await expect_error(
        create_minor(direct, guardian, email=unique_email(), birth_date=eighteen_today),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="birth_date",
    )
    await expect_error(
        create_minor(direct, guardian, email=unique_email(), birth_date=ADULT), grpc.StatusCode.INVALID_ARGUMENT, field="birth_date"
    )


async def test_minor_account_for_someone_turning_18_tomorrow_is_accepted(direct, guardian, auth):
    born = years_before(today_in_shanghai(auth), 18) + dt.timedelta(days=1)
    account = (await create_minor(direct, guardian, email=unique_email(), birth_date=as_date(born))).account
    assert account.minor is True


async def test_minor_account_input_is_validated_naming_the_field(direct, guardian, child_birth_date):
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    await expect_error(create_minor(direct, guardian, email=unique_email(), birth_date=None), invalid, field="birth_date")
    await expect_error(
        create_minor(direct, guardian, email=unique_email(), birth_date=auth_pb2.Date(year=2020, month=2, day=30)),
        invalid,
        field="birth_date",
    )
    await expect_error(create_minor(direct, guardian, birth_date=child_birth_date), invalid, field="email")
    await expect_error(create_minor(direct, guardian, email="kid@", birth_date=child_birth_date), invalid, field="email")
    await expect_error(create_minor(direct, guardian, phone="12345", birth_date=child_birth_date), invalid, field="phone")
    await expect_error(
        create_minor(direct, guardian, email=unique_email(), password="short", birth_date=child_birth_date),
        invalid,
        field="password",
    )
    await expect_error(
        create_minor(direct, guardian, email=unique_email(), password="12345678", birth_date=child_birth_date),
        invalid,
        reason="PASSWORD_TOO_COMMON",
        field="password",
    )


async def test_minor_account_with_a_taken_email_is_refused(direct, guardian, child_birth_date):
    await expect_error(
        create_minor(direct, guardian, email=guardian.email, birth_date=child_birth_date),
        grpc.StatusCode.ALREADY_EXISTS,
        field="email",
    )


async def test_minor_cannot_create_a_minor_account(direct, guardian, child_birth_date, accounts):
    email = unique_email()
    await create_minor(direct, guardian, email=email, birth_date=child_birth_date)
    as_minor = await accounts.login(direct, email, CHILD_PASSWORD)
    await expect_error(
        create_minor(direct, as_minor, email=unique_email(), birth_date=child_birth_date),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="GUARDIAN_MUST_BE_ADULT",
    )


async def test_minor_who_turns_18_is_no_longer_treated_as_a_minor(direct, guardian, auth, clock, accounts):
    """`minor` means under 18 (ages.is_minor). A minor's account outlives their 18th birthday;
    from then on the access tokens other services rely on must not say minor any more."""
    born = years_before(today_in_shanghai(auth), 18) + dt.timedelta(days=3)
    email = unique_email()
    created = (await create_minor(direct, guardian, email=email, birth_date=as_date(born))).account
    assert claims((await accounts.login_call(direct, email, CHILD_PASSWORD)).tokens.access_token)["minor"] is True
    clock.advance(dt.timedelta(days=4))  # past the 18th birthday
    grown_up = await accounts.login_call(direct, email, CHILD_PASSWORD)
    assert grown_up.account.account_id == created.account_id
    assert claims(grown_up.tokens.access_token)["minor"] is False


# --- a guardian's minors, and their passwords -----------------------------------------------------


async def test_a_guardian_lists_their_minors_and_sets_a_forgotten_password(direct, accounts, child_birth_date, clock):
    guardian = await accounts.new_member(direct)
    email = unique_email()
    child = (await create_minor(direct, guardian, email=email, birth_date=child_birth_date)).account
    listed = await call(direct, direct.auth.ListMinors, auth_pb2.ListMinorsRequest(), guardian.access_token)
    assert [(m.account_id, m.login) for m in listed.minors] == [(child.account_id, email)]
    assert listed.minors[0].until.ToDatetime(dt.UTC).date() > today_in_shanghai_of(clock)
    session = await accounts.login_call(direct, email, CHILD_PASSWORD)
    new = "a new passphrase for the child"
    request = auth_pb2.SetMinorPasswordRequest(minor_account_id=child.account_id, new_password=new)
    # The guardian's own password, entered lately: a session left open is not enough.
    clock.advance(dt.timedelta(minutes=11))
    await expect_error(
        call(direct, direct.auth.SetMinorPassword, request, guardian.access_token), grpc.StatusCode.FAILED_PRECONDITION,
        reason="RECENT_PASSWORD_REQUIRED",
    )
    fresh = await accounts.login_call(direct, guardian.email, PASSWORD)
    # A weak password is refused naming the field, the right one is set: the child's sessions end.
    await expect_error(
        call(direct, direct.auth.SetMinorPassword, auth_pb2.SetMinorPasswordRequest(minor_account_id=child.account_id, new_password=email),
             fresh.tokens.access_token),
        grpc.StatusCode.INVALID_ARGUMENT, field="new_password",
    )
    await call(direct, direct.auth.SetMinorPassword, request, fresh.tokens.access_token)
    await expect_error(
        call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), session.tokens.access_token), grpc.StatusCode.UNAUTHENTICATED
    )
    assert (await accounts.login_call(direct, email, new)).account.account_id == child.account_id


async def test_no_one_sets_the_password_of_an_account_not_in_their_care(direct, accounts, child_birth_date):
    guardian, stranger = await accounts.new_member(direct), await accounts.new_member(direct)
    email = unique_email()
    child = (await create_minor(direct, guardian, email=email, birth_date=child_birth_date)).account
    for target, caller in ((child.account_id, stranger), (stranger.account_id, guardian), (guardian.account_id, guardian)):
        await expect_error(
            call(direct, direct.auth.SetMinorPassword,
                 auth_pb2.SetMinorPasswordRequest(minor_account_id=target, new_password="a new passphrase for the child"), caller.access_token),
            grpc.StatusCode.NOT_FOUND, reason="MINOR_NOT_FOUND",
        )
    await expect_error(
        call(direct, direct.auth.SetMinorPassword, auth_pb2.SetMinorPasswordRequest(minor_account_id="nope", new_password="x" * 20),
             guardian.access_token),
        grpc.StatusCode.INVALID_ARGUMENT, field="minor_account_id",
    )
    assert (await call(direct, direct.auth.ListMinors, auth_pb2.ListMinorsRequest(), stranger.access_token)).minors == []
    # The child's password is the one it had.
    assert (await accounts.login_call(direct, email, CHILD_PASSWORD)).account.account_id == child.account_id


def today_in_shanghai_of(clock) -> dt.date:
    return clock.now().astimezone(dt.timezone(dt.timedelta(hours=8))).date()
