"""CreateMinorAccount: a logged-in adult creates the account of a minor in their care."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid

import grpc
import jwt
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo_sdk import Cumulo
from cumulo_sdk.errors import CumuloRpcError

PASSWORD = "correct horse battery staple"
CHILD_PASSWORD = "purple monkey dishwasher"
TERMS = "2026-11"
ADULT = auth_pb2.Date(year=1990, month=5, day=17)


def new_email() -> str:
    return f"minor-{uuid.uuid4().hex[:12]}@example.com"


def new_address() -> str:
    return f"2001:db8:2::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def as_date(day: dt.date) -> auth_pb2.Date:
    return auth_pb2.Date(year=day.year, month=day.month, day=day.day)


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def call(client, method, request, token=None, *, address=None):
    metadata = client.metadata(token) + [("x-forwarded-for", address or new_address())]
    try:
        return await method(request, metadata=metadata, timeout=20)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


async def fails(awaitable, code, reason=None, field=None) -> CumuloRpcError:
    with pytest.raises(CumuloRpcError) as info:
        await awaitable
    err = info.value
    assert err.code == code, err
    if reason is not None:
        assert err.reason == reason, err
    if field is not None:
        assert err.field == field, err
    return err


@dataclasses.dataclass
class Member:
    account_id: str
    email: str
    access_token: str


async def login(client, login, password=PASSWORD) -> auth_pb2.LoginResponse:
    return await call(client, client.auth.Login, auth_pb2.LoginRequest(login=login, password=password, device_name="tablet"))


async def adult(client) -> Member:
    email = new_email()
    await call(
        client,
        client.auth.Register,
        auth_pb2.RegisterRequest(email=email, password=PASSWORD, birth_date=ADULT, accepted_terms_version=TERMS),
    )
    response = await login(client, email)
    return Member(response.account.account_id, email, response.tokens.access_token)


def create_minor(client, guardian: Member, *, email="", phone="", password=CHILD_PASSWORD, birth_date=None, consent=True):
    request = auth_pb2.CreateMinorAccountRequest(email=email, phone=phone, password=password, guardian_consent=consent)
    if birth_date is not None:
        request.birth_date.CopyFrom(birth_date)
    return call(client, client.auth.CreateMinorAccount, request, guardian.access_token)


def today_in_shanghai(auth) -> dt.date:
    return auth.clock.now().astimezone(auth.app.settings.time_zone).date()


@pytest.fixture(scope="module")
async def module_client(auth):
    async with Cumulo(auth.target) as client:
        yield client


@pytest.fixture(scope="module")
async def guardian(module_client) -> Member:
    return await adult(module_client)


@pytest.fixture
def child_birth_date(auth) -> auth_pb2.Date:
    return as_date(years_before(today_in_shanghai(auth), 10))


async def test_adult_creates_a_minor_account_linked_to_them(direct, guardian, child_birth_date):
    email = new_email()
    account = (await create_minor(direct, guardian, email=email, birth_date=child_birth_date)).account
    assert account.minor is True
    assert account.guardian_account_id == guardian.account_id
    assert account.email == email
    assert account.status == auth_pb2.ACCOUNT_STATUS_ACTIVE
    assert account.accepted_terms_version == TERMS
    assert account.account_id != guardian.account_id


async def test_minor_logs_in_and_their_access_token_says_minor(direct, guardian, child_birth_date):
    email = new_email()
    created = (await create_minor(direct, guardian, email=email, birth_date=child_birth_date)).account
    response = await login(direct, email, CHILD_PASSWORD)
    assert response.account.account_id == created.account_id
    assert claims(response.tokens.access_token)["minor"] is True
    assert claims(guardian.access_token)["minor"] is False
    me = await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), response.tokens.access_token)
    assert me.account.minor is True
    assert me.account.guardian_account_id == guardian.account_id


async def test_minor_account_without_guardian_consent_is_refused_and_not_created(direct, guardian, child_birth_date):
    email = new_email()
    await fails(
        create_minor(direct, guardian, email=email, birth_date=child_birth_date, consent=False),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="guardian_consent",
    )
    # Nothing was written: the same e-mail can still be used.
    account = (await create_minor(direct, guardian, email=email, birth_date=child_birth_date)).account
    assert account.email == email


async def test_minor_account_for_an_adult_birth_date_is_refused(direct, guardian, auth):
    eighteen_today = as_date(years_before(today_in_shanghai(auth), 18))
    await fails(
        create_minor(direct, guardian, email=new_email(), birth_date=eighteen_today),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="birth_date",
    )
    await fails(create_minor(direct, guardian, email=new_email(), birth_date=ADULT), grpc.StatusCode.INVALID_ARGUMENT, field="birth_date")


async def test_minor_account_for_someone_turning_18_tomorrow_is_accepted(direct, guardian, auth):
    born = years_before(today_in_shanghai(auth), 18) + dt.timedelta(days=1)
    account = (await create_minor(direct, guardian, email=new_email(), birth_date=as_date(born))).account
    assert account.minor is True


async def test_minor_account_input_is_validated_naming_the_field(direct, guardian, child_birth_date):
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    await fails(create_minor(direct, guardian, email=new_email(), birth_date=None), invalid, field="birth_date")
    await fails(
        create_minor(direct, guardian, email=new_email(), birth_date=auth_pb2.Date(year=2020, month=2, day=30)),
        invalid,
        field="birth_date",
    )
    await fails(create_minor(direct, guardian, birth_date=child_birth_date), invalid, field="email")
    await fails(create_minor(direct, guardian, email="kid@", birth_date=child_birth_date), invalid, field="email")
    await fails(create_minor(direct, guardian, phone="12345", birth_date=child_birth_date), invalid, field="phone")
    await fails(
        create_minor(direct, guardian, email=new_email(), password="short", birth_date=child_birth_date), invalid, field="password"
    )
    await fails(
        create_minor(direct, guardian, email=new_email(), password="12345678", birth_date=child_birth_date),
        invalid,
        reason="PASSWORD_TOO_COMMON",
        field="password",
    )


async def test_minor_account_with_a_taken_email_is_refused(direct, guardian, child_birth_date):
    await fails(
        create_minor(direct, guardian, email=guardian.email, birth_date=child_birth_date),
        grpc.StatusCode.ALREADY_EXISTS,
        field="email",
    )


async def test_minor_cannot_create_a_minor_account(direct, guardian, child_birth_date):
    email = new_email()
    await create_minor(direct, guardian, email=email, birth_date=child_birth_date)
    minor = await login(direct, email, CHILD_PASSWORD)
    as_minor = Member(minor.account.account_id, email, minor.tokens.access_token)
    await fails(
        create_minor(direct, as_minor, email=new_email(), birth_date=child_birth_date),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="GUARDIAN_MUST_BE_ADULT",
    )


async def test_minor_who_turns_18_is_no_longer_treated_as_a_minor(direct, guardian, auth, clock):
    """`minor` means under 18 (rules.is_minor). A minor's account outlives their 18th birthday;
    from then on the access tokens other services rely on must not say minor any more."""
    born = years_before(today_in_shanghai(auth), 18) + dt.timedelta(days=3)
    email = new_email()
    created = (await create_minor(direct, guardian, email=email, birth_date=as_date(born))).account
    assert claims((await login(direct, email, CHILD_PASSWORD)).tokens.access_token)["minor"] is True
    clock.advance(dt.timedelta(days=4))  # past the 18th birthday
    grown_up = await login(direct, email, CHILD_PASSWORD)
    assert grown_up.account.account_id == created.account_id
    assert claims(grown_up.tokens.access_token)["minor"] is False
