"""Throttling of password guesses: counters per account (or per unknown login) and per client
address, claimed before the slow password check and handed back on success."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_auth.adapters.tables import login_throttle
from cumulo_auth.config import AuthSettings
from cumulo_auth.domain import rules
from cumulo_auth.domain.throttle import ThrottlePolicy
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import PermissionDenied, ResourceExhausted
from cumulo_platform.passwords import Passwords


@dataclasses.dataclass(frozen=True)
class Counter:
    scope: str  # "account" or "address"
    key: str
    policy: ThrottlePolicy


class LoginThrottle:
    def __init__(self, *, db: Database, clock: Clock, settings: AuthSettings) -> None:
        self.db = db
        self.clock = clock
        self.account_policy = ThrottlePolicy(
            settings.throttle_free_failures_per_account,
            settings.throttle_base_delay,
            settings.throttle_max_delay,
            settings.throttle_forget_after,
        )
        self.address_policy = ThrottlePolicy(
            settings.throttle_free_failures_per_address,
            settings.throttle_base_delay,
            settings.throttle_max_delay,
            settings.throttle_forget_after,
        )

    def for_account(self, account_id: uuid.UUID | None, login: str = "") -> Counter:
        """An account's counter; a login that names no account has its own, so that
        throttling does not tell which logins exist."""
        return Counter("account", f"id:{account_id}" if account_id else f"login:{login}", self.account_policy)

    def for_address(self, client_address: str) -> Counter:
        return Counter("address", client_address, self.address_policy)

    async def claim(self, counters: Sequence[Counter]) -> None:
        """Counts a password attempt as a failure *before* the (slow) check, under a row lock,
        so concurrent guesses cannot slip past the limit; `succeeded` takes it back."""
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            for counter in counters:
                await uow.execute(
                    pg_insert(login_throttle)
                    .values(scope=counter.scope, key=counter.key, failures=0, last_failure_at=now)
                    .on_conflict_do_nothing()
                )
                current = (await uow.execute(_row_of(counter).with_for_update())).one()
                if current.blocked_until is not None and current.blocked_until > now:
                    raise ResourceExhausted(
                        "too many failed password attempts; try again later",
                        reason="LOGIN_THROTTLED",
                        retry_after=current.blocked_until - now,
                    )
                failures = counter.policy.failures_after_new_failure(current.failures, current.last_failure_at, now)
                await uow.execute(
                    sa.update(login_throttle)
                    .where(login_throttle.c.scope == counter.scope, login_throttle.c.key == counter.key)
                    .values(failures=failures, last_failure_at=now, blocked_until=counter.policy.blocked_until(failures, now))
                )
            await uow.commit()

    async def succeeded(self, counters: Sequence[Counter]) -> None:
        async with self.db.unit_of_work() as uow:
            for counter in counters:
                where = (login_throttle.c.scope == counter.scope, login_throttle.c.key == counter.key)
                if counter.scope == "account":
                    # The account's owner proved the password: its slate is clean.
                    await uow.execute(sa.delete(login_throttle).where(*where))
                    continue
                # An address shared by many people only gets back the attempt it just used.
                current = (await uow.execute(_row_of(counter).with_for_update())).first()
                if current is not None:
                    failures = max(current.failures - 1, 0)
                    await uow.execute(
                        sa.update(login_throttle)
                        .where(*where)
                        .values(failures=failures, blocked_until=counter.policy.blocked_until(failures, current.last_failure_at))
                    )
            await uow.commit()


def _row_of(counter: Counter) -> sa.Select[Any]:
    return sa.select(login_throttle).where(login_throttle.c.scope == counter.scope, login_throttle.c.key == counter.key)


async def confirm_password(throttle: LoginThrottle, passwords: Passwords, account: Any, password: str) -> None:
    """The password again in a session (change password, cancel, ConfirmPassword): it counts
    against the same limit as a login of the account."""
    counters = [throttle.for_account(account.account_id)]
    await throttle.claim(counters)
    if not await passwords.verify(account.password_hash, rules.normalize_password(password)):
        raise PermissionDenied("the password is wrong", reason="INVALID_CREDENTIALS")
    await throttle.succeeded(counters)
