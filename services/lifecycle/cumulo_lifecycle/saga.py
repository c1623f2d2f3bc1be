"""The deletion saga: once deletion starts, every participant service is asked to purge the
account (`purge.requested`); each reports `purge.completed`; when all have, the account is
deleted and a tombstone kept. Silent participants are asked again with a growing delay.

A deletion the user (cancellation) or a moderator (termination) asks for starts at once, or
waits while the account is under legal hold and starts at the release."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_lifecycle.adapters.tables import accounts, deferred_deletions, purge_participants, purges, tombstones
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.domain.calendar import ACTIVE, DELETED, DELETING
from cumulo_lifecycle.rows import AccountRows
from cumulo_lifecycle.schedule import Planned
from cumulo_lifecycle.transitions import Transitions
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.logging import get_logger

log = get_logger(__name__)
PURGE_REQUESTED = "purge.requested"


class Saga:
    def __init__(self, db: Database, settings: LifecycleSettings, clock: Clock, rows: AccountRows, transitions: Transitions) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.rows = rows
        self.transitions = transitions

    async def start(self, uow: UnitOfWork, row: Any, *, reason: str) -> None:
        """DELETING, and every participant asked to purge (the row is locked by the caller)."""
        now = self.clock.now()
        await self.transitions.begin_deletion(uow, row, reason=reason, at=now)
        services = list(self.settings.purge_participants)
        await uow.execute(
            pg_insert(purges)
            .values(account_id=row.account_id, reason=reason, started_at=now, attempt=1, next_retry_at=now + self.settings.purge_retry)
            .on_conflict_do_nothing()
        )
        await uow.execute(
            pg_insert(purge_participants)
            .values([{"account_id": row.account_id, "service": s, "requested_at": now, "attempts": 1} for s in services])
            .on_conflict_do_nothing()
        )
        uow.emit(
            PURGE_REQUESTED,
            events_pb2.PurgeRequested(account_id=str(row.account_id), reason=reason, attempt=1, services=services),
            account_id=str(row.account_id),
        )

    async def asked(self, uow: UnitOfWork, account_id: uuid.UUID, at: dt.datetime, reason: str) -> None:
        """The user cancelled, or a moderator terminated the account: deletion starts now,
        or when a legal hold is released."""
        row = await self.rows.lock(uow, account_id)
        if row is None:
            await uow.execute(
                pg_insert(accounts)
                .values(account_id=account_id, state=ACTIVE, last_access_at=at, updated_at=self.clock.now())
                .on_conflict_do_nothing()
            )
            row = await self.rows.lock(uow, account_id)
        assert row is not None
        if row.state in (DELETING, DELETED):
            return
        if row.held:
            # Deletion waits for the hold's release; the account stays as it is meanwhile.
            await uow.execute(
                sa.update(accounts).where(accounts.c.account_id == account_id).values(cancel_requested_at=at, cancel_reason=reason)
            )
            await self.rows.record(uow, account_id, row.state, row.state, f"{reason} waits for a legal hold")
            return
        await self.start(uow, row, reason=reason)

    async def defer(self, uow: UnitOfWork, account_id: uuid.UUID, due_at: dt.datetime, reason: str) -> None:
        """A deletion asked for `due_at` (asked again: the first time stands)."""
        await uow.execute(
            pg_insert(deferred_deletions)
            .values(account_id=account_id, due_at=due_at, reason=reason, created_at=self.clock.now())
            .on_conflict_do_nothing()
        )
        row = await self.rows.lock(uow, account_id)
        state = row.state if row is not None else ACTIVE
        await self.rows.record(uow, account_id, state, state, f"{reason}: deleted from {due_at.isoformat()}; its owner may take their data out until then")

    async def start_deferred(self) -> int:
        """The deferred deletions now due, each asked as any deletion (it waits for a legal
        hold); taken with SKIP LOCKED, so replicas share them."""
        started = 0
        while True:
            async with self.db.unit_of_work() as uow:
                due = (
                    await uow.execute(
                        sa.select(deferred_deletions)
                        .where(deferred_deletions.c.due_at <= self.clock.now())
                        .order_by(deferred_deletions.c.due_at)
                        .limit(100)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                for row in due:
                    await self.asked(uow, row.account_id, row.due_at, row.reason)
                    await uow.execute(sa.delete(deferred_deletions).where(deferred_deletions.c.account_id == row.account_id))
                await uow.commit()
            started += len(due)
            if len(due) < 100:
                return started

    async def completed(self, uow: UnitOfWork, report: events_pb2.PurgeCompleted) -> None:
        """One participant's report; the last one ends the deletion."""
        account_id = uuid.UUID(report.account_id)
        row = await self.rows.lock(uow, account_id)
        if row is None or row.state != DELETING:
            return  # a repeated report after the end, or a purge nobody asked for
        await uow.execute(
            sa.update(purge_participants)
            .where(
                purge_participants.c.account_id == account_id,
                purge_participants.c.service == report.service,
                purge_participants.c.completed_at.is_(None),
            )
            .values(completed_at=self.clock.now(), items_deleted=report.items_deleted)
        )
        participants = (await uow.execute(sa.select(purge_participants).where(purge_participants.c.account_id == account_id))).all()
        if participants and all(p.completed_at is not None for p in participants):
            await self._finish(uow, row, participants)

    async def _finish(self, uow: UnitOfWork, row: Any, participants: list[Any]) -> None:
        now = self.clock.now()
        await uow.execute(sa.update(purges).where(purges.c.account_id == row.account_id).values(completed_at=now, next_retry_at=None))
        await uow.execute(
            pg_insert(tombstones)
            .values(
                account_id=row.account_id,
                created_at=row.created_at,
                last_access_at=row.last_access_at,
                frozen_at=row.frozen_at,
                deletion_started_at=row.deletion_started_at or now,
                deleted_at=now,
                reason=row.deletion_reason,
                participants={p.service: {"items_deleted": p.items_deleted, "completed_at": p.completed_at.isoformat()} for p in participants},
            )
            .on_conflict_do_nothing()
        )
        await self.transitions.deleted(uow, row, at=now)

    async def retry_due(self, planned: list[Planned]) -> int:
        """Asks the silent participants of each due purge again, with a growing delay."""
        now = self.clock.now()
        done = 0
        async with self.db.unit_of_work() as uow:
            due = (
                await uow.execute(
                    sa.select(purges)
                    .where(purges.c.completed_at.is_(None), purges.c.next_retry_at <= now)
                    .order_by(purges.c.next_retry_at)
                    .limit(self.settings.sweep_batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for purge in due:
                if await self._ask_again(uow, purge, now):
                    planned.append(Planned(purge.account_id, "retry_purge", purge.next_retry_at))
                    done += 1
            await uow.commit()
        return done

    async def _ask_again(self, uow: UnitOfWork, purge: Any, now: dt.datetime) -> bool:
        silent = (
            await uow.execute(
                sa.select(purge_participants.c.service).where(
                    purge_participants.c.account_id == purge.account_id, purge_participants.c.completed_at.is_(None)
                )
            )
        ).scalars().all()
        attempt = purge.attempt + 1
        delay = min(self.settings.purge_retry * 2 ** min(purge.attempt, 20), self.settings.purge_retry_max)
        await uow.execute(sa.update(purges).where(purges.c.account_id == purge.account_id).values(attempt=attempt, next_retry_at=now + delay))
        if not silent:
            return False
        await uow.execute(
            sa.update(purge_participants)
            .where(purge_participants.c.account_id == purge.account_id, purge_participants.c.completed_at.is_(None))
            .values(attempts=purge_participants.c.attempts + 1, requested_at=now)
        )
        uow.emit(
            PURGE_REQUESTED,
            events_pb2.PurgeRequested(account_id=str(purge.account_id), reason=purge.reason, attempt=attempt, services=list(silent)),
            account_id=str(purge.account_id),
        )
        log.warning("purge_requested_again", account_id=str(purge.account_id), attempt=attempt, silent=list(silent))
        return True

    async def due_retries(self, conn: Any, now: dt.datetime, limit: int) -> list[Planned]:
        """What `retry_due` would do now (a dry run)."""
        retries = (
            await conn.execute(
                sa.select(purges.c.account_id, purges.c.next_retry_at)
                .where(purges.c.completed_at.is_(None), purges.c.next_retry_at <= now)
                .limit(limit)
            )
        ).all()
        return [Planned(r.account_id, "retry_purge", r.next_retry_at) for r in retries]
