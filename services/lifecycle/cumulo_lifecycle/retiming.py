"""Frozen accounts re-timed when the settings that shape their stored due time change.

What a frozen account waits for is stored in `next_due_at` so that the sweeper finds due
accounts by an index, whatever the size of the ledger. Two settings could go stale in it:

- the safety margin is never stored: the sweeper adds it to a deletion as it takes the rows
  (`Schedule.taken`), so a changed margin applies at once, to every account, at no cost;
- the deletion reminders are stored (the next one is `next_due_at`). At start-up the lifecycle
  compares them with those the frozen accounts were last timed with (`schedule_settings`);
  when they differ it re-times the frozen accounts, in batches ordered by account id, each
  batch locked and rewritten in a unit of work of its own, then records the new settings. A
  crash midway leaves the old record: the next start begins again (re-timing is idempotent).
  A failure (the database away, the migration Job not done yet) is tried again at the next
  sweep, and does not hold the sweeps up meanwhile (jobs.py).

Frozen accounts are the few unused for the whole inactivity period and not yet deleted: even
with 100M accounts this is a short job, and only after a change. `delete_at` itself never
moves: the freeze notice promised it. Active accounts are not re-timed here: every use
recomputes an account's freeze time, and a stored reminder time that no longer matches the
settings is put right when the sweeper reaches it (a no-op look, or a reminder sent late).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_lifecycle.adapters.tables import accounts, schedule_settings
from cumulo_lifecycle.domain.calendar import FROZEN, Calendar
from cumulo_lifecycle.rows import AccountRows
from cumulo_lifecycle.schedule import Schedule
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.logging import get_logger

log = get_logger(__name__)
SCOPE = "frozen"
BATCH = 1000

_SET_NEXT_DUE = sa.text(
    """
    UPDATE lifecycle.accounts AS a SET next_due_at = r.next_due
    FROM unnest(CAST(:ids AS uuid[]), CAST(:next_due AS timestamptz[])) AS r(id, next_due)
    WHERE a.account_id = r.id AND a.next_due_at IS DISTINCT FROM r.next_due
    """
)


def fingerprint(calendar: Calendar) -> str:
    """What a frozen account's stored due time depends on (the margin is not stored)."""
    return "deletion_reminders=" + ",".join(str(offset.total_seconds()) for offset in calendar.deletion_reminders)


class Retiming:
    def __init__(self, db: Database, clock: Clock, *, schedule: Schedule, rows: AccountRows) -> None:
        self.db = db
        self.clock = clock
        self.schedule = schedule
        self.rows = rows

    async def applied(self) -> str | None:
        async with self.db.read() as conn:
            return (
                await conn.execute(sa.select(schedule_settings.c.fingerprint).where(schedule_settings.c.scope == SCOPE))
            ).scalar_one_or_none()

    async def apply(self) -> int:
        """Re-times the frozen accounts if they were timed with other settings; returns how many
        changed."""
        wanted = fingerprint(self.schedule.cal)
        if await self.applied() == wanted:
            return 0
        changed, after = 0, None
        while True:
            count, after = await self._batch(after)
            changed += count
            if after is None:
                break
        async with self.db.unit_of_work() as uow:
            statement = pg_insert(schedule_settings).values(scope=SCOPE, fingerprint=wanted, applied_at=self.clock.now())
            await uow.execute(
                statement.on_conflict_do_update(
                    index_elements=[schedule_settings.c.scope],
                    set_={"fingerprint": statement.excluded.fingerprint, "applied_at": statement.excluded.applied_at},
                )
            )
            await uow.commit()
        log.info("lifecycle_retimed", scope=SCOPE, changed=changed, settings=wanted)
        return changed

    async def _batch(self, after: uuid.UUID | None) -> tuple[int, uuid.UUID | None]:
        """One batch of frozen accounts after `after`, locked (a sweep or a transition holding
        one is waited for); answers how many changed and where the next batch starts (None: done)."""
        query = self.rows.select().where(accounts.c.state == FROZEN).order_by(accounts.c.account_id).limit(BATCH)
        if after is not None:
            query = query.where(accounts.c.account_id > after)
        async with self.db.unit_of_work() as uow:
            found = (await uow.execute(query.with_for_update(of=accounts))).all()
            if not found:
                return 0, None
            due = [(row.account_id, self.schedule.next_due(row)) for row in found]
            result = await uow.execute(_SET_NEXT_DUE, {"ids": [i for i, _ in due], "next_due": [d for _, d in due]})
            await uow.commit()
        changed = int(getattr(result, "rowcount", 0) or 0)
        return changed, found[-1].account_id if len(found) == BATCH else None
