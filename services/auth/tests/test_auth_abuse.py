"""Auth must not be a weapon: each attack found on a running cloud, made again here (bounded,
over loopback), while another person's calls are shown to succeed.

- a registration flood from one address gets the address's allowance, then
  REGISTRATION_RATE_LIMITED with a time to retry; a flood from many addresses finds the
  new-hash queue full and is refused PASSWORD_HASHING_BUSY at once, while logins keep the
  worker registrations cannot take;
- a taken e-mail address costs as much as a registration (the allowance and the hash);
- a stranger's wrong passwords block the stranger's address for the account, not its owner at
  home nor the owner's signed-in session; guessing spread over many addresses meets a ceiling;
- right logins at once all succeed, wrong ones at once get only the free failures;
- a flood of right logins from one address gets the address's allowance.

Most run on auths of their own (`start_own_auth`) whose limits are small and whose clock
stands still, so that a limit bites however slowly the machine runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2
from cumulo_auth.adapters.tables import login_throttle
from cumulo_auth.domain.password_work import PasswordWork
from cumulo_auth.throttling import MAX_WAITERS_PER_COUNTER
from cumulo_devstack.testing import PASSWORD, call, eventually, expect_error, fake_client_address, transport_for, unique_email
from cumulo_platform.interceptors import client_network
from cumulo_platform.passwords import DEFAULT_NEW_HASH_QUEUE
from cumulo_sdk import Cumulo
from cumulo_sdk.errors import CumuloRpcError

TERMS = "2026-11"
ADULT = auth_pb2.Date(year=1990, month=5, day=17)
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
TIMEOUT = 60.0  # per call: generous, a limit is never judged by time
BOUND = 30.0  # seconds a step that must happen may take before the test fails

# The strict auth: an allowance of 12 password checks per address (3 new accounts, 12 logins).
ALLOWANCE = 12
NEW_ACCOUNTS_PER_WINDOW = ALLOWANCE // PasswordWork.NEW_ACCOUNT
# The guarded auth: the usual 5 free failures per account and address, a ceiling of 10 per account.
PAIR_FREE_FAILURES = 5
CEILING = 10


@pytest.fixture(scope="module")
async def strict(start_own_auth) -> AsyncIterator[Any]:
    async with start_own_auth(CUMULO_AUTH_PASSWORD_CHECKS_PER_ADDRESS=str(ALLOWANCE)) as own:
        yield own


@pytest.fixture(scope="module")
async def guarded(start_own_auth) -> AsyncIterator[Any]:
    async with start_own_auth(
        CUMULO_AUTH_THROTTLE_FREE_FAILURES_PER_ACCOUNT_ADDRESS=str(PAIR_FREE_FAILURES),
        CUMULO_AUTH_THROTTLE_FREE_FAILURES_PER_ACCOUNT=str(CEILING),
    ) as own:
        yield own


def client_of(own: Any) -> Cumulo:
    return Cumulo(own.target, transport=transport_for(own.target))


def register(client: Cumulo, email: str, *, address: str):
    request = auth_pb2.RegisterRequest(email=email, password=PASSWORD, accepted_terms_version=TERMS, birth_date=ADULT)
    return call(client, client.auth.Register, request, address=address, timeout=TIMEOUT)


def login(client: Cumulo, email: str, password: str = PASSWORD, *, address: str):
    request = auth_pb2.LoginRequest(login=email, password=password, device_name="abuse test")
    return call(client, client.auth.Login, request, address=address, timeout=TIMEOUT)


def confirm(client: Cumulo, access_token: str, password: str = PASSWORD):
    return call(client, client.auth.ConfirmPassword, auth_pb2.ConfirmPasswordRequest(password=password), access_token, timeout=TIMEOUT)


def verdict(result: object) -> str:
    """"OK" for an answer, the reason of a refusal; anything else (INTERNAL, a crash) fails."""
    if isinstance(result, CumuloRpcError):
        assert result.code != grpc.StatusCode.INTERNAL, result
        return result.reason or result.code.name
    if isinstance(result, BaseException):
        raise result
    return "OK"


async def until(condition: Callable[[], bool], what: str) -> None:
    """Waits (bounded) for `condition`, which must come whatever the machine's speed."""

    async def check() -> bool:
        return condition()

    await eventually(check, timeout=BOUND, what=what)


