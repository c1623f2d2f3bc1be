"""A forgotten password: a code to a verified contact of the account, then a new password.

Nobody learns from it who has an account, or whose contact is verified: StartPasswordReset
answers the same for every login (the code goes out in the background, so not even the time
of the answer tells), and ResetPassword refuses a wrong code, an expired one and a login with
no account in the same words. Both are anonymous calls, throttled per client address (one
allowance with the other calls that check passwords); codes per contact are capped an hour, and
a code is eight digits, good for `contact_code_ttl` and a few guesses. A reset ends every
session of the account and tells every verified contact."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts
from cumulo_auth.config import AuthSettings
from cumulo_auth.contacts import DELIVERY_CHANNEL, RESET, ContactCodes, SendCode, entered_code
from cumulo_auth.domain import rules
from cumulo_auth.domain.password_work import PasswordWork
from cumulo_auth.live_sessions import LiveSessions
from cumulo_platform.call_limit import CallLimit, spend
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import CumuloError
from cumulo_platform.logging import get_logger
from cumulo_platform.passwords import Passwords

log = get_logger(__name__)
RESET_DIGITS = 8
RATE_LIMITED = "PASSWORD_RESET_RATE_LIMITED"
RESET_SESSION_REASON = "password reset"
# Accounts whose password may be reset: not one closed (deleted, cancelled, terminated) nor
# suspended, which a reset must not lift.
USABLE = ("active",)


async def password_set_by_another_way(
    uow: UnitOfWork, live: LiveSessions, account_id: uuid.UUID, new_hash: str, *, now: dt.datetime, address: str
) -> None:
    """A password set without the old one (a code to a contact, or the guardian of a minor):
    every session of the account ends, and the owner is told at every verified contact."""
    await uow.execute(sa.update(accounts).where(accounts.c.account_id == account_id).values(password_hash=new_hash, updated_at=now))
    await account_table.revoke_all_sessions(uow, account_id, reason=RESET_SESSION_REASON, now=now)
    live.forget_after_commit(uow, account_id)
    uow.emit(
        "notice.requested",
        events_pb2.NoticeRequested(
            account_id=str(account_id), reference=f"password-reset:{uuid.uuid4()}", kind="password_reset",
            values={"at": now.isoformat(), "address": address or "-"},
        ),
        account_id=str(account_id),
    )


class PasswordResets:
    def __init__(
        self, *, db: Database, clock: Clock, settings: AuthSettings, codes: ContactCodes, passwords: Passwords,
        password_checks: CallLimit, send: SendCode, live: LiveSessions,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.codes = codes
        self.passwords = passwords
        self.password_checks = password_checks
        self.send = send
        self.live = live
        self._sending: set[asyncio.Task[None]] = set()

    async def _account(self, key: str) -> Any:
        """The usable account whose verified contact `key` is, or None."""
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    sa.select(accounts).where(
                        account_table.login_column(key) == key,
                        account_table.verified_column(key).is_not(None),
                        accounts.c.status.in_(USABLE),
                    )
                )
            ).first()

    async def start(self, login: str, client_network: str) -> None:
        key = rules.login_key(login)
        spend(self.password_checks, client_network, self.clock.now(), PasswordWork.CHECK, what="password resets from this address", reason=RATE_LIMITED)
        row = await self._account(key)
        if row is None:
            return
        channel = "email" if "@" in key else "phone"
        try:
            async with self.db.unit_of_work() as uow:
                code, _ = await self.codes.issue(uow, row.account_id, channel, RESET, key, digits=RESET_DIGITS)
                await uow.commit()
        except CumuloError as exc:  # this contact's codes for the hour are spent: nothing more goes out
            log.info("password_reset_code_not_sent", account_id=str(row.account_id), reason=exc.reason)
            return
        minutes = max(1, int(self.settings.contact_code_ttl.total_seconds() // 60))
        task = asyncio.get_running_loop().create_task(
            self._deliver(str(row.account_id), DELIVERY_CHANNEL[channel], key, code, minutes, row.locale or "")
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, account_id: str, channel: str, destination: str, code: str, minutes: int, locale: str) -> None:
        try:
            await self.send(account_id, channel, destination, code, minutes, locale, RESET)
        except CumuloError as exc:  # the person asks again; the answer they had said nothing either way
            log.warning("password_reset_code_not_delivered", account_id=account_id, reason=exc.reason)

    async def reset(self, login: str, code: str, new_password: str, client_network: str) -> None:
        key = rules.login_key(login)
        entered = entered_code(code, RESET_DIGITS)
        # A new password costs a hash: as much of the address's allowance as a new account.
        spend(self.password_checks, client_network, self.clock.now(), PasswordWork.NEW_ACCOUNT, what="password resets from this address", reason=RATE_LIMITED)
        row = await self._account(key)
        contacts = (row.email or "", row.phone or "") if row is not None else (key,)
        normalized = rules.check_password(new_password, field="new_password", contacts=contacts)
        channel = "email" if "@" in key else "phone"
        if row is None:
            raise self.codes.wrong(RESET)
        async with self.db.unit_of_work() as uow:
            try:
                await self.codes.check(uow, row.account_id, channel, RESET, key, entered)
            finally:
                await uow.commit()  # a wrong guess is counted
        new_hash = await self.passwords.hash(normalized)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            # Used once: whoever saw the code cannot set another password with it.
            if not await self.codes.use(uow, row.account_id, channel, RESET, key, entered):
                raise self.codes.wrong(RESET)
            await password_set_by_another_way(uow, self.live, row.account_id, new_hash, now=now, address=client_network)
            await uow.commit()

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
