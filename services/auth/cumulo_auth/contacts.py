"""Verified contacts: the owner proves an e-mail address or phone number theirs by entering the
code sent to it. Until then the contact gets nothing but these codes (GetAccountContacts leaves
it out, so no notice goes there) and nobody finds the account by it (FindAccount).

A code is six digits, made here and kept only as a keyed hash (with the contact it went to,
so that a changed contact voids it); it is good for `contact_code_ttl` and for
`contact_code_attempts` wrong guesses, and a contact gets at most `contact_codes_per_hour`
codes an hour. The lifecycle, which delivers every message, sends it at once: the code never
goes over the event bus nor into a queue."""

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

CODE_DIGITS = 6
# The channel a contact's messages go by.
DELIVERY_CHANNEL = {"email": "email", "phone": "sms"}
VERIFIED_COLUMN = {"email": accounts.c.email_verified_at, "phone": accounts.c.phone_verified_at}

# (account id, delivery channel, destination, code, minutes it is good for, locale): sends now or raises.
SendCode = Callable[[str, str, str, str, int, str], Awaitable[None]]


def check_channel(value: str) -> str:
    if value not in DELIVERY_CHANNEL:
        raise InvalidArgument("channel", "must be email or phone")
    return value


def verified(row: Any) -> dict[str, bool]:
    return {"email": row.email_verified_at is not None, "phone": row.phone_verified_at is not None}


class ContactVerification:
    def __init__(self, *, db: Database, clock: Clock, settings: AuthSettings, send: SendCode, live: LiveSessions) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.send = send
        self.live = live

    def _digest(self, account_id: uuid.UUID, channel: str, destination: str, code: str) -> bytes:
        return keyed_hash(self.settings.login_key, f"contact-code\x00{account_id}\x00{channel}\x00{destination}\x00{code}")

    async def send_code(self, principal: Principal, channel: str) -> tuple[str, dt.datetime]:
        """Sends a new code to the contact (the last one is void); returns where it went,
        masked, and until when it is good."""
        check_channel(channel)
        account_id = uuid.UUID(principal.account_id)
        now = self.clock.now()
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        expires_at = now + self.settings.contact_code_ttl
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_id, lock=True)
            destination = getattr(row, channel)
            if destination is None:
                raise FailedPrecondition(f"this account has no {_word(channel)}: add one first (UpdateContacts)", reason="NO_SUCH_CONTACT")
            if verified(row)[channel]:
                raise FailedPrecondition(f"this {_word(channel)} is verified already", reason="CONTACT_ALREADY_VERIFIED")
            await self._count_send(uow, account_id, channel, now)
            await uow.execute(
                sa.update(contact_codes)
                .where(contact_codes.c.account_id == account_id, contact_codes.c.channel == channel)
                .values(code_digest=self._digest(account_id, channel, destination, code), expires_at=expires_at, attempts=0)
            )
            locale = row.locale or ""
            await uow.commit()
        minutes = max(1, int(self.settings.contact_code_ttl.total_seconds() // 60))
        await self.send(str(account_id), DELIVERY_CHANNEL[channel], destination, code, minutes, locale)
        return mask_contact(destination), expires_at

    async def _count_send(self, uow: UnitOfWork, account_id: uuid.UUID, channel: str, now: dt.datetime) -> None:
        """One more code for this contact this hour, or RESOURCE_EXHAUSTED: a code costs the
        operator a message and the person at the other end an interruption."""
        hour_ago = now - dt.timedelta(hours=1)
        statement = pg_insert(contact_codes).values(
            account_id=account_id, channel=channel, expires_at=now, window_started_at=now, sends=1
        )
        row = (
            await uow.execute(
                statement.on_conflict_do_update(
                    index_elements=[contact_codes.c.account_id, contact_codes.c.channel],
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

    async def verify(self, principal: Principal, channel: str, code: str) -> dict[str, Any]:
        check_channel(channel)
        entered = "".join(code.split())
        if not (len(entered) == CODE_DIGITS and entered.isascii() and entered.isdigit()):
            raise InvalidArgument("code", f"is the {CODE_DIGITS} digits sent to you")
        account_id = uuid.UUID(principal.account_id)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_id, lock=True)
            waiting = (
                await uow.execute(
                    sa.select(contact_codes)
                    .where(contact_codes.c.account_id == account_id, contact_codes.c.channel == channel)
                    .with_for_update()
                )
            ).first()
            destination = getattr(row, channel)
            if verified(row)[channel]:
                return view(row, now=now, time_zone=self.settings.time_zone)  # a retry after a lost answer
            if destination is None or waiting is None or waiting.code_digest is None or waiting.expires_at <= now:
                raise FailedPrecondition("no code is waiting for this contact, or it has expired: send a new one", reason="NO_CODE_WAITING")
            if waiting.attempts >= self.settings.contact_code_attempts:
                raise FailedPrecondition("too many wrong codes: send a new one", reason="CODE_ATTEMPTS_EXHAUSTED")
            if not hmac.compare_digest(waiting.code_digest, self._digest(account_id, channel, destination, entered)):
                await uow.execute(
                    sa.update(contact_codes)
                    .where(contact_codes.c.account_id == account_id, contact_codes.c.channel == channel)
                    .values(attempts=contact_codes.c.attempts + 1)
                )
                await uow.commit()
                left = self.settings.contact_code_attempts - waiting.attempts - 1
                raise InvalidArgument("code", f"is not the code sent to this contact ({left} tries left with it)", reason="CODE_WRONG")
            await uow.execute(
                sa.update(contact_codes)
                .where(contact_codes.c.account_id == account_id, contact_codes.c.channel == channel)
                .values(code_digest=None)  # used: the row stays for the hourly count
            )
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


def _word(channel: str) -> str:
    return "e-mail address" if channel == "email" else "phone number"
