"""Throttling of password guesses, so that guessing is slow and cannot be turned against the
account's owner.

A login passes three counters:

- per (account, client address): a stranger's wrong passwords block the stranger's address
  for that account (5 free failures by default), not the owner logging in from elsewhere;
- per account, a much higher ceiling (100): guessing spread over many addresses. Reaching it
  delays the owner's logins too, which is the price of stopping a botnet; the owner's
  signed-in sessions are not affected;
- per client address across accounts (20): one address trying many accounts.

A signed-in session confirming its password (ConfirmPassword, ChangePassword,
CancelAccount) passes one counter, per session: strangers' failed logins never refuse it, and
a stolen access token gets no more than the session's own free failures.

A login for no account passes the same counters, keyed by the login typed, so that throttling
does not tell which logins exist. Counters live in the database (every replica sees them),
keyed by the client's network (an IPv6 /64, see cumulo_platform.interceptors.client_network).

An attempt is held as pending while its password is checked and counted as a failure only when
it failed (cumulo_auth.domain.throttle): twenty correct logins at once all go through, while
twenty wrong guesses at once get no more than the free failures. An attempt that finds no room
waits, here, for one to end: woken at once when it ended in this process, by polling when it
ended on another replica, never longer than a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_auth.adapters.tables import login_throttle
from cumulo_auth.config import AuthSettings
from cumulo_auth.domain import credentials, rules
from cumulo_auth.domain.throttle import PENDING_TTL, CounterState, ThrottlePolicy, Verdict
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import PermissionDenied, ResourceExhausted
from cumulo_platform.passwords import Passwords

THROTTLED_REASON = "LOGIN_THROTTLED"
# How often an attempt that waits for room looks again, for attempts that end on another replica.
WAIT_POLL_SECONDS = 0.5
# The longest an attempt waits for room before it is refused (a client's deadline usually ends it first).
MAX_WAIT_SECONDS = 60.0
# Attempts of one process that may wait on one counter: more are refused at once, so that a
# burst on one account cannot pile up coroutines that each poll the database.
MAX_WAITERS_PER_COUNTER = 32
WAIT_REFUSED_RETRY = dt.timedelta(seconds=1)


@dataclasses.dataclass(frozen=True)
class Counter:
    scope: str  # "account_address", "account", "address" or "session"
    key: str
    policy: ThrottlePolicy
    # The password proven clears it: a counter of this owner alone (their address for the
    # account, their session). A shared one (the account's ceiling, an address) keeps its count.
    cleared_by_success: bool

    @property
    def ident(self) -> tuple[str, str]:
        return self.scope, self.key


class Attempt:
    """One password attempt under throttling: record whether the password was right; left
    unrecorded (the check failed for another reason, the caller went away) it counts for
    nothing."""

    def __init__(self) -> None:
        self.outcome: bool | None = None

    def record(self, right: bool) -> None:
        self.outcome = right


class LoginThrottle:
    def __init__(self, *, db: Database, clock: Clock, settings: AuthSettings) -> None:
        self.db = db
        self.clock = clock
        self.login_key = settings.login_key

        def policy(free_failures: int) -> ThrottlePolicy:
            return ThrottlePolicy(free_failures, settings.throttle_base_delay, settings.throttle_max_delay, settings.throttle_forget_after)

        self.account_address_policy = policy(settings.throttle_free_failures_per_account_address)
        self.account_policy = policy(settings.throttle_free_failures_per_account)
        self.address_policy = policy(settings.throttle_free_failures_per_address)
        self.session_policy = policy(settings.throttle_free_failures_per_session)
        self._wakeups = _Wakeups()
        self._taking_back: set[asyncio.Future[None]] = set()

    def for_login(self, account_id: uuid.UUID | None, login: str, client_network: str) -> list[Counter]:
        """The counters of a login attempt, in the order every attempt locks them."""
        # An unknown login is counted under its keyed hash: the table never holds it in clear.
        account = f"id:{account_id}" if account_id else f"login:{credentials.login_digest(self.login_key, login).hex()}"
        return [
            Counter("account_address", f"{account} from {client_network}", self.account_address_policy, cleared_by_success=True),
            Counter("account", account, self.account_policy, cleared_by_success=False),
            Counter("address", client_network, self.address_policy, cleared_by_success=False),
        ]

    def for_session(self, session_id: str) -> list[Counter]:
        return [Counter("session", session_id, self.session_policy, cleared_by_success=True)]

    @contextlib.asynccontextmanager
    async def attempt(self, counters: Sequence[Counter]) -> AsyncIterator[Attempt]:
        """Admits an attempt (refused with LOGIN_THROTTLED while a delay runs), holds it as
        pending while the body checks the password, then counts what the body recorded."""
        await self._claim(counters)
        attempt = Attempt()
        try:
            yield attempt
        finally:
            # Counted even when the caller is cancelled meanwhile: a lost count would free a guess.
            await asyncio.shield(self._settle(counters, attempt.outcome))

    async def _claim(self, counters: Sequence[Counter]) -> None:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + MAX_WAIT_SECONDS
        idents = [c.ident for c in counters]
        while True:
            if any(self._wakeups.watching(i) >= MAX_WAITERS_PER_COUNTER for i in idents):
                raise _throttled(WAIT_REFUSED_RETRY)
            # Watched before looking, so that an attempt ending meanwhile is not missed.
            wakeup = self._wakeups.watch(idents)
            try:
                if await self._claim_once(counters):
                    return
                remaining = give_up_at - loop.time()
                if remaining <= 0:
                    raise _throttled(WAIT_REFUSED_RETRY)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), min(remaining, WAIT_POLL_SECONDS))
            finally:
                self._wakeups.unwatch(idents, wakeup)

    async def _claim_once(self, counters: Sequence[Counter]) -> bool:
        """`_try_claim`, whose claim is taken back if the caller goes away while it is written
        (else it would hold room on the counters until it is overdue)."""
        claiming = asyncio.ensure_future(self._try_claim(counters))
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:

            def take_back(task: asyncio.Future[bool]) -> None:
                if not task.cancelled() and task.exception() is None and task.result():
                    undo = asyncio.ensure_future(self._settle(counters, None))
                    self._taking_back.add(undo)
                    undo.add_done_callback(self._taking_back.discard)

            claiming.add_done_callback(take_back)
            raise

    async def _try_claim(self, counters: Sequence[Counter]) -> bool:
        """Holds the attempt as pending on every counter, or nothing: False when a counter has
        no room for it yet; LOGIN_THROTTLED when a delay runs on any."""
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            states = []
            for counter in counters:
                await uow.execute(
                    pg_insert(login_throttle)
                    .values(scope=counter.scope, key=counter.key, failures=0, last_failure_at=now)
                    .on_conflict_do_nothing()
                )
                states.append(_state((await uow.execute(_row_of(counter).with_for_update())).one()))
            verdicts = [c.policy.verdict(s, now) for c, s in zip(counters, states, strict=True)]
            blocked = [s.blocked_until for s, v in zip(states, verdicts, strict=True) if v is Verdict.BLOCKED]
            if blocked:
                raise _throttled(max(b for b in blocked if b is not None) - now)
            if Verdict.WAIT in verdicts:
                return False
            for counter, state in zip(counters, states, strict=True):
                await uow.execute(
                    _update(counter).values(pending=counter.policy.pending_now(state, now) + 1, pending_until=now + PENDING_TTL)
                )
            await uow.commit()
        return True

    async def _settle(self, counters: Sequence[Counter], right: bool | None) -> None:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            for counter in counters:
                row = (await uow.execute(_row_of(counter).with_for_update())).first()
                if row is None:
                    continue
                state = _state(row)
                pending = max(counter.policy.pending_now(state, now) - 1, 0)
                failures, last_failure_at, blocked_until = state.failures, state.last_failure_at, state.blocked_until
                if right is False:
                    failures = counter.policy.failures_after_new_failure(failures, last_failure_at, now)
                    last_failure_at = now
                    blocked_until = counter.policy.blocked_until(failures, now)
                elif right and counter.cleared_by_success:
                    failures, blocked_until = 0, None
                if failures == 0 and pending == 0:
                    await uow.execute(sa.delete(login_throttle).where(*_where(counter)))
                else:
                    await uow.execute(
                        _update(counter).values(
                            failures=failures, last_failure_at=last_failure_at, blocked_until=blocked_until, pending=pending
                        )
                    )
            await uow.commit()
        self._wakeups.notify([c.ident for c in counters])


class _Wakeups:
    """Wakes the attempts of this process that wait for room on a counter when an attempt on
    it ends here; those that end on another replica are noticed at the next poll."""

    def __init__(self) -> None:
        self._watchers: dict[tuple[str, str], set[asyncio.Event]] = {}

    def watching(self, ident: tuple[str, str]) -> int:
        return len(self._watchers.get(ident, ()))

    def watch(self, idents: Sequence[tuple[str, str]]) -> asyncio.Event:
        """An event set when an attempt on any of the counters ends."""
        event = asyncio.Event()
        for ident in idents:
            self._watchers.setdefault(ident, set()).add(event)
        return event

    def unwatch(self, idents: Sequence[tuple[str, str]], event: asyncio.Event) -> None:
        for ident in idents:
            events = self._watchers.get(ident)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._watchers[ident]

    def notify(self, idents: Sequence[tuple[str, str]]) -> None:
        for ident in idents:
            for event in self._watchers.get(ident, ()):
                event.set()


def _throttled(retry_after: dt.timedelta) -> ResourceExhausted:
    return ResourceExhausted(
        "too many failed password attempts; try again later", reason=THROTTLED_REASON, retry_after=retry_after
    )


def _state(row: Any) -> CounterState:
    return CounterState(row.failures, row.last_failure_at, row.blocked_until, row.pending, row.pending_until)


def _where(counter: Counter) -> tuple[Any, ...]:
    return login_throttle.c.scope == counter.scope, login_throttle.c.key == counter.key


def _row_of(counter: Counter) -> sa.Select[Any]:
    return sa.select(login_throttle).where(*_where(counter))


def _update(counter: Counter) -> sa.Update:
    return sa.update(login_throttle).where(*_where(counter))


async def confirm_password(
    throttle: LoginThrottle, passwords: Passwords, account: Any, password: str, *, session_id: str, field: str = "password"
) -> None:
    """The password again in a signed-in session (ConfirmPassword, ChangePassword,
    CancelAccount): throttled per session, so that strangers' failed logins never refuse it."""
    normalized = rules.normalize_password(password, field)
    async with throttle.attempt(throttle.for_session(session_id)) as attempt:
        right = await passwords.verify(account.password_hash, normalized)
        attempt.record(right)
    if not right:
        raise PermissionDenied("the password is wrong", reason="INVALID_CREDENTIALS")
