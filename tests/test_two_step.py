"""Two-step sign-in through the gateway: turned on with the password and a code from the app
(a real TOTP computed here with pyotp, on auth's clock), asked at every login, never at a
refresh; a code is good once; recovery codes are single-use; wrong codes count in the login
throttle; the secret is kept sealed and never logged."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid

import grpc
import pyotp
import pytest
import sqlalchemy as sa

from cumulo_auth.adapters.tables import second_factors
from cumulo_devstack.testing import PASSWORD, expect_error


def code_at(secret: str, clock, *, steps: int = 0) -> str:
    """The app's code at auth's time (and `steps` of 30 s later)."""
    return pyotp.TOTP(secret).at(clock.now() + dt.timedelta(seconds=30 * steps))


@pytest.fixture
async def enrolled(people, clock):
    """A person with two-step sign-in on: (person, secret, recovery codes)."""
    person = await people.new("phone")
    begun = await person.client.two_step_begin()
    codes = await person.client.two_step_confirm(code_at(begun.secret, clock))
    return person, begun.secret, codes


async def test_turning_it_on_takes_the_password_and_a_code_from_the_app(people, auth, clock) -> None:
    person = await people.new("phone")
    begun = await person.client.two_step_begin()
    uri = urllib.parse.urlparse(begun.otpauth_uri)
    query = urllib.parse.parse_qs(uri.query)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp") and query["secret"] == [begun.secret] and query["issuer"] == ["cumulo"]
    assert person.email in urllib.parse.unquote(uri.path)
    # Not on until the app proves it has the secret.
    assert not (await person.client.whoami()).account.two_step
    await expect_error(person.client.two_step_confirm("000000" if code_at(begun.secret, clock) != "000000" else "111111"),
                       grpc.StatusCode.INVALID_ARGUMENT, field="code", reason="CODE_WRONG")
    await expect_error(person.client.two_step_confirm("12ab56"), grpc.StatusCode.INVALID_ARGUMENT, field="code")
    codes = await person.client.two_step_confirm(code_at(begun.secret, clock))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await person.client.whoami()).account.two_step
    await expect_error(person.client.two_step_begin(), grpc.StatusCode.FAILED_PRECONDITION, reason="TWO_STEP_ALREADY_ON")
    # The secret is kept sealed.
    async with auth.app.db.read() as conn:
        row = (await conn.execute(sa.select(second_factors).where(second_factors.c.account_id == uuid.UUID(person.account_id)))).one()
    assert begun.secret.encode() not in row.secret_sealed


async def test_an_old_session_is_not_enough_to_turn_it_on(people, clock) -> None:
    person = await people.new("phone")
    clock.advance(dt.timedelta(minutes=11))
    await person.client.access_token(force_refresh=True)
    await expect_error(person.client.two_step_begin(), grpc.StatusCode.FAILED_PRECONDITION, reason="RECENT_PASSWORD_REQUIRED")


async def test_every_login_asks_for_the_second_step_and_a_code_is_good_once(enrolled, people, clock) -> None:
    person, secret, _ = enrolled
    await expect_error(people.login(person.email, "laptop"), grpc.StatusCode.FAILED_PRECONDITION, reason="SECOND_FACTOR_REQUIRED")
    await expect_error(people.login(person.email, "laptop", password="not the password"), grpc.StatusCode.UNAUTHENTICATED,
                       reason="INVALID_CREDENTIALS")  # the password first: nothing said of the second step
    # The code the confirmation spent is spent; the next step's works once.
    await expect_error(people.login(person.email, "laptop", second_factor=code_at(secret, clock)), grpc.StatusCode.UNAUTHENTICATED,
                       reason="SECOND_FACTOR_WRONG")
    clock.advance(dt.timedelta(seconds=30))
    laptop = await people.login(person.email, "laptop", second_factor=code_at(secret, clock))
    assert laptop.account_id == person.account_id
    await expect_error(people.login(person.email, "tablet", second_factor=code_at(secret, clock)), grpc.StatusCode.UNAUTHENTICATED,
                       reason="SECOND_FACTOR_WRONG")
    # A refresh does not ask.
    await laptop.client.access_token(force_refresh=True)
    assert (await laptop.client.whoami()).account.two_step


async def test_a_recovery_code_signs_in_once(enrolled, people) -> None:
    person, _, codes = enrolled
    first = await people.login(person.email, "new phone", second_factor=codes[0].upper().replace("-", " "))
    assert first.account_id == person.account_id
    await expect_error(people.login(person.email, "other", second_factor=codes[0]), grpc.StatusCode.UNAUTHENTICATED,
                       reason="SECOND_FACTOR_WRONG")
    assert (await people.login(person.email, "other", second_factor=codes[1])).account_id == person.account_id


async def test_wrong_codes_count_as_wrong_passwords(enrolled, people, clock) -> None:
    person, secret, _ = enrolled
    for _ in range(5):
        await expect_error(people.login(person.email, "guess", second_factor="000000"), grpc.StatusCode.UNAUTHENTICATED)
    refused = await expect_error(people.login(person.email, "guess", second_factor="000000"), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert refused.reason == "LOGIN_THROTTLED"


async def test_turning_it_off_takes_the_password_and_a_code(enrolled, people, clock) -> None:
    person, secret, codes = enrolled
    await expect_error(person.client.two_step_disable("999999" if code_at(secret, clock, steps=1) != "999999" else "888888"),
                       grpc.StatusCode.INVALID_ARGUMENT, field="code", reason="CODE_WRONG")
    await person.client.two_step_disable(codes[2])
    assert not (await person.client.whoami()).account.two_step
    assert (await people.login(person.email, "laptop")).account_id == person.account_id  # no second step now


async def test_the_secret_and_the_codes_never_reach_the_logs(people, clock, debug_logs) -> None:
    person = await people.new("phone")
    begun = await person.client.two_step_begin()
    code = code_at(begun.secret, clock)
    codes = await person.client.two_step_confirm(code)
    logged = debug_logs()
    assert "/cumulo.auth.v1.AuthService/ConfirmTwoStep" in logged  # the calls were logged ...
    assert begun.secret not in logged and all(c not in logged for c in codes)  # ... without their secrets
    assert PASSWORD not in logged


async def test_a_purged_account_keeps_no_secret_nor_recovery_code(enrolled, auth) -> None:
    from cumulo_auth.adapters.tables import recovery_codes

    person, _, _ = enrolled
    account = uuid.UUID(person.account_id)

    async def rows() -> tuple[int, int]:
        async with auth.app.db.read() as conn:
            secrets_kept = (await conn.execute(sa.select(sa.func.count()).where(second_factors.c.account_id == account))).scalar_one()
            codes_kept = (await conn.execute(sa.select(sa.func.count()).where(recovery_codes.c.account_id == account))).scalar_one()
        return secrets_kept, codes_kept

    assert await rows() == (1, 10)  # there first ...
    await auth.app.purge.purge_account(account, "deleted")
    assert await rows() == (0, 0)  # ... gone with the account
