"""Which accounts the sweeper takes, as its query says it (`Schedule.taken`, the SQL of every
sweep and dry run), on PostgreSQL: at any instant exactly those with something due
(`Calendar.step`), a deletion only once the margin in force has passed, whatever margin the
account was frozen under (the margin is never stored).

Each test runs on a ledger of its own (ledger.py): the query looks at every account."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo_lifecycle.adapters.tables import accounts
from cumulo_lifecycle.domain.calendar import ACTIVE, DELETED, DELETING, FROZEN, Calendar
from cumulo_lifecycle.schedule import Schedule

from .ledger import NOW, Ledger

HOUR, TICK = dt.timedelta(hours=1), dt.timedelta(microseconds=1)
MARGINS = (dt.timedelta(0), dt.timedelta(seconds=1), HOUR, 2 * HOUR)
_SCHEDULED = ("state", "last_access_at", "freeze_at", "frozen_at", "delete_at", "reminders_done", "held")


def every_kind(cal: Calendar) -> list[dict[str, Any]]:
    """Accounts of every state, timed around NOW, with the due time the ledger stores for them:
    active ones before, between and after their freeze reminders; frozen ones before and after
    their deletion reminder and deletion, held or not; deleting and deleted ones."""
    schedule = Schedule(cal)
    rows: list[dict[str, Any]] = []
    for days in (400, 370, 360, 340, 330, 300):
        for done in range(len(cal.freeze_reminders) + 1):
            last_access = NOW - dt.timedelta(days=days)
            rows.append({"state": ACTIVE, **schedule.active(last_access), "reminders_done": done})
    for days in (45, 31, 30, 25, 23, 10):
        frozen_at = NOW - dt.timedelta(days=days)
        for done in range(len(cal.deletion_reminders) + 1):
            for held in (False, True):
                rows.append({
                    "state": FROZEN, "last_access_at": frozen_at - dt.timedelta(days=400), "freeze_at": frozen_at,
                    "frozen_at": frozen_at, "delete_at": cal.delete_at(frozen_at), "reminders_done": done, "held": held,
                })
    deleted_at = NOW - dt.timedelta(days=1)
    for state in (DELETING, DELETED):
        rows.append({
            "state": state, "last_access_at": deleted_at - dt.timedelta(days=430), "frozen_at": deleted_at - dt.timedelta(days=30),
            "delete_at": deleted_at, "deletion_started_at": deleted_at,
        })
    blank = dict.fromkeys(("freeze_at", "frozen_at", "delete_at", "deletion_started_at"), None) | {"reminders_done": 0, "held": False}
    rows = [blank | row for row in rows]
    for row in rows:
        row["next_due_at"] = cal.next_due(**{k: row[k] for k in _SCHEDULED})
    return rows


async def add(ledger: Ledger, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    ids = await ledger.add([{k: v for k, v in row.items() if k != "held"} for row in rows])
    for account_id, row in zip(ids, rows, strict=True):
        if row["held"]:
            await ledger.hold(account_id)
    return ids


def instants(rows: list[Any], margin: dt.timedelta) -> list[dt.datetime]:
    """Just before, at and just after every time something may fall due."""
    times = {row.next_due_at for row in rows if row.next_due_at is not None}
    times |= {row.delete_at + margin for row in rows if row.delete_at is not None}
    return sorted({t + shift for t in times for shift in (-TICK, dt.timedelta(0), TICK)})


async def test_the_sweepers_query_takes_exactly_the_accounts_with_something_due(ledger):
    stored_under = ledger.settings.calendar
    assert stored_under.safety_margin == HOUR
    await add(ledger, every_kind(stored_under))
    rows = await ledger.rows()
    seen: set[str] = set()  # what the instants checked had due, and whether a deletion waited
    for margin in MARGINS:
        schedule = ledger.cases(safety_margin=margin).sweeper.schedule
        async with ledger.db.read() as conn:
            for now in instants(rows, margin):
                taken = set((await conn.execute(sa.select(accounts.c.account_id).where(schedule.taken(now)))).scalars())
                steps = {row.account_id: schedule.step(row, now) for row in rows}
                assert taken == {i for i, step in steps.items() if step is not None}, (margin, now)
                seen |= {step.action for step in steps.values() if step is not None}
                if any(row.next_due_at is not None and row.next_due_at <= now and row.account_id not in taken for row in rows):
                    seen.add("deletion within its margin")
    assert seen == {"remind_freeze", "freeze", "remind_deletion", "delete", "deletion within its margin"}


async def test_a_sweep_carries_out_what_is_due_under_the_margin_in_force(ledger):
    """A second after a deletion time, a one-second margin in force (the accounts were frozen
    under an hour's): the sweep takes and carries out exactly what is due, that deletion too."""
    await add(ledger, every_kind(ledger.settings.calendar))
    rows = await ledger.rows()
    waiting = next(r for r in rows if r.state == FROZEN and not r.held and r.next_due_at == r.delete_at < NOW)
    now = waiting.delete_at + dt.timedelta(seconds=1)
    assert ledger.cases().sweeper.schedule.step(waiting, now) is None  # the hour's margin would wait
    short = ledger.cases(safety_margin=dt.timedelta(seconds=1))
    expected = {(row.account_id, step.action) for row in rows if (step := short.sweeper.schedule.step(row, now)) is not None}
    assert (waiting.account_id, "delete") in expected

    ledger.clock.set(now)
    planned, done = await short.sweeper.sweep()
    assert {(p.account_id, p.action) for p in planned} == expected and done == len(expected)
    assert await ledger.states([waiting.account_id]) == {waiting.account_id: DELETING}
