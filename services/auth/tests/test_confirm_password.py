"""ConfirmPassword: the password once more, in a live session, for what needs it fresh (wiping
a device). The answer is a new access token whose claim pwd_at says when; a login sets pwd_at
too, a refresh keeps the session's. Wrong passwords are throttled per session (as for
ChangePassword and CancelAccount): the session's free failures, then LOGIN_THROTTLED even for
the right one; strangers' failed logins never refuse a signed-in session, and a session's
failures never refuse logins."""

from __future__ import annotations

import asyncio
import datetime as dt
import pathlib

import grpc
import jwt
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo_devstack.testing import PASSWORD, call, expect_error, fake_client_address, unique_email
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore
from cumulo_sdk.errors import CumuloRpcError

WRONG = "definitely not the password"
SESSION_FREE_FAILURES = 5
ACCOUNT_ADDRESS_FREE_FAILURES = 5
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def confirm(client: Cumulo, access_token: str | None, password: str = PASSWORD):
    """The ConfirmPassword call, to await (or expect to fail)."""
    return call(client, client.auth.ConfirmPassword, auth_pb2.ConfirmPasswordRequest(password=password), access_token)


async def wrong_confirmation(client: Cumulo, access_token: str) -> None:
    await expect_error(confirm(client, access_token, WRONG), DENIED, reason="INVALID_CREDENTIALS")


async def throttled_confirmation(client: Cumulo, access_token: str, password: str = WRONG) -> CumuloRpcError:
    err = await expect_error(confirm(client, access_token, password), EXHAUSTED, reason="LOGIN_THROTTLED")
    assert err.retry_after_seconds is not None and err.retry_after_seconds > 0, err
    return err


# --- the right password -------------------------------------------------------------------------


async def test_the_login_says_when_the_password_was_entered(direct, accounts, auth):
    before = int(auth.clock.now().timestamp())
    member = await accounts.new_member(direct)
    after = auth.clock.now().timestamp()
    issued = claims(member.access_token)
    assert before <= issued["pwd_at"] <= after
    assert abs(issued["pwd_at"] - issued["iat"]) <= 1


async def test_the_right_password_gives_a_new_access_token_saying_it_was_just_entered(direct, accounts, auth, clock):
    member = await accounts.new_member(direct)
    at_login = claims(member.access_token)
    clock.advance(dt.timedelta(minutes=2))  # so that "now" is not the login's time
    before = int(auth.clock.now().timestamp())
    response = await confirm(direct, member.access_token)
    after = auth.clock.now().timestamp()
    token = claims(response.access_token)
    assert response.access_token != member.access_token
    assert before <= token["pwd_at"] <= after
    assert token["pwd_at"] >= at_login["pwd_at"] + 120
    assert token["pwd_at"] == response.password_confirmed_at.seconds
    assert token["exp"] == response.access_token_expires_at.seconds > token["pwd_at"]
    # the same account, session and client app; only the time of the password is new
    for claim in ("sub", "sid", "azp", "minor", "roles", "iss", "aud"):
        assert token[claim] == at_login[claim], claim
    assert token["jti"] != at_login["jti"]
    me = await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), response.access_token)
    assert me.account.account_id == member.account_id


async def test_the_sdk_keeps_the_confirmed_token_for_the_next_calls(gateway, clock, tmp_path: pathlib.Path):
    """Through the gateway, as the CLI and phones call: confirm_password stores the new access
    token (in memory and in the credentials file); the refresh token and the session stay."""
    path = tmp_path / "credentials.json"
    email = unique_email()
    async with Cumulo(gateway, store=TokenStore(path)) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
        await client.login(email, PASSWORD, device_name="test phone")
        before = client.store.tokens
        assert before is not None
        clock.advance(dt.timedelta(minutes=2))
        await client.confirm_password(PASSWORD)
        after = client.store.tokens
        assert after is not None and after.access_token != before.access_token
        assert claims(after.access_token)["pwd_at"] >= claims(before.access_token)["pwd_at"] + 120
        assert after.access_expires_at == claims(after.access_token)["exp"]
        assert (after.refresh_token, after.session_id, after.account_id, after.login) == (
            before.refresh_token, before.session_id, before.account_id, before.login,
        )
        assert TokenStore(path).tokens == after
        assert await client.access_token() == after.access_token
        assert (await client.whoami()).account.email == email


