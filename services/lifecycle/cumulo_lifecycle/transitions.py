"""The state machine's effects: `ACTIVE → FROZEN → (ACTIVE | DELETING → DELETED)`.

Every transition happens in the caller's unit of work with the account row locked (the caller
re-checks its condition there), bumps the row's version, records the transition, queues its
notices and emits `account.state_changed` through the outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_lifecycle.adapters.tables import LEDGER_COLUMNS, accounts, reactivation_links
from cumulo_lifecycle.domain.calendar import ACTIVE, DELETED, DELETING, FROZEN
from cumulo_lifecycle.notices import Notices
from cumulo_lifecycle.notifier import cancel_pending_notices
from cumulo_lifecycle.rows import AccountRows
from cumulo_lifecycle.schedule import Schedule
from cumulo_platform.account_states import EVENT_TYPE as STATE_EVENT
from cumulo_platform.clock import Clock
from cumulo_platform.db import UnitOfWork
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.logging import get_logger

log = get_logger(__name__)

DELETED_NOTICE = {"cancellation": "deleted_cancellation", "termination": "deleted_termination"}


class Transitions:
    def __init__(self, clock: Clock, schedule: Schedule, rows: AccountRows, notices: Notices) -> None:
        self.clock = clock
        self.schedule = schedule
        self.cal = schedule.cal
        self.rows = rows
        self.notices = notices

    async def move(self, uow: UnitOfWork, row: Any, to_state: str, reason: str, **values: Any) -> Any:
        """Writes the new state with a higher version, records it and announces it."""
        now = self.clock.now()
        updated = (
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == row.account_id)
                .values(state=to_state, version=accounts.c.version + 1, updated_at=now, **values)
                .returning(*LEDGER_COLUMNS)
            )
        ).one()
        await self.rows.record(uow, row.account_id, row.state, to_state, reason)
        uow.emit(
            STATE_EVENT,
            events_pb2.AccountStateChanged(
                account_id=str(row.account_id),
                state=to_state,
                version=updated.version,
                frozen_at=timestamp(updated.frozen_at) if updated.frozen_at else None,
                delete_at=timestamp(updated.delete_at) if updated.delete_at else None,
                reason=reason,
            ),
            account_id=str(row.account_id),
        )
        log.info("account_transition", account_id=str(row.account_id), from_state=row.state, to_state=to_state, reason=reason)
        return updated

    async def freeze(self, uow: UnitOfWork, row: Any) -> None:
        """Unused for the whole inactivity period: frozen, and told the exact deletion time."""
        now = self.clock.now()
        delete_at = self.cal.delete_at(now)
        updated = await self.move(
            uow, row, FROZEN, "unused",
            frozen_at=now, delete_at=delete_at, reminders_done=0,
            next_due_at=self.schedule.next_due(row, state=FROZEN, frozen_at=now, delete_at=delete_at, reminders_done=0),
        )
        await self.notices.notify(uow, updated, "frozen", cycle=now.isoformat(), link=True)

    async def reactivate(self, uow: UnitOfWork, row: Any, *, at: dt.datetime, reason: str) -> Any:
        last_access = max(row.last_access_at, at)
        updated = await self.move(uow, row, ACTIVE, reason, frozen_at=None, delete_at=None, **self.schedule.active(last_access))
        await uow.execute(sa.delete(reactivation_links).where(reactivation_links.c.account_id == row.account_id))
        await self.notices.notify(uow, updated, "reactivated", cycle=f"v{updated.version}", at=at)
        return updated

    async def begin_deletion(self, uow: UnitOfWork, row: Any, *, reason: str, at: dt.datetime) -> None:
        await self.move(uow, row, DELETING, reason, deletion_reason=reason, deletion_started_at=at, next_due_at=None)
        await uow.execute(sa.delete(reactivation_links).where(reactivation_links.c.account_id == row.account_id))

    async def deleted(self, uow: UnitOfWork, row: Any, *, at: dt.datetime) -> None:
        updated = await self.move(uow, row, DELETED, "purged by every service", deleted_at=at, next_due_at=None)
        # Notices still waiting (a "frozen" SMS being retried, a reminder) are cancelled and
        # forget where they were going and what they said; only the last one below goes out.
        await cancel_pending_notices(uow, row.account_id)
        await self.notices.notify(uow, updated, DELETED_NOTICE.get(row.deletion_reason, "deleted"), cycle="final")
        # A minor whose guardian this was is asked about again (auth answers no guardian now).
        theirs = [c == v for c, v in ((accounts.c.guardian_email, row.email), (accounts.c.guardian_phone, row.phone)) if v]
        if theirs:
            await uow.execute(sa.update(accounts).where(sa.or_(*theirs)).values(contacts_wanted_at=self.clock.now()))
        # The notice keeps its own copy of where it goes; the ledger forgets the contacts.
        await uow.execute(
            sa.update(accounts)
            .where(accounts.c.account_id == row.account_id)
            .values(email=None, phone=None, guardian_email=None, guardian_phone=None, guardian_until=None, contacts_wanted_at=None)
        )
