"""Login throttling: a few free failures per account and client address (5), per client
address across accounts (20) and per account over all addresses (100), then a delay that the
client is told about; a throttled attempt is refused at once, even with the right password.

The per-address counter for 127.0.0.1 is shared by every test of the session, so each test
here logs in straight to auth with its own made-up address in x-forwarded-for."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2
from cumulo_auth.adapters.tables import login_throttle
from cumulo_auth.config import AuthSettings
from cumulo_devstack.testing import PASSWORD, call, expect_error, fake_client_address, unique_email
from cumulo_platform.secrets import ensure_keys
from cumulo_platform.settings import SettingsError
from cumulo_sdk.errors import CumuloRpcError

WRONG = "definitely not the password"
ACCOUNT_FREE_FAILURES = 5  # per account and client address
ADDRESS_FREE_FAILURES = 20
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def login(direct, login, password, address):
    """Login as seen from `address`; a throttled answer must come at once, not after a wait."""
    return call(direct, direct.auth.Login, auth_pb2.LoginRequest(login=login, password=password), address=address, timeout=10)


async def wrong_password(direct, email, address) -> None:
    await expect_error(login(direct, email, WRONG, address), UNAUTHENTICATED, "INVALID_CREDENTIALS")


async def throttled(direct, login_value, password, address) -> CumuloRpcError:
    err = await expect_error(login(direct, login_value, password, address), EXHAUSTED, "LOGIN_THROTTLED")
    assert err.retry_after_seconds is not None and err.retry_after_seconds > 0, err
    assert int(err.metadata["retry_after_seconds"]) > 0, err
    return err


async def exhaust_free_failures(direct, email, address) -> CumuloRpcError:
    """The account's free failures from `address`; the wrong password after them is throttled."""
    for _ in range(ACCOUNT_FREE_FAILURES):
        await wrong_password(direct, email, address)
    return await throttled(direct, email, WRONG, address)


async def test_an_address_is_throttled_for_an_account_after_its_free_failures_even_for_the_right_password(direct, clock, accounts):
    email = await accounts.new_account(direct)
    address = fake_client_address()
    await exhaust_free_failures(direct, email, address)
    # The right password from that address waits too; from another address it is welcome.
    err = await throttled(direct, email, PASSWORD, address)
    assert err.retry_after_seconds <= 15 * 60
    assert (await login(direct, email, PASSWORD, fake_client_address())).account.email == email
    clock.advance(dt.timedelta(seconds=err.retry_after_seconds + 1))
    response = await login(direct, email, PASSWORD, address)
    assert response.account.email == email


async def test_unknown_login_is_throttled_like_a_real_one(direct):
    email = unique_email()  # never registered
    address = "203.0.113.3"
    await exhaust_free_failures(direct, email, address)


async def test_successful_login_clears_the_accounts_failures(direct, accounts):
    email = await accounts.new_account(direct)
    address = "203.0.113.4"
    for _ in range(ACCOUNT_FREE_FAILURES - 1):
        await wrong_password(direct, email, address)
    await login(direct, email, PASSWORD, address)
    # Without the reset the fifth failure would start a delay and this sixth one be throttled.
    await wrong_password(direct, email, address)
    await wrong_password(direct, email, address)


async def test_failures_are_forgotten_after_a_quiet_hour(direct, clock, accounts):
    email = await accounts.new_account(direct)
    address = "203.0.113.5"
    await exhaust_free_failures(direct, email, address)
    clock.advance(dt.timedelta(hours=1, minutes=1))
    await wrong_password(direct, email, address)
    await wrong_password(direct, email, address)


async def test_delay_doubles_with_each_further_failure(direct, clock, accounts):
    email = await accounts.new_account(direct)
    address = "203.0.113.6"
    first = await exhaust_free_failures(direct, email, address)
    clock.advance(dt.timedelta(seconds=first.retry_after_seconds + 1))
    await wrong_password(direct, email, address)
    second = await throttled(direct, email, WRONG, address)
    clock.advance(dt.timedelta(seconds=second.retry_after_seconds + 1))
    await wrong_password(direct, email, address)
    third = await throttled(direct, email, WRONG, address)
    assert first.retry_after_seconds < second.retry_after_seconds < third.retry_after_seconds