# --- registrations ---------------------------------------------------------------------------


async def test_a_registration_flood_from_one_address_gets_its_allowance_while_others_register_and_log_in(strict):
    async with client_of(strict) as client:
        victim = unique_email()
        await register(client, victim, address=fake_client_address())
        flooder = fake_client_address()

        async def flood() -> list[object]:
            results: list[object] = []
            for _ in range(2):  # bounded: two rounds of 16 callers at once
                results += await asyncio.gather(
                    *(register(client, unique_email(), address=flooder) for _ in range(16)), return_exceptions=True
                )
            return results

        results, logged_in, newcomer = await asyncio.gather(
            flood(), login(client, victim, address=fake_client_address()), register(client, unique_email(), address=fake_client_address())
        )
    assert logged_in.account.email == victim
    assert newcomer.account.account_id
    verdicts = [verdict(r) for r in results]
    assert verdicts.count("OK") == NEW_ACCOUNTS_PER_WINDOW, verdicts
    assert set(verdicts) == {"OK", "REGISTRATION_RATE_LIMITED"}, verdicts
    for refused in (r for r in results if isinstance(r, CumuloRpcError)):
        assert refused.code == EXHAUSTED and refused.retry_after_seconds and refused.retry_after_seconds > 0, refused


async def test_a_taken_email_costs_a_registration_and_its_hash_and_is_told_only_within_the_allowance(strict, monkeypatch):
    hashes = 0
    real_hash = strict.app.passwords.hash

    async def counted_hash(password: str) -> str:
        nonlocal hashes
        hashes += 1
        return await real_hash(password)

    monkeypatch.setattr(strict.app.passwords, "hash", counted_hash)
    async with client_of(strict) as client:
        taken = unique_email()
        await register(client, taken, address=fake_client_address())
        prober = fake_client_address()
        hashes = 0
        for _ in range(NEW_ACCOUNTS_PER_WINDOW):
            await expect_error(register(client, taken, address=prober), grpc.StatusCode.ALREADY_EXISTS, "ACCOUNT_EXISTS", field="email")
        assert hashes == NEW_ACCOUNTS_PER_WINDOW  # each answer paid the hash a new account pays
        # The allowance spent, a taken address and a free one are answered alike, and hash nothing.
        for email in (taken, unique_email()):
            err = await expect_error(register(client, email, address=prober), EXHAUSTED, "REGISTRATION_RATE_LIMITED")
            assert err.retry_after_seconds and err.retry_after_seconds > 0
            assert email not in err.message
        assert hashes == NEW_ACCOUNTS_PER_WINDOW


class GatedHasher:
    """The real hasher, whose new hashes (or verifies) wait in the pool's own thread until the
    gate opens: a registration (or a login) then holds its worker as long as the test wants."""

    def __init__(self, real: Any, *, gate_verify: bool = False) -> None:
        self.real = real
        self.gate_verify = gate_verify
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def _wait(self) -> None:
        self.waiting.set()
        if not self.gate.wait(BOUND):
            raise TimeoutError("the test never opened the gate")

    def hash(self, password: str) -> str:
        if not self.gate_verify:
            self._wait()
        return self.real.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        if self.gate_verify:
            self._wait()
        return self.real.verify(password_hash, password)


