"""Logging in with a login (e-mail or phone) and a password: each client address has only so
many logins in its allowance of password checks, wrong guesses are throttled
(cumulo_auth.throttling), and a login whose account the deletion saga purged is answered
ACCOUNT_DELETED."""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo
from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts, deleted_logins, sessions
from cumulo_auth.domain import credentials, rules
from cumulo_auth.domain.accounts import refuse_unless_usable, view
from cumulo_auth.domain.password_work import PasswordWork
from cumulo_auth.issuing import TokenIssuer, Tokens
from cumulo_auth.throttling import THROTTLED_REASON, LoginThrottle
from cumulo_auth.two_step import TwoStep
from cumulo_platform.account_states import AccountDeleted, AccountStates
from cumulo_platform.call_limit import CallLimit, spend
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, Unauthenticated
from cumulo_platform.passwords import Passwords

DEVICE_NAME_MAX_LENGTH = 100


class Login:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        time_zone: zoneinfo.ZoneInfo,
        passwords: Passwords,
        throttle: LoginThrottle,
        password_checks: CallLimit,
        issuer: TokenIssuer,
        states: AccountStates,
        two_step: TwoStep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.time_zone = time_zone
        self.passwords = passwords
        self.throttle = throttle
        self.password_checks = password_checks
        self.issuer = issuer
        self.states = states
        self.two_step = two_step

    async def login(
        self, *, login: str, password: str, device_name: str, client_id: str, client_network: str, second_factor: str = ""
    ) -> tuple[Tokens, dict[str, Any]]:
        key = rules.login_key(login)
        if not password:
            raise InvalidArgument("password", "must not be empty")
        normalized = rules.normalize_password(password)
        if len(device_name) > DEVICE_NAME_MAX_LENGTH:
            raise InvalidArgument("device_name", f"must be at most {DEVICE_NAME_MAX_LENGTH} characters")
        spend(self.password_checks, client_network, self.clock.now(), PasswordWork.LOGIN, what="logins from this address", reason=THROTTLED_REASON)
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(account_table.login_column(key) == key))).first()
            deleted = row is None and (
                await conn.execute(
                    sa.select(deleted_logins.c.account_id).where(deleted_logins.c.login_digest == credentials.login_digest(self.throttle.login_key, key))
                )
            ).first() is not None
        # Unknown logins are throttled like real ones, so throttling does not tell which exist.
        counters = self.throttle.for_login(row.account_id if row else None, key, client_network)
        async with self.throttle.attempt(counters) as attempt:
            if deleted:
                raise AccountDeleted()
            right = await self.passwords.verify(row.password_hash if row else None, normalized)
            if right and row is not None and row.two_step_at is not None:
                # The password was right: now the second step (a wrong code counts as a wrong password).
                if not second_factor.strip():
                    raise FailedPrecondition(
                        "this account asks for a second step: the code your authenticator app shows, or a recovery code (second_factor)",
                        reason="SECOND_FACTOR_REQUIRED",
                    )
                async with self.db.unit_of_work() as uow:
                    passed = await self.two_step.spend(uow, row.account_id, second_factor)
                    await uow.commit()
                attempt.record(passed)
                if not passed:
                    raise Unauthenticated("the code of the second step is wrong or used already", reason="SECOND_FACTOR_WRONG")
            attempt.record(right)
        if not right:
            raise Unauthenticated("the login or the password is wrong", reason="INVALID_CREDENTIALS")
        assert row is not None
        refuse_unless_usable(row, self.clock.now())
        # Logging in reactivates a frozen account (asking the lifecycle: before the unit of work).
        await self.states.ensure_usable(str(row.account_id))
        async with self.db.unit_of_work() as uow:
            tokens = await self.issuer.open_session(uow, row, client_id=client_id, device_name=device_name)
            # The notice's "not you?" link ends this session, and only it (the token is kept as a hash).
            revoke_token = secrets.token_urlsafe(24)
            await uow.execute(
                sa.update(sessions).where(sessions.c.session_id == tokens.session_id)
                .values(revoke_token_hash=hashlib.sha256(revoke_token.encode()).digest())
            )
            uow.emit(
                "account.logged_in",
                events_pb2.LoggedIn(account_id=str(row.account_id), session_id=str(tokens.session_id), client_id=client_id),
                account_id=str(row.account_id),
            )
            # The owner is told of every new sign-in, with where it came from (the lifecycle
            # words it in their language and sends it to their contacts).
            uow.emit(
                "notice.requested",
                events_pb2.NoticeRequested(
                    account_id=str(row.account_id), reference=f"new-session:{tokens.session_id}", kind="new_session",
                    values={
                        "device": device_name.strip() or "-", "app": client_id, "address": client_network or "-",
                        "at": self.clock.now().isoformat(), "revoke_token": revoke_token,
                    },
                ),
                account_id=str(row.account_id),
            )
            await uow.commit()
        return tokens, view(row, now=self.clock.now(), time_zone=self.time_zone)
