"""Login, refresh-token rotation and reuse detection, logout, ListSessions and RevokeSession,
session expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid

import grpc
import jwt
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo_devstack.testing import PASSWORD, call, expect_error, unique_email
from cumulo_sdk.errors import CumuloRpcError

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


async def session_ids(client, session) -> list[str]:
    listed = await call(client, client.auth.ListSessions, auth_pb2.ListSessionsRequest(), session.access_token)
    return [s.session_id for s in listed.sessions]


# --- login ---------------------------------------------------------------------------------


async def test_login_returns_tokens_for_a_new_session(direct, auth, accounts):
    email = await accounts.new_account(direct)
    response = await accounts.login_call(direct, email)
    tokens, account = response.tokens, response.account
    assert account.email == email
    assert tokens.refresh_token.startswith("crt_")
    assert uuid.UUID(tokens.session_id)
    header = jwt.get_unverified_header(tokens.access_token)
    assert header["alg"] == "EdDSA"
    assert header["kid"]
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
    assert claims["sub"] == account.account_id
    assert claims["sid"] == tokens.session_id
    assert claims["azp"] == "cumulo-cli"
    assert claims["iss"] == "cumulo-auth"
    assert claims["aud"] == "cumulo"
    assert claims["minor"] is False
    assert claims["exp"] - claims["iat"] == pytest.approx(15 * 60, abs=1)  # iat to the millisecond, exp to the second
    assert tokens.access_token_expires_at.seconds == claims["exp"]
    assert tokens.refresh_token_expires_at.ToDatetime(tzinfo=dt.UTC) > auth.clock.now() + dt.timedelta(days=89)


async def test_login_accepts_the_email_in_any_case_and_spacing(direct, accounts):
    email = await accounts.new_account(direct)
    assert (await accounts.login(direct, f"  {email.upper()} ")).session_id


async def test_wrong_password_and_unknown_login_are_indistinguishable(direct, accounts):
    email = await accounts.new_account(direct)
    wrong = await expect_error(
        accounts.login_call(direct, email, "not the password at all"), UNAUTHENTICATED, reason="INVALID_CREDENTIALS"
    )
    unknown = await expect_error(accounts.login_call(direct, unique_email()), UNAUTHENTICATED, reason="INVALID_CREDENTIALS")
    unknown_phone = await expect_error(accounts.login_call(direct, "+8613900000001"), UNAUTHENTICATED, reason="INVALID_CREDENTIALS")
    assert wrong.message == unknown.message == unknown_phone.message


@pytest.mark.parametrize(
    ("login_value", "password", "device_name", "field"),
    [
        ("", PASSWORD, "", "login"),
        ("   ", PASSWORD, "", "login"),
        ("just-a-name", PASSWORD, "", "login"),
        ("alice@", PASSWORD, "", "login"),
        ("someone@example.com", "", "", "password"),
        ("someone@example.com", PASSWORD, "x" * 101, "device_name"),
    ],
    ids=["empty-login", "blank-login", "neither-email-nor-phone", "half-email", "empty-password", "device-name-too-long"],
)
async def test_bad_login_input_is_invalid_argument(direct, login_value, password, device_name, field, accounts):
    await expect_error(
        accounts.login_call(direct, login_value, password, device_name), grpc.StatusCode.INVALID_ARGUMENT, field=field
    )


@pytest.mark.parametrize(
    "password",
    [
        "correct horse \uff42\uff41\uff54\uff54\uff45\uff52\uff59 staple",  # full-width "battery"
        "cafe\u0301 au lait, s'il vous pla\u00eet",  # "é" typed as e + combining accent (macOS, iOS)
    ],
    ids=["full-width-letters", "decomposed-accent"],
)
async def test_login_accepts_the_same_unicode_password_that_registered(direct, password, accounts):
    """Registration stores the NFKC form of the password; login must compare the same form."""
    email = unique_email()
    await accounts.register(direct, email=email, password=password)
    assert (await accounts.login(direct, email, password)).session_id


# --- refresh -------------------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token_and_keeps_the_session(direct, accounts):
    first = await accounts.login(direct, await accounts.new_account(direct))
    second = (await accounts.refresh(direct, first.refresh_token)).tokens
    assert second.session_id == first.session_id
    assert second.refresh_token != first.refresh_token
    assert jwt.decode(second.access_token, options={"verify_signature": False})["sid"] == first.session_id
    me = await accounts.get_account(direct, second.access_token)
    assert me.account.account_id == first.account_id
    third = (await accounts.refresh(direct, second.refresh_token)).tokens
    assert third.session_id == first.session_id


async def test_refresh_token_reuse_revokes_the_whole_session(direct, accounts):
    email = await accounts.new_account(direct)
    other = await accounts.login(direct, email, device_name="other device")
    stolen = await accounts.login(direct, email)
    rotated = (await accounts.refresh(direct, stolen.refresh_token)).tokens
    newest = (await accounts.refresh(direct, rotated.refresh_token)).tokens

    await expect_error(accounts.refresh(direct, stolen.refresh_token), UNAUTHENTICATED, reason="REFRESH_TOKEN_REUSED")

    # Every token of that session is dead, the newest refresh token included ...
    await expect_error(accounts.refresh(direct, newest.refresh_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
    await expect_error(
        accounts.get_account(direct, newest.access_token),
        UNAUTHENTICATED,
        reason="SESSION_REVOKED",
    )
    # ... and it is gone from the list; the account's other session is untouched.
    assert await session_ids(direct, other) == [other.session_id]


async def test_concurrent_refreshes_with_one_token_have_exactly_one_winner(direct, accounts):
    session = await accounts.login(direct, await accounts.new_account(direct))
    results = await asyncio.gather(*(accounts.refresh(direct, session.refresh_token) for _ in range(4)), return_exceptions=True)
    won = [r for r in results if isinstance(r, auth_pb2.RefreshResponse)]
    lost = [r for r in results if isinstance(r, CumuloRpcError)]
    assert len(won) == 1, results
    assert len(lost) == 3, results
    for err in lost:
        assert err.code == UNAUTHENTICATED, err
        assert err.reason in ("REFRESH_TOKEN_REUSED", "SESSION_REVOKED"), err


@pytest.mark.parametrize("token", ["", "not-a-refresh-token", "eyJhbGciOiJFZERTQSJ9.e30.x"])
async def test_refresh_with_something_that_is_not_a_refresh_token_is_invalid_argument(direct, token, accounts):
    await expect_error(accounts.refresh(direct, token), grpc.StatusCode.INVALID_ARGUMENT, field="refresh_token")


async def test_refresh_with_an_unknown_refresh_token_is_unauthenticated(direct, accounts):
    await expect_error(accounts.refresh(direct, "crt_" + secrets.token_urlsafe(32)), UNAUTHENTICATED, reason="REFRESH_TOKEN_INVALID")


async def test_an_access_token_is_not_a_refresh_token(direct, accounts):
    session = await accounts.login(direct, await accounts.new_account(direct))
    await expect_error(accounts.refresh(direct, session.access_token), grpc.StatusCode.INVALID_ARGUMENT, field="refresh_token")


async def test_session_expires_90_days_after_its_last_refresh(direct, clock, accounts):
    email = await accounts.new_account(direct)
    idle = await accounts.login(direct, email, device_name="idle")
    active = await accounts.login(direct, email, device_name="active")
    clock.advance(dt.timedelta(days=60))
    active_tokens = (await accounts.refresh(direct, active.refresh_token)).tokens
    clock.advance(dt.timedelta(days=30, minutes=1))
    # 90 days after login: the idle session is over ...
    await expect_error(accounts.refresh(direct, idle.refresh_token), UNAUTHENTICATED, reason="SESSION_EXPIRED")
    # ... while the refreshed one lives 90 days from its last refresh.
    assert (await accounts.refresh(direct, active_tokens.refresh_token)).tokens.session_id == active.session_id
    clock.advance(dt.timedelta(days=90, minutes=1))
    await expect_error(accounts.refresh(direct, active_tokens.refresh_token), UNAUTHENTICATED, reason="SESSION_EXPIRED")


# --- logout ----------------------------------------------------------------------------------


async def test_logout_ends_the_session_at_once(direct, accounts):
    email = await accounts.new_account(direct)
    kept = await accounts.login(direct, email, device_name="kept")
    leaving = await accounts.login(direct, email, device_name="leaving")
    await call(direct, direct.auth.Logout, auth_pb2.LogoutRequest(), leaving.access_token)
    # Its still-unexpired access token is refused: auth checks sessions first-hand.
    await expect_error(accounts.get_account(direct, leaving.access_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
    await expect_error(accounts.refresh(direct, leaving.refresh_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
    assert (await accounts.get_account(direct, kept.access_token)).account.email == email
    assert await session_ids(direct, kept) == [kept.session_id]


async def test_sdk_logout_through_the_gateway_forgets_the_tokens(user):
    client, email = user
    session_id = client.store.tokens.session_id
    await client.logout()
    assert client.store.tokens is None
    # log in again and the old session is not among the live ones
    await client.login(email, PASSWORD, device_name="again")
    assert session_id not in [s.session_id for s in await client.sessions()]


# --- ListSessions and RevokeSession ------------------------------------------------------------


async def test_list_sessions_marks_the_callers_session_as_current(direct, accounts):
    email = await accounts.new_account(direct)
    phone = await accounts.login(direct, email, device_name="  Pixel 9  ")
    laptop = await accounts.login(direct, email, device_name="ThinkPad")

    seen_from_phone = (await call(direct, direct.auth.ListSessions, auth_pb2.ListSessionsRequest(), phone.access_token)).sessions
    assert sorted(s.session_id for s in seen_from_phone) == sorted([phone.session_id, laptop.session_id])
    by_id = {s.session_id: s for s in seen_from_phone}
    assert by_id[phone.session_id].current is True
    assert by_id[laptop.session_id].current is False
    assert by_id[phone.session_id].device_name == "Pixel 9"
    assert by_id[laptop.session_id].device_name == "ThinkPad"
    assert all(s.client_id == "cumulo-cli" for s in seen_from_phone)
    assert all(s.created_at.seconds > 0 and s.last_used_at.seconds > 0 for s in seen_from_phone)

    seen_from_laptop = (await call(direct, direct.auth.ListSessions, auth_pb2.ListSessionsRequest(), laptop.access_token)).sessions
    assert [s.session_id for s in seen_from_laptop if s.current] == [laptop.session_id]


async def test_sdk_lists_the_session_through_the_gateway(user):
    client, _ = user
    sessions = await client.sessions()
    assert len(sessions) == 1
    assert sessions[0].current is True
    assert sessions[0].device_name == "test phone"


async def test_revoke_session_ends_another_session_of_the_same_account(direct, accounts):
    email = await accounts.new_account(direct)
    mine = await accounts.login(direct, email)
    lost_phone = await accounts.login(direct, email)
    await call(direct, direct.auth.RevokeSession, auth_pb2.RevokeSessionRequest(session_id=lost_phone.session_id), mine.access_token)
    await expect_error(accounts.get_account(direct, lost_phone.access_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
    await expect_error(accounts.refresh(direct, lost_phone.refresh_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
    assert await session_ids(direct, mine) == [mine.session_id]
    assert (await accounts.refresh(direct, mine.refresh_token)).tokens.session_id == mine.session_id


async def test_revoking_the_current_session_ends_it(direct, accounts):
    session = await accounts.login(direct, await accounts.new_account(direct))
    await call(direct, direct.auth.RevokeSession, auth_pb2.RevokeSessionRequest(session_id=session.session_id), session.access_token)
    await expect_error(accounts.get_account(direct, session.access_token), UNAUTHENTICATED, reason="SESSION_REVOKED")


async def test_revoke_session_input_is_checked(direct, accounts):
    session = await accounts.login(direct, await accounts.new_account(direct))
    for bad in ("", "not-a-session", "12345"):
        await expect_error(
            call(direct, direct.auth.RevokeSession, auth_pb2.RevokeSessionRequest(session_id=bad), session.access_token),
            grpc.StatusCode.INVALID_ARGUMENT,
            field="session_id",
        )
    await expect_error(
        call(direct, direct.auth.RevokeSession, auth_pb2.RevokeSessionRequest(session_id=str(uuid.uuid4())), session.access_token),
        grpc.StatusCode.NOT_FOUND,
        reason="SESSION_NOT_FOUND",
    )
    assert await session_ids(direct, session) == [session.session_id]