async def test_registrations_from_many_addresses_are_refused_busy_at_once_while_a_login_keeps_its_worker(strict, monkeypatch):
    """No per-address allowance helps against many addresses: the new-hash queue is bounded, and
    its overflow is refused at once; the login verifies on the worker new hashes never take."""
    gated = GatedHasher(strict.app.passwords._hasher)
    monkeypatch.setattr(strict.app.passwords, "_hasher", gated)
    overflow = 4
    async with client_of(strict) as client:
        victim = unique_email()
        await register(client, victim, address=fake_client_address())
        gated.waiting.clear()
        gated.gate.clear()
        try:
            first = asyncio.ensure_future(register(client, unique_email(), address=fake_client_address()))
            await until(gated.waiting.is_set, "the first registration to hold the new-hash worker")
            flood = [
                asyncio.ensure_future(register(client, unique_email(), address=fake_client_address()))
                for _ in range(DEFAULT_NEW_HASH_QUEUE + overflow)
            ]
            # The gate is shut: what ends now was refused without waiting for any hash.
            await until(lambda: sum(f.done() for f in flood) == overflow, "the registrations past the queue to be refused")
            for refused in (f.exception() for f in flood if f.done()):
                assert isinstance(refused, CumuloRpcError) and (refused.code, refused.reason) == (EXHAUSTED, "PASSWORD_HASHING_BUSY")
                assert refused.retry_after_seconds and refused.retry_after_seconds >= 1
            logged_in = await login(client, victim, address=fake_client_address())
            assert logged_in.account.email == victim
            assert not first.done()  # the login was served while a registration still hashed
        finally:
            gated.gate.set()
        assert (await first).account.account_id
        verdicts = [verdict(r) for r in await asyncio.gather(*flood, return_exceptions=True)]
    assert verdicts.count("OK") == DEFAULT_NEW_HASH_QUEUE and verdicts.count("PASSWORD_HASHING_BUSY") == overflow, verdicts


# --- wrong passwords -------------------------------------------------------------------------


async def test_a_strangers_wrong_passwords_block_the_strangers_address_not_the_owner(guarded):
    """Knowing only the e-mail address, a stranger guesses 17 times; the owner keeps logging in
    at home and confirming in their session all along."""
    async with client_of(guarded) as client:
        owner = unique_email()
        await register(client, owner, address=fake_client_address())
        home, stranger = fake_client_address(), fake_client_address()
        session = (await login(client, owner, address=home)).tokens

        async def attack() -> list[str]:
            verdicts = []
            for n in range(17):  # bounded
                verdicts.append(verdict((await asyncio.gather(login(client, owner, f"guess {n}", address=stranger), return_exceptions=True))[0]))
            return verdicts

        async def owner_goes_on() -> None:
            for _ in range(3):
                assert (await login(client, owner, address=home)).account.email == owner
                await confirm(client, session.access_token)

        verdicts, _ = await asyncio.gather(attack(), owner_goes_on())
        assert verdicts.count("INVALID_CREDENTIALS") == PAIR_FREE_FAILURES, verdicts
        assert set(verdicts) == {"INVALID_CREDENTIALS", "LOGIN_THROTTLED"}, verdicts
        # After the attack: the owner is still welcome, the stranger's address is not, even
        # with the right password.
        assert (await login(client, owner, address=home)).account.email == owner
        await confirm(client, session.access_token)
        await expect_error(login(client, owner, address=stranger), EXHAUSTED, "LOGIN_THROTTLED")