async def test_address_is_throttled_after_its_free_failures_across_many_logins(direct, clock, accounts):
    address = "203.0.113.7"
    victim = await accounts.new_account(direct)
    for _ in range(ADDRESS_FREE_FAILURES):
        await wrong_password(direct, unique_email(), address)  # each login fails only once
    await throttled(direct, unique_email(), WRONG, address)
    # From that address even a correct login of an untouched account is refused ...
    await throttled(direct, victim, PASSWORD, address)
    # ... while the same account logs in from elsewhere.
    assert (await login(direct, victim, PASSWORD, "203.0.113.8")).account.email == victim


async def test_concurrent_wrong_passwords_get_no_more_than_the_free_failures(direct, accounts):
    """A burst of parallel guesses must not slip past the throttle before it has counted them."""
    email = await accounts.new_account(direct)
    address = fake_client_address()
    results = await asyncio.gather(
        *(login(direct, email, f"guess number {i}", address) for i in range(12)), return_exceptions=True
    )
    assert all(isinstance(r, CumuloRpcError) for r in results), results
    verdicts = [r.reason for r in results]
    assert set(verdicts) <= {"INVALID_CREDENTIALS", "LOGIN_THROTTLED"}, verdicts
    assert verdicts.count("INVALID_CREDENTIALS") <= ACCOUNT_FREE_FAILURES, verdicts


async def address_counters(auth) -> dict[str, tuple[int, object]]:
    async with auth.app.db.sessions() as session:
        rows = (
            await session.execute(
                sa.select(login_throttle.c.key, login_throttle.c.failures, login_throttle.c.last_failure_at).where(
                    login_throttle.c.scope == "address"
                )
            )
        ).all()
    return {r.key: (r.failures, r.last_failure_at) for r in rows}


async def test_address_forged_in_x_forwarded_for_through_the_gateway_is_not_trusted(client, auth):
    """Envoy appends the real peer to x-forwarded-for and auth counts the last entry, so a
    client cannot dodge the per-address counter by sending a made-up address."""
    forged = "203.0.113.250"
    before = await address_counters(auth)
    await expect_error(login(client, unique_email(), WRONG, forged), UNAUTHENTICATED, "INVALID_CREDENTIALS")
    after = await address_counters(auth)
    counted = [key for key in after if after[key] != before.get(key)]
    assert forged not in after
    assert len(counted) == 1, counted  # the failure was charged to the peer Envoy saw


def test_an_accounts_ceiling_below_one_addresss_share_is_refused_naming_both_settings():
    """A ceiling as low as one address's free failures would let a stranger lock the owner out
    from a single address again."""
    environ = {
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CUMULO_AUTH_THROTTLE_FREE_FAILURES_PER_ACCOUNT": "4",
        "CUMULO_AUTH_THROTTLE_FREE_FAILURES_PER_ACCOUNT_ADDRESS": "5",
    }
    with pytest.raises(SettingsError) as refused:
        AuthSettings.from_env(environ)
    assert str(refused.value).startswith("CUMULO_AUTH_THROTTLE_FREE_FAILURES_PER_ACCOUNT must be at least")
    assert "CUMULO_AUTH_THROTTLE_FREE_FAILURES_PER_ACCOUNT_ADDRESS" in str(refused.value)


def test_the_default_throttles_keep_a_ceiling_far_above_one_addresss_share(tmp_path):
    settings = AuthSettings.from_env({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "CUMULO_SECRETS_DIR": str(ensure_keys(tmp_path))})
    assert settings.throttle_free_failures_per_account_address == 5
    assert settings.throttle_free_failures_per_account >= 10 * settings.throttle_free_failures_per_account_address
    assert settings.throttle_free_failures_per_session == 5