# --- wrong, empty, without a session ----------------------------------------------------------------


async def test_a_wrong_password_is_refused_and_gives_nothing(direct, accounts):
    member = await accounts.new_member(direct)
    err = await expect_error(confirm(direct, member.access_token, WRONG), DENIED, reason="INVALID_CREDENTIALS")
    assert WRONG not in err.message and PASSWORD not in err.message
    # the session goes on as before, its password time still the login's
    assert (await accounts.get_account(direct, member.access_token)).account.account_id == member.account_id
    refreshed = await accounts.refresh(direct, member.refresh_token)
    assert claims(refreshed.tokens.access_token)["pwd_at"] == claims(member.access_token)["pwd_at"]


async def test_wrong_confirmations_throttle_the_session_then_even_the_right_one_but_not_logins(direct, accounts, clock):
    member = await accounts.new_member(direct)
    for _ in range(SESSION_FREE_FAILURES):
        await wrong_confirmation(direct, member.access_token)
    await throttled_confirmation(direct, member.access_token)
    err = await throttled_confirmation(direct, member.access_token, PASSWORD)
    # It is the session's throttle: the account's logins go on, and so does another session.
    other = await accounts.login(direct, member.email)
    await confirm(direct, other.access_token)
    clock.advance(dt.timedelta(seconds=err.retry_after_seconds + 1))
    confirmed = await confirm(direct, member.access_token)
    assert claims(confirmed.access_token)["sid"] == member.session_id
    # the right password cleared the session's slate
    for _ in range(SESSION_FREE_FAILURES - 1):
        await wrong_confirmation(direct, member.access_token)
    await confirm(direct, member.access_token)


async def test_strangers_failed_logins_do_not_refuse_a_signed_in_sessions_confirmation(direct, accounts):
    """Knowing only the e-mail address, a stranger fails at the login many times; the owner's
    session confirms its password all the same."""
    member = await accounts.new_member(direct)
    stranger = fake_client_address()
    for _ in range(ACCOUNT_ADDRESS_FREE_FAILURES):
        await expect_error(accounts.login_call(direct, member.email, WRONG, address=stranger), UNAUTHENTICATED, reason="INVALID_CREDENTIALS")
    await expect_error(accounts.login_call(direct, member.email, PASSWORD, address=stranger), EXHAUSTED, reason="LOGIN_THROTTLED")
    confirmed = await confirm(direct, member.access_token)
    assert claims(confirmed.access_token)["sid"] == member.session_id


async def test_a_sessions_wrong_confirmations_and_its_accounts_failed_logins_are_counted_apart(direct, accounts):
    member = await accounts.new_member(direct)
    address = fake_client_address()
    for _ in range(ACCOUNT_ADDRESS_FREE_FAILURES - 1):
        await expect_error(accounts.login_call(direct, member.email, WRONG, address=address), UNAUTHENTICATED, reason="INVALID_CREDENTIALS")
    for _ in range(SESSION_FREE_FAILURES - 1):
        await wrong_confirmation(direct, member.access_token)
    # Neither count is spent by the other: one more wrong of each is still free, and only
    # then is each throttled.
    await expect_error(accounts.login_call(direct, member.email, WRONG, address=address), UNAUTHENTICATED, reason="INVALID_CREDENTIALS")
    await expect_error(accounts.login_call(direct, member.email, PASSWORD, address=address), EXHAUSTED, reason="LOGIN_THROTTLED")
    await wrong_confirmation(direct, member.access_token)
    await throttled_confirmation(direct, member.access_token, PASSWORD)