async def test_guessing_spread_over_many_addresses_meets_the_accounts_ceiling_but_not_its_sessions(guarded):
    async with client_of(guarded) as client:
        owner = unique_email()
        await register(client, owner, address=fake_client_address())
        session = (await login(client, owner, address=fake_client_address())).tokens
        for _ in range(CEILING // PAIR_FREE_FAILURES):
            guesser = fake_client_address()
            for n in range(PAIR_FREE_FAILURES):
                await expect_error(login(client, owner, f"guess {n}", address=guesser), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
        # The account's ceiling is met: a new address waits, the owner's login too (the price
        # of stopping a botnet); the owner's signed-in session confirms its password all the same.
        await expect_error(login(client, owner, "guess again", address=fake_client_address()), EXHAUSTED, "LOGIN_THROTTLED")
        await expect_error(login(client, owner, address=fake_client_address()), EXHAUSTED, "LOGIN_THROTTLED")
        await confirm(client, session.access_token)


async def test_twenty_wrong_logins_at_once_get_only_the_free_failures_while_the_owner_logs_in(guarded):
    async with client_of(guarded) as client:
        owner = unique_email()
        await register(client, owner, address=fake_client_address())
        guesser = fake_client_address()
        *guesses, owners = await asyncio.gather(
            *(login(client, owner, f"guess number {n}", address=guesser) for n in range(20)),
            login(client, owner, address=fake_client_address()),
            return_exceptions=True,
        )
    verdicts = [verdict(g) for g in guesses]
    assert verdicts.count("INVALID_CREDENTIALS") == PAIR_FREE_FAILURES, verdicts
    assert verdicts.count("LOGIN_THROTTLED") == 20 - PAIR_FREE_FAILURES, verdicts
    assert verdict(owners) == "OK" and owners.account.email == owner


async def test_twenty_right_logins_at_once_from_one_address_all_succeed(direct, accounts):
    """Right passwords never count as failures, however many are being checked at once."""
    email = await accounts.new_account(direct)
    address = fake_client_address()
    assert 20 <= MAX_WAITERS_PER_COUNTER
    results = await asyncio.gather(*(login(direct, email, address=address) for _ in range(20)))
    assert {r.account.email for r in results} == {email}
    assert len({r.tokens.session_id for r in results}) == 20
    # and none of them left a failure behind: the five free ones are all still there
    for n in range(PAIR_FREE_FAILURES):
        await expect_error(login(direct, email, f"guess {n}", address=address), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")


async def test_a_login_whose_caller_goes_away_counts_for_nothing_and_holds_no_room(guarded, monkeypatch):
    gated = GatedHasher(guarded.app.passwords._hasher, gate_verify=True)
    monkeypatch.setattr(guarded.app.passwords, "_hasher", gated)
    async with client_of(guarded) as client:
        owner = unique_email()
        account_id = (await register(client, owner, address=fake_client_address())).account.account_id
        address = fake_client_address()
        gated.waiting.clear()
        gated.gate.clear()
        try:
            going = asyncio.ensure_future(login(client, owner, "a guess", address=address))
            await until(gated.waiting.is_set, "the login's password to be checked")
            going.cancel()

            mine = sa.or_(login_throttle.c.key.contains(account_id), login_throttle.c.key == client_network(address))

            async def nothing_pending() -> bool:
                async with guarded.app.db.read() as conn:
                    rows = (await conn.execute(sa.select(login_throttle.c.pending).where(mine))).all()
                return all(r.pending == 0 for r in rows)

            await eventually(nothing_pending, timeout=BOUND, what="the attempt to let go of its counters")
        finally:
            gated.gate.set()
        # It counted as no failure: all five free failures are still there.
        for n in range(PAIR_FREE_FAILURES):
            await expect_error(login(client, owner, f"guess {n}", address=address), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")


# --- right passwords, too many -----------------------------------------------------------------


async def test_a_flood_of_right_logins_from_one_address_gets_its_allowance_while_another_address_logs_in(strict):
    async with client_of(strict) as client:
        email = unique_email()
        await register(client, email, address=fake_client_address())
        flooder = fake_client_address()
        *flood, other = await asyncio.gather(
            *(login(client, email, address=flooder) for _ in range(ALLOWANCE + 4)),
            login(client, email, address=fake_client_address()),
            return_exceptions=True,
        )
    verdicts = [verdict(r) for r in flood]
    assert verdicts.count("OK") == ALLOWANCE // PasswordWork.LOGIN, verdicts
    assert verdicts.count("LOGIN_THROTTLED") == 4, verdicts
    for refused in (r for r in flood if isinstance(r, CumuloRpcError)):
        assert "too many logins" in refused.message and refused.retry_after_seconds and refused.retry_after_seconds > 0
    assert verdict(other) == "OK"
