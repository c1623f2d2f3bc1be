"""The sweeper: carries out what the calendar says is due (reminders, freezes, deletions) and
asks silent purge participants again."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cumulo_lifecycle.adapters.tables import accounts
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.domain.calendar import Step
from cumulo_lifecycle.notices import Notices
from cumulo_lifecycle.rows import AccountRows
from cumulo_lifecycle.saga import Saga
from cumulo_lifecycle.schedule import Planned, Schedule
from cumulo_lifecycle.transitions import Transitions
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.logging import get_logger

log = get_logger(__name__)


class Sweeper:
    def __init__(
        self, db: Database, settings: LifecycleSettings, clock: Clock, *, schedule: Schedule, rows: AccountRows,
        transitions: Transitions, saga: Saga, notices: Notices,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.schedule = schedule
        self.rows = rows
        self.transitions = transitions
        self.saga = saga
        self.notices = notices

    async def sweep(self, *, dry_run: bool = False, limit: int | None = None) -> tuple[list[Planned], int]:
        """Takes due accounts in batches (`FOR UPDATE SKIP LOCKED`: replicas share the work,
        nothing happens twice) and carries out what is due. Returns the plan and how many
        actions were done. A dry run locks nothing and changes nothing."""
        if dry_run:
            return await self._plan(limit or 1000), 0
        planned: list[Planned] = []
        done = 0
        batch = min(limit or self.settings.sweep_batch, self.settings.sweep_batch)
        while True:
            now = self.clock.now()
            async with self.db.unit_of_work() as uow:
                rows = (
                    await uow.execute(
                        self.rows.select()
                        .where(self.schedule.taken(now))
                        .order_by(accounts.c.next_due_at)
                        .limit(batch)
                        .with_for_update(of=accounts, skip_locked=True)
                    )
                ).all()
                for row in rows:
                    step = self.schedule.step(row, now)
                    if step is None:
                        # Nothing due after all (e.g. a newer access): put the schedule right.
                        await uow.execute(
                            sa.update(accounts).where(accounts.c.account_id == row.account_id).values(next_due_at=self.schedule.next_due(row))
                        )
                        continue
                    planned.append(Planned(row.account_id, step.action, step.due_at))
                    await self._carry_out(uow, row, step)
                    done += 1
                await uow.commit()
            if len(rows) < batch or (limit is not None and done >= limit):
                break
        done += await self.saga.retry_due(planned)
        try:
            done += await self.saga.start_deferred()
        except sa.exc.ProgrammingError as exc:
            # Its table comes with migration 0010: a new release's replicas may start before
            # the migration Job has run. Freezes and deletions went on; deferred ones wait.
            log.warning("deferred_deletions_unavailable", error=type(exc).__name__, next_try="next sweep")
        return planned, done

    async def _plan(self, limit: int) -> list[Planned]:
        now = self.clock.now()
        planned: list[Planned] = []
        async with self.db.read() as conn:
            rows = (
                await conn.execute(self.rows.select().where(self.schedule.taken(now)).order_by(accounts.c.next_due_at).limit(limit))
            ).all()
            for row in rows:
                step = self.schedule.step(row, now)
                if step is not None:
                    planned.append(Planned(row.account_id, step.action, step.due_at))
            planned += await self.saga.due_retries(conn, now, limit)
        return planned

    async def _carry_out(self, uow: UnitOfWork, row: Any, step: Step) -> None:
        if step.action == "freeze":
            await self.transitions.freeze(uow, row)
        elif step.action == "delete":
            await self.saga.start(uow, row, reason="inactivity")
        else:
            reminders_done = step.index + 1
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == row.account_id)
                .values(reminders_done=reminders_done, next_due_at=self.schedule.next_due(row, reminders_done=reminders_done))
            )
            if step.action == "remind_freeze":
                await self.notices.notify(uow, row, "freeze_reminder", cycle=f"{row.freeze_at.isoformat()}#{step.index}")
            else:
                await self.notices.notify(uow, row, "deletion_reminder", cycle=f"{row.delete_at.isoformat()}#{step.index}", link=True)