async def test_concurrent_wrong_confirmations_get_no_more_than_the_free_failures(direct, accounts):
    """A burst of parallel guesses must not slip past the throttle before it has counted them."""
    member = await accounts.new_member(direct)
    results = await asyncio.gather(
        *(confirm(direct, member.access_token, f"guess number {i}") for i in range(12)), return_exceptions=True
    )
    assert all(isinstance(r, CumuloRpcError) for r in results), results
    verdicts = [r.reason for r in results]
    assert set(verdicts) <= {"INVALID_CREDENTIALS", "LOGIN_THROTTLED"}, verdicts
    assert verdicts.count("INVALID_CREDENTIALS") <= SESSION_FREE_FAILURES, verdicts


async def test_an_empty_password_is_invalid_and_not_counted(direct, accounts):
    member = await accounts.new_member(direct)
    for _ in range(SESSION_FREE_FAILURES + 1):
        await expect_error(confirm(direct, member.access_token, ""), grpc.StatusCode.INVALID_ARGUMENT, field="password")
    # none of them was a guess: the right password goes through, and five wrong ones are still free
    await confirm(direct, member.access_token)
    for _ in range(SESSION_FREE_FAILURES):
        await wrong_confirmation(direct, member.access_token)


async def test_without_an_access_token_it_is_unauthenticated(direct):
    await expect_error(confirm(direct, None), UNAUTHENTICATED, reason="TOKEN_MISSING")


@pytest.mark.parametrize("how", ["logout", "revoked-from-another-session"])
async def test_a_session_that_has_ended_cannot_confirm(direct, accounts, how):
    """The access token of an ended session has not expired yet; auth knows the session is
    over and gives no fresh token, for the right password either."""
    email = await accounts.new_account(direct)
    ended = await accounts.login(direct, email)
    if how == "logout":
        await call(direct, direct.auth.Logout, auth_pb2.LogoutRequest(), ended.access_token)
    else:
        other = await accounts.login(direct, email)
        await call(direct, direct.auth.RevokeSession, auth_pb2.RevokeSessionRequest(session_id=ended.session_id), other.access_token)
    await expect_error(confirm(direct, ended.access_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
    await expect_error(confirm(direct, ended.access_token, WRONG), UNAUTHENTICATED, reason="SESSION_REVOKED")


# --- refresh keeps the session's time ---------------------------------------------------------


async def test_a_refreshed_token_keeps_the_sessions_password_time(direct, accounts, clock):
    """Ten minutes after the login a refresh gives a token issued then, whose pwd_at is still
    the login's; after a ConfirmPassword, later refreshes carry the confirmation's time."""
    member = await accounts.new_member(direct)
    at_login = claims(member.access_token)["pwd_at"]
    clock.advance(dt.timedelta(minutes=10))
    first = (await accounts.refresh(direct, member.refresh_token)).tokens
    refreshed = claims(first.access_token)
    assert refreshed["pwd_at"] == at_login
    assert refreshed["iat"] >= at_login + 600
    confirmed = claims((await confirm(direct, first.access_token)).access_token)["pwd_at"]
    assert confirmed >= at_login + 600
    clock.advance(dt.timedelta(minutes=10))
    second = claims((await accounts.refresh(direct, first.refresh_token)).tokens.access_token)
    assert second["pwd_at"] == confirmed
    assert second["iat"] >= confirmed + 600


async def test_confirming_in_one_session_does_not_freshen_another(direct, accounts, clock):
    email = await accounts.new_account(direct)
    phone = await accounts.login(direct, email, device_name="phone")
    laptop = await accounts.login(direct, email, device_name="laptop")
    clock.advance(dt.timedelta(minutes=5))
    confirmed = claims((await confirm(direct, laptop.access_token)).access_token)["pwd_at"]
    refreshed = claims((await accounts.refresh(direct, phone.refresh_token)).tokens.access_token)
    assert refreshed["pwd_at"] == claims(phone.access_token)["pwd_at"] < confirmed
