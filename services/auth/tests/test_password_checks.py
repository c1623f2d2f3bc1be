"""What the anonymous CheckNewPassword (and every other call that takes a password) does with
abuse: an input of megabytes that NFKC would make a hundred million characters is refused
before it is normalised, naming the field, while other people keep logging in; a flood from
one client address is answered RESOURCE_EXHAUSTED with a time to retry, while other
addresses are served; the password is never logged nor echoed; and through the gateway any
token, good or bad, is ignored, as for the other anonymous calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_auth import bootstrap as auth_bootstrap
from cumulo_auth.config import AuthSettings
from cumulo_devstack.servers import EmbeddedNats, free_port
from cumulo_devstack.testing import (
    PASSWORD,
    bare_rpc_error,
    call,
    everything_said,
    expect_error,
    fake_client_address,
    forged_access_token,
    open_channel,
    start_service,
    transport_for,
    unique_email,
    with_client_id,
)
from cumulo_platform.clock import FrozenClock
from cumulo_platform.settings import SettingsError
from cumulo_sdk import Cumulo, CumuloRpcError

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
# Just under the services' 16 MiB receive limit, of the code point NFKC makes 18 characters.
HUGE = "\ufdfa" * ((16 * 1024 * 1024 - 1024) // 3)
# The limited auth's own limit on checks per client address and minute.
CHECKS = 3


def check(password: str, **contacts: str) -> auth_pb2.CheckNewPasswordRequest:
    return auth_pb2.CheckNewPasswordRequest(password=password, **contacts)


# --- a huge input ----------------------------------------------------------------------------


async def test_a_huge_expanding_password_is_refused_naming_the_field_while_another_person_logs_in(direct, accounts):
    someone = await accounts.new_account(direct)
    other = await accounts.new_account(direct)
    third = len(HUGE) // 3
    register = auth_pb2.RegisterRequest(
        email=unique_email(), password=HUGE, accepted_terms_version="2026-11", birth_date=auth_pb2.Date(year=1990, month=5, day=17)
    )
    *refusals, logged_in = await asyncio.gather(
        expect_error(call(direct, direct.auth.CheckNewPassword, check(HUGE)), INVALID, field="password"),
        expect_error(
            call(direct, direct.auth.CheckNewPassword, check(HUGE[:third], email="\u0344" * third, phone="1" * third)),
            INVALID,
            field="password",
        ),
        expect_error(call(direct, direct.auth.Register, register), INVALID, field="password"),
        expect_error(accounts.login_call(direct, other, HUGE), INVALID, field="password"),
        accounts.login(direct, someone),
    )
    assert logged_in.email == someone
    for refused in refusals:
        assert "at most 128 characters" in refused.message
    # The refused login counted nothing against its account: the right password still works.
    assert (await accounts.login(direct, other)).email == other


async def test_a_huge_password_in_a_session_is_refused_naming_its_field(direct, accounts):
    member = await accounts.new_member(direct)
    token = member.access_token
    refused = await asyncio.gather(
        expect_error(
            call(direct, direct.auth.ChangePassword, auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=HUGE), token),
            INVALID,
            field="new_password",
        ),
        expect_error(
            call(direct, direct.auth.ChangePassword, auth_pb2.ChangePasswordRequest(current_password=HUGE, new_password="another passphrase"), token),
            INVALID,
            field="current_password",
        ),
        expect_error(call(direct, direct.auth.ConfirmPassword, auth_pb2.ConfirmPasswordRequest(password=HUGE), token), INVALID, field="password"),
        expect_error(call(direct, direct.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=HUGE), token), INVALID, field="password"),
    )
    assert all("at most 128 characters" in err.message for err in refused)
    # Nothing changed: the session is alive and the password is the old one.
    assert (await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), token)).account.email == member.email
    assert (await accounts.login(direct, member.email)).account_id == member.account_id


# --- a flood from one address ----------------------------------------------------------------


@pytest.fixture(scope="module")
async def limited(infra, tmp_path_factory) -> AsyncIterator[tuple[FrozenClock, str]]:
    """An auth of its own whose clock stands still, allowing CHECKS checks per address and
    minute: a flood is refused however slowly the machine runs, and the next minute comes
    only when the test moves the clock. Its database and NATS are its own too, so that it
    never takes the session's auth's share of the purge events."""
    folder = tmp_path_factory.mktemp("limited-auth")
    nats = EmbeddedNats(folder / "nats", free_port(), folder / "nats.log", infra.identities)
    nats.start()
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    settings = AuthSettings.from_env(infra.service_environ(NATS_URL=nats.url, CUMULO_AUTH_PASSWORD_CHECKS_PER_ADDRESS=str(CHECKS)))
    try:
        app = await auth_bootstrap.build(settings, clock=clock)
        port = await start_service(app.runtime)
        try:
            yield clock, f"127.0.0.1:{port}"
        finally:
            await app.runtime.stop()
    finally:
        nats.stop()


async def test_a_flood_from_one_address_is_refused_while_another_address_is_served(limited, debug_logs):
    clock, target = limited
    flooder, neighbour = fake_client_address(), fake_client_address()
    secret = f"tell-no-one-{secrets.token_hex(4)}"
    async with Cumulo(target, transport=transport_for(target)) as client:
        for n in range(CHECKS):
            await call(client, client.auth.CheckNewPassword, check(f"{secret} {n}"), address=flooder)
        refused = await bare_rpc_error(
            target, auth_pb2_grpc.AuthServiceStub, "CheckNewPassword", check(secret), metadata=[*with_client_id(), ("x-forwarded-for", flooder)]
        )
        err = CumuloRpcError.from_rpc_error(refused)
        assert (err.code, err.reason, err.retry_after_seconds) == (EXHAUSTED, "PASSWORD_CHECK_RATE_LIMITED", 60), err
        assert "too many passwords" in err.message and secret not in everything_said(refused)
        await call(client, client.auth.CheckNewPassword, check(secret), address=neighbour)
        # Refused before the password is looked at: a huge one is refused the same way.
        await expect_error(call(client, client.auth.CheckNewPassword, check(HUGE), address=flooder), EXHAUSTED)

        clock.advance(dt.timedelta(seconds=err.retry_after_seconds))
        await call(client, client.auth.CheckNewPassword, check(secret), address=flooder)
    logged = debug_logs()
    assert "PASSWORD_CHECK_RATE_LIMITED" in logged or "RESOURCE_EXHAUSTED" in logged
    assert secret not in logged


async def test_password_resets_from_one_address_spend_the_same_allowance(limited):
    """Asking for a reset code is an anonymous call that takes the time of a lookup and, for a
    real account, a message: it spends the address's allowance like a password check, and the
    new password of a reset as much as a new account."""
    clock, target = limited
    flooder, neighbour = fake_client_address(), fake_client_address()
    async with Cumulo(target, transport=transport_for(target)) as client:
        for _ in range(CHECKS):
            await call(client, client.auth.StartPasswordReset, auth_pb2.StartPasswordResetRequest(login=unique_email()), address=flooder)
        err = await expect_error(
            call(client, client.auth.StartPasswordReset, auth_pb2.StartPasswordResetRequest(login=unique_email()), address=flooder),
            EXHAUSTED, reason="PASSWORD_RESET_RATE_LIMITED",
        )
        assert err.retry_after_seconds == 60
        await expect_error(
            call(client, client.auth.ResetPassword, auth_pb2.ResetPasswordRequest(login=unique_email(), code="12345678", new_password="a long enough passphrase"), address=flooder),
            EXHAUSTED, reason="PASSWORD_RESET_RATE_LIMITED",
        )
        await call(client, client.auth.StartPasswordReset, auth_pb2.StartPasswordResetRequest(login=unique_email()), address=neighbour)
        clock.advance(dt.timedelta(seconds=60))
        await call(client, client.auth.StartPasswordReset, auth_pb2.StartPasswordResetRequest(login=unique_email()), address=flooder)


async def test_guessing_session_links_from_one_address_is_refused_while_another_address_is_served(limited):
    """The new-session notice's link is anonymous: each try spends the address's allowance, so
    a flood of made-up tokens stops long before one could hit, and a neighbour's real click is
    served meanwhile (its made-up token is answered as one: LINK_INVALID)."""
    clock, target = limited
    flooder, neighbour = fake_client_address(), fake_client_address()
    revoke = auth_pb2.RevokeSessionWithLinkRequest
    async with Cumulo(target, transport=transport_for(target)) as client:
        for _ in range(CHECKS):
            await expect_error(
                call(client, client.auth.RevokeSessionWithLink, revoke(token=secrets.token_urlsafe(24)), address=flooder),
                grpc.StatusCode.NOT_FOUND, reason="LINK_INVALID",
            )
        err = await expect_error(
            call(client, client.auth.RevokeSessionWithLink, revoke(token=secrets.token_urlsafe(24)), address=flooder),
            EXHAUSTED, reason="LINK_RATE_LIMITED",
        )
        assert err.retry_after_seconds == 60
        await expect_error(
            call(client, client.auth.RevokeSessionWithLink, revoke(token=secrets.token_urlsafe(24)), address=neighbour),
            grpc.StatusCode.NOT_FOUND, reason="LINK_INVALID",
        )
        clock.advance(dt.timedelta(seconds=60))
        await expect_error(
            call(client, client.auth.RevokeSessionWithLink, revoke(token=secrets.token_urlsafe(24)), address=flooder),
            grpc.StatusCode.NOT_FOUND, reason="LINK_INVALID",
        )


@pytest.mark.parametrize(
    ("name", "value"), [("PASSWORD_CHECKS_PER_ADDRESS", "0"), ("PASSWORD_CHECK_WINDOW", "PT0S")]
)
def test_a_limit_that_admits_nothing_is_refused_naming_the_setting(name, value):
    environ = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "NATS_URL": "nats://127.0.0.1:1", f"CUMULO_AUTH_{name}": value}
    with pytest.raises(SettingsError) as refused:
        AuthSettings.from_env(environ)
    assert f"CUMULO_AUTH_{name}" in str(refused.value)


# --- no secret said --------------------------------------------------------------------------


async def test_a_checked_password_is_never_logged_nor_echoed(auth, debug_logs):
    secret = f"tell-no-one-{secrets.token_hex(4)}"
    short = f"{secrets.token_hex(3)}!"
    email = f"{secret}@example.com"
    refused = [
        check(short),
        check(secret * 7),  # longer than 128 characters once normalised
        check(secret * 40),  # too long to be normalised at all
        check(email, email=email),  # the account's own e-mail address
    ]
    metadata = [*with_client_id(), ("x-forwarded-for", fake_client_address())]
    for request in refused:
        err = await bare_rpc_error(auth.target, auth_pb2_grpc.AuthServiceStub, "CheckNewPassword", request, metadata=metadata)
        assert err.code() == INVALID
        assert secret not in everything_said(err) and short not in everything_said(err)
    async with open_channel(auth.target) as channel:
        await auth_pb2_grpc.AuthServiceStub(channel).CheckNewPassword(check(f"{secret} is fine"), metadata=metadata, timeout=10)
    logged = debug_logs()
    assert "/cumulo.auth.v1.AuthService/CheckNewPassword" in logged  # the calls were logged, the passwords not
    assert secret not in logged and short not in logged


# --- through the gateway, whatever token is held ---------------------------------------------


@pytest.mark.parametrize("kind", ["no token", "garbage token", "forged token", "expired token"])
async def test_anyone_checks_a_password_through_the_gateway_whatever_token_they_hold(
    gateway, auth, direct, accounts, clock, signing_key, kind
):
    """As GetTerms and Register: an anonymous call does not look at a token, so a stale one in
    a client's store does not stop a person choosing a password. The same token is refused
    where one is needed."""
    tokens = {"no token": None, "garbage token": "not.a.token", "forged token": forged_access_token(signing_key)}
    token = tokens.get(kind)
    if kind == "expired token":
        token = (await accounts.new_member(direct)).access_token
        clock.advance(auth.app.settings.access_token_ttl + dt.timedelta(minutes=1))
    metadata = with_client_id(token)
    async with open_channel(gateway) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await stub.CheckNewPassword(check(PASSWORD), metadata=metadata, timeout=10)
        await stub.GetTerms(auth_pb2.GetTermsRequest(), metadata=metadata, timeout=10)
    short = await bare_rpc_error(gateway, auth_pb2_grpc.AuthServiceStub, "CheckNewPassword", check("short"), metadata=metadata)
    assert short.code() == INVALID and "at least 8 characters" in (short.details() or "")
    needs_one = await bare_rpc_error(gateway, auth_pb2_grpc.AuthServiceStub, "GetAccount", auth_pb2.GetAccountRequest(), metadata=metadata)
    assert needs_one.code() == grpc.StatusCode.UNAUTHENTICATED
