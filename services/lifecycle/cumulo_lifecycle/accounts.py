"""Accounts as auth announces them, and their contact methods for notices.

The events carry no personal data: they only say that an account was created or that its
contacts changed. The lifecycle asks auth for the values, but never while a unit of work is
open (an event handler runs inside the consumer's): the handler records that the contacts are
wanted, and `refresh_wanted` (a job) asks auth after the commit and records the answer in a unit
of work of its own, unless they were wanted again meanwhile."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_lifecycle.adapters.contacts import ContactLookup, Contacts
from cumulo_lifecycle.adapters.tables import accounts
from cumulo_lifecycle.domain.calendar import ACTIVE, DELETED, FROZEN
from cumulo_lifecycle.notices import known_locale
from cumulo_lifecycle.schedule import Schedule
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import CumuloError, is_outage
from cumulo_platform.logging import get_logger
from cumulo_platform.runtime import raise_if_cancelled

log = get_logger(__name__)
REFRESH_BATCH = 100


class Accounts:
    def __init__(self, db: Database, clock: Clock, *, schedule: Schedule, contacts: ContactLookup) -> None:
        self.db = db
        self.clock = clock
        self.schedule = schedule
        self.contacts = contacts
        self._wanted = asyncio.Event()

    async def created(self, uow: UnitOfWork, event: events_pb2.AccountCreated) -> None:
        """A new account's clock starts at its creation (an access seen first keeps the later time)."""
        created = event.created_at.ToDatetime(tzinfo=dt.UTC)
        now = self.clock.now()
        statement = pg_insert(accounts).values(
            account_id=uuid.UUID(event.account_id),
            state=ACTIVE,
            created_at=created,
            locale=known_locale(""),
            contacts_wanted_at=now,
            updated_at=now,
            **self.schedule.active(created),
        )
        await uow.execute(
            statement.on_conflict_do_update(
                index_elements=[accounts.c.account_id],
                set_={"created_at": statement.excluded.created_at, "contacts_wanted_at": now, "updated_at": now},
            )
        )
        uow.after_commit(self._wanted.set)

    async def contact_changed(self, uow: UnitOfWork, event: events_pb2.ContactChanged) -> None:
        """The account's contacts are asked for again; so are those of the minors whose
        guardian it is (their copies hold its contacts as they were)."""
        account = uuid.UUID(event.account_id)
        now = self.clock.now()
        old = (await uow.execute(sa.select(accounts.c.email, accounts.c.phone).where(accounts.c.account_id == account))).first()
        await uow.execute(
            sa.update(accounts).where(accounts.c.account_id == account, accounts.c.state.in_((ACTIVE, FROZEN))).values(contacts_wanted_at=now)
        )
        if old is not None and (old.email or old.phone):
            theirs = sa.or_(
                sa.and_(accounts.c.guardian_email.is_not(None), accounts.c.guardian_email == old.email),
                sa.and_(accounts.c.guardian_phone.is_not(None), accounts.c.guardian_phone == old.phone),
            )
            await uow.execute(sa.update(accounts).where(theirs, accounts.c.state.in_((ACTIVE, FROZEN))).values(contacts_wanted_at=now))
        uow.after_commit(self._wanted.set)

    async def guardian_revoked(self, uow: UnitOfWork, event: events_pb2.GuardianRevoked) -> None:
        """The minor's notices stop going to the guardian: their contacts are asked for again."""
        await uow.execute(
            sa.update(accounts)
            .where(accounts.c.account_id == uuid.UUID(event.account_id), accounts.c.state.in_((ACTIVE, FROZEN)))
            .values(contacts_wanted_at=self.clock.now(), guardian_email=None, guardian_phone=None, guardian_until=None)
        )
        uow.after_commit(self._wanted.set)

    async def run(self, *, every: float) -> None:
        """The job: contacts as soon as they are wanted, and every `every` seconds whatever is left."""
        while True:
            try:
                await asyncio.wait_for(self._wanted.wait(), timeout=every)
            except TimeoutError:
                pass
            raise_if_cancelled()
            self._wanted.clear()
            try:
                await self.refresh_wanted()
            except Exception:
                log.exception("contacts_refresh_failed")

    async def refresh_wanted(self) -> int:
        """Asks auth for the contacts of the accounts that want them; returns how many were
        recorded. Auth being away leaves the rest for the next round."""
        async with self.db.read() as conn:
            wanted = (
                await conn.execute(
                    sa.select(accounts.c.account_id, accounts.c.contacts_wanted_at)
                    .where(accounts.c.contacts_wanted_at.is_not(None))
                    .order_by(accounts.c.contacts_wanted_at)
                    .limit(REFRESH_BATCH)
                )
            ).all()
        recorded = 0
        for account_id, wanted_at in wanted:
            try:
                found = await self.contacts(str(account_id))
            except CumuloError as exc:
                if is_outage(exc):
                    log.warning("contacts_unavailable", waiting=len(wanted) - recorded)
                    break
                # This account's question only: it goes to the back of the queue, and the
                # others are not held up behind it.
                log.warning("contacts_lookup_failed", account_id=str(account_id), reason=exc.reason)
                await self._ask_later(account_id, wanted_at)
                continue
            await self._record(account_id, wanted_at, found)
            recorded += 1
        return recorded

    async def _ask_later(self, account_id: uuid.UUID, wanted_at: dt.datetime) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == account_id, accounts.c.contacts_wanted_at == wanted_at)
                .values(contacts_wanted_at=self.clock.now())
            )
            await uow.commit()

    async def _record(self, account_id: uuid.UUID, wanted_at: dt.datetime, found: Contacts | None) -> None:
        """Auth's answer, unless the contacts were wanted again since the question (the next
        round asks again); auth knowing no such account leaves the contacts as they are. A
        deleted account has forgotten its contacts for good."""
        values: dict[str, Any] = {"contacts_wanted_at": None}
        if found is not None:
            values.update(
                email=found.email or None, phone=found.phone or None, locale=known_locale(found.locale), updated_at=self.clock.now(),
                guardian_email=found.guardian_email or None, guardian_phone=found.guardian_phone or None,
                guardian_until=found.guardian_until if (found.guardian_email or found.guardian_phone) else None,
            )
        this_question = (accounts.c.account_id == account_id, accounts.c.contacts_wanted_at == wanted_at)
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.update(accounts).where(*this_question, accounts.c.state != DELETED).values(**values))
            await uow.execute(sa.update(accounts).where(*this_question, accounts.c.state == DELETED).values(contacts_wanted_at=None))
            await uow.commit()
