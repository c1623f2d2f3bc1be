"""Codes sent to a contact, and verified contacts.

A code proves that whoever enters it reads the e-mail address or phone number it was sent to:
to verify that contact (its owner, signed in: `ContactVerification`), or to set a forgotten
password (anyone: cumulo_auth.recovery). Until a contact is verified it gets nothing but these
codes (GetAccountContacts leaves it out, so no notice goes there) and nobody finds the account
by it (FindAccount).

A code is made here and kept only as a keyed hash (with its purpose and the contact it went to,
so that a changed contact voids it); one waits per account, contact and purpose, good for
`contact_code_ttl` and for `contact_code_attempts` wrong guesses, and a contact gets at most
`contact_codes_per_hour` of a purpose an hour. The lifecycle, which delivers every message,
sends it at once: a code never goes over the event bus nor into a queue."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts, contact_codes
from cumulo_auth.config import AuthSettings
from cumulo_auth.domain.accounts import view
from cumulo_auth.live_sessions import LiveSessions
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from cumulo_platform.secrets import keyed_hash
from cumulo_platform.text import mask_contact
from cumulo_platform.tokens import Principal

VERIFY, RESET = "verify", "reset"
CODE_DIGITS = 6
# The channel a contact's messages go by.
DELIVERY_CHANNEL = {"email": "email", "phone": "sms"}
VERIFIED_COLUMN = {"email": accounts.c.email_verified_at, "phone": accounts.c.phone_verified_at}

# (account id, delivery channel, destination, code, minutes it is good for, locale, purpose):
# sends now or raises.
SendCode = Callable[[str, str, str, str, int, str, str], Awaitable[None]]


def check_channel(value: str) -> str:
    if value not in DELIVERY_CHANNEL:
        raise InvalidArgument("channel", "must be email or phone")
    return value


def verified(row: Any) -> dict[str, bool]:
    return {"email": row.email_verified_at is not None, "phone": row.phone_verified_at is not None}


def as_digits(code: str, digits: int) -> str | None:
    """A typed code without its spaces, if it is `digits` ASCII digits; else None."""
    entered = "".join(code.split())
    return entered if len(entered) == digits and entered.isascii() and entered.isdigit() else None


def entered_code(code: str, digits: int, sent_where: str = "sent to you") -> str:
    """A typed code as `as_digits`, or INVALID_ARGUMENT naming the field."""
    entered = as_digits(code, digits)
    if entered is None:
        raise InvalidArgument("code", f"is the {digits} digits {sent_where}")
    return entered


def _word(channel: str) -> str:
    return "e-mail address" if channel == "email" else "phone number"


class ContactCodes:
    """The codes waiting, per account, channel and purpose."""

    def __init__(self, settings: AuthSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock

    def _digest(self, account_id: uuid.UUID, channel: str, purpose: str, destination: str, code: str) -> bytes:
        return keyed_hash(self.settings.login_key, f"contact-code\x00{purpose}\x00{account_id}\x00{channel}\x00{destination}\x00{code}")

    def _where(self, account_id: uuid.UUID, channel: str, purpose: str) -> tuple[Any, ...]:
        return (contact_codes.c.account_id == account_id, contact_codes.c.channel == channel, contact_codes.c.purpose == purpose)

    async def issue(
        self, uow: UnitOfWork, account_id: uuid.UUID, channel: str, purpose: str, destination: str, *, digits: int = CODE_DIGITS
    ) -> tuple[str, dt.datetime]:
        """A new code for the contact (the last one of the purpose is void), or
        RESOURCE_EXHAUSTED once the contact had its codes of the hour: a code costs the operator
        a message and the person at the other end an interruption."""
        now = self.clock.now()
        hour_ago = now - dt.timedelta(hours=1)
        statement = pg_insert(contact_codes).values(
            account_id=account_id, channel=channel, purpose=purpose, expires_at=now, window_started_at=now, sends=1
        )
        row = (
            await uow.execute(
                statement.on_conflict_do_update(
                    index_elements=[contact_codes.c.account_id, contact_codes.c.channel, contact_codes.c.purpose],
                    set_={
                        "window_started_at": sa.case((contact_codes.c.window_started_at <= hour_ago, now), else_=contact_codes.c.window_started_at),
                        "sends": sa.case((contact_codes.c.window_started_at <= hour_ago, 1), else_=contact_codes.c.sends + 1),
                    },
                ).returning(contact_codes.c.sends, contact_codes.c.window_started_at)
            )
        ).one()
        if row.sends > self.settings.contact_codes_per_hour:
            retry = row.window_started_at + dt.timedelta(hours=1) - now
            raise ResourceExhausted(
                f"at most {self.settings.contact_codes_per_hour} codes an hour go to one contact; try again in "
                f"{max(1, int(retry.total_seconds() // 60) + 1)} minutes",
                reason="TOO_MANY_CODES",
                metadata={"retry_after_seconds": str(max(1, int(retry.total_seconds())))},
            )
        code = f"{secrets.randbelow(10**digits):0{digits}d}"
        expires_at = now + self.settings.contact_code_ttl
        await uow.execute(
            sa.update(contact_codes)
            .where(*self._where(account_id, channel, purpose))
            .values(code_digest=self._digest(account_id, channel, purpose, destination, code), expires_at=expires_at, attempts=0)
        )
        return code, expires_at

    def wrong(self, purpose: str) -> InvalidArgument:
        """What a wrong code is told; for a reset, also an expired one and a login with no
        account (the caller is anonymous: nothing may tell which)."""
        if purpose == RESET:
            return InvalidArgument(
                "code", "is not a code sent for this login, or it expired or was tried too often: ask for a new one", reason="CODE_WRONG"
            )
        return InvalidArgument("code", "is not the code sent to this contact", reason="CODE_WRONG")

    async def check(self, uow: UnitOfWork, account_id: uuid.UUID, channel: str, purpose: str, destination: str, entered: str) -> None:
        """Raises unless `entered` is the code waiting; a wrong guess is counted (the caller
        commits the unit of work before it lets the error go)."""
        waiting = (await uow.execute(sa.select(contact_codes).where(*self._where(account_id, channel, purpose)).with_for_update())).first()
        now = self.clock.now()
        if waiting is None or waiting.code_digest is None or waiting.expires_at <= now:
            if purpose == RESET:
                raise self.wrong(purpose)
            raise FailedPrecondition("no code is waiting for this contact, or it has expired: send a new one", reason="NO_CODE_WAITING")
        if waiting.attempts >= self.settings.contact_code_attempts:
            if purpose == RESET:
                raise self.wrong(purpose)
            raise FailedPrecondition("too many wrong codes: send a new one", reason="CODE_ATTEMPTS_EXHAUSTED")
        if not hmac.compare_digest(waiting.code_digest, self._digest(account_id, channel, purpose, destination, entered)):
            await uow.execute(sa.update(contact_codes).where(*self._where(account_id, channel, purpose)).values(attempts=contact_codes.c.attempts + 1))
            raise self.wrong(purpose)

    async def use(self, uow: UnitOfWork, account_id: uuid.UUID, channel: str, purpose: str, destination: str, entered: str) -> bool:
        """The code, checked once more under its lock, spent: whether it was still good."""
        spent = await uow.execute(
            sa.update(contact_codes)
            .where(
                *self._where(account_id, channel, purpose),
                contact_codes.c.code_digest == self._digest(account_id, channel, purpose, destination, entered),
                contact_codes.c.expires_at > self.clock.now(),
                contact_codes.c.attempts < self.settings.contact_code_attempts,
            )
            .values(code_digest=None)  # the row stays for the hourly count
        )
        return bool(spent.rowcount)

    async def void(self, uow: UnitOfWork, account_id: uuid.UUID, channels: list[str]) -> None:
        """Every code waiting for these contacts (they changed)."""
        await uow.execute(
            sa.update(contact_codes).where(contact_codes.c.account_id == account_id, contact_codes.c.channel.in_(channels)).values(code_digest=None)
        )


class ContactVerification:
    def __init__(self, *, db: Database, clock: Clock, settings: AuthSettings, codes: ContactCodes, send: SendCode, live: LiveSessions) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.codes = codes
        self.send = send
        self.live = live

    async def send_code(self, principal: Principal, channel: str) -> tuple[str, dt.datetime]:
        """Sends a new code to the contact (the last one is void); returns where it went,
        masked, and until when it is good."""
        check_channel(channel)
        account_id = uuid.UUID(principal.account_id)
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_id, lock=True)
            destination = getattr(row, channel)
            if destination is None:
                raise FailedPrecondition(f"this account has no {_word(channel)}: add one first (UpdateContacts)", reason="NO_SUCH_CONTACT")
            if verified(row)[channel]:
                raise FailedPrecondition(f"this {_word(channel)} is verified already", reason="CONTACT_ALREADY_VERIFIED")
            code, expires_at = await self.codes.issue(uow, account_id, channel, VERIFY, destination)
            locale = row.locale or ""
            await uow.commit()
        minutes = max(1, int(self.settings.contact_code_ttl.total_seconds() // 60))
        await self.send(str(account_id), DELIVERY_CHANNEL[channel], destination, code, minutes, locale, VERIFY)
        return mask_contact(destination), expires_at

    async def verify(self, principal: Principal, channel: str, code: str) -> dict[str, Any]:
        check_channel(channel)
        entered = entered_code(code, CODE_DIGITS)
        account_id = uuid.UUID(principal.account_id)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_id, lock=True)
            destination = getattr(row, channel)
            if verified(row)[channel]:
                return view(row, now=now, time_zone=self.settings.time_zone)  # a retry after a lost answer
            if destination is None:
                raise FailedPrecondition("no code is waiting for this contact, or it has expired: send a new one", reason="NO_CODE_WAITING")
            try:
                await self.codes.check(uow, account_id, channel, VERIFY, destination, entered)
            except InvalidArgument as wrong:  # the guess is counted
                await uow.commit()
                raise wrong from None
            await self.codes.use(uow, account_id, channel, VERIFY, destination, entered)
            await uow.execute(
                sa.update(accounts).where(accounts.c.account_id == account_id).values({VERIFIED_COLUMN[channel]: now, "updated_at": now})
            )
            self.live.forget_after_commit(uow, account_id)
            # The lifecycle takes the contact for notices from now on.
            uow.emit(
                "account.contact_changed",
                events_pb2.ContactChanged(account_id=str(account_id), changed=[channel], verified=True),
                account_id=str(account_id),
            )
            row = await account_table.load(uow, account_id)
            await uow.commit()
        return view(row, now=now, time_zone=self.settings.time_zone)
