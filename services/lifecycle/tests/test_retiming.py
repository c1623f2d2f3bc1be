"""A restart with other settings re-times accounts already frozen, on real PostgreSQL: the
safety margin is applied by the sweeper (never stored), the deletion reminders are re-timed at
start-up when they changed, a failed re-timing holds no sweep up, and the migration takes a
baked-in margin out of stored due times.

Each test runs on a ledger of its own (ledger.py): sweeps and re-timings act on every due or
frozen account, so on the session's ledger they would reach other tests' accounts."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import sqlalchemy as sa

from cumulo_lifecycle import bootstrap
from cumulo_lifecycle.adapters.tables import accounts, schedule_settings
from cumulo_lifecycle.jobs import sweep_rounds
from cumulo_lifecycle.retiming import BATCH, fingerprint
from cumulo_platform import migrations
from cumulo_platform.db import create_engine

from .ledger import NOW, migrate, open_ledger

WEEK, DAY, HOUR = dt.timedelta(days=7), dt.timedelta(days=1), dt.timedelta(hours=1)


# --- the margin -------------------------------------------------------------------------------


async def test_a_shorter_margin_applies_to_an_account_frozen_under_a_longer_one(ledger):
    """Frozen under the one-hour margin, its deletion due five minutes ago, reminders sent: the
    lifecycle as it runs waits for the margin; restarted with a one-minute margin, it deletes at
    once."""
    cal = ledger.settings.calendar
    assert cal.safety_margin == HOUR
    delete_at = NOW - dt.timedelta(minutes=5)
    frozen_at = delete_at - dt.timedelta(days=30)
    (account,) = await ledger.add([{
        "state": "frozen", "last_access_at": frozen_at - dt.timedelta(days=400), "freeze_at": frozen_at, "frozen_at": frozen_at,
        "delete_at": delete_at, "next_due_at": delete_at, "reminders_done": len(cal.deletion_reminders),
    }])

    # Planned only: a dry run changes nothing.
    assert (await ledger.cases().sweeper.sweep(dry_run=True))[0] == []
    assert (await ledger.cases(safety_margin=2 * HOUR).sweeper.sweep(dry_run=True))[0] == []
    short = ledger.cases(safety_margin=dt.timedelta(minutes=1))
    (deletion,) = (await short.sweeper.sweep(dry_run=True))[0]
    assert (deletion.account_id, deletion.action) == (account, "delete")
    assert await ledger.states([account]) == {account: "frozen"}
    planned, _ = await short.sweeper.sweep()
    assert [(p.account_id, p.action) for p in planned] == [(account, "delete")]
    assert await ledger.states([account]) == {account: "deleting"}


async def test_a_frozen_accounts_stored_due_time_is_its_deletion_time_without_margin(ledger):
    cal = ledger.settings.calendar
    last_access = NOW - dt.timedelta(days=400)
    (account,) = await ledger.add([{"state": "active", **ledger.cases().sweeper.schedule.active(last_access)}])
    ledger.clock.set(cal.freeze_at(last_access))
    planned, _ = await ledger.cases().sweeper.sweep()
    assert [(p.account_id, p.action) for p in planned] == [(account, "freeze")]
    (stored,) = await ledger.rows()
    assert stored.state == "frozen" and stored.delete_at == cal.delete_at(stored.frozen_at)
    assert stored.next_due_at == min(stored.delete_at - offset for offset in cal.deletion_reminders)
    after_reminders = ledger.cases().sweeper.schedule.next_due(stored, reminders_done=len(cal.deletion_reminders))
    assert after_reminders == stored.delete_at


# --- re-timing --------------------------------------------------------------------------------


async def test_changed_deletion_reminders_re_time_frozen_accounts_at_start_up(ledger):
    frozen_at = NOW - dt.timedelta(days=10)
    delete_at = ledger.settings.calendar.delete_at(frozen_at)
    assert ledger.settings.calendar.deletion_reminders == (WEEK,)
    # More than one batch, timed with the default reminder a week before the deletion.
    waiting = await ledger.add_frozen(BATCH + 7, frozen_at=frozen_at, next_due=delete_at - WEEK)
    reminded = await ledger.add_frozen(3, frozen_at=frozen_at, next_due=delete_at, reminders_done=1)
    first = ledger.cases()
    assert await first.retiming.apply() == 0  # the settings they were timed with: nothing moves
    assert await ledger.due_times(waiting) == {delete_at - WEEK}

    restarted = ledger.cases(deletion_reminders=(DAY,))
    assert await restarted.retiming.apply() == len(waiting)
    assert await ledger.due_times(waiting) == {delete_at - DAY}
    assert await ledger.due_times(reminded) == {delete_at}  # their reminder was sent: the deletion is next
    assert await restarted.retiming.applied() == fingerprint(restarted.sweeper.schedule.cal)
    assert await restarted.retiming.apply() == 0  # once per change

    # The sweeper of the restarted lifecycle finds them at the new time, not the old one.
    ledger.clock.set(delete_at - WEEK)
    planned, _ = await restarted.sweeper.sweep(dry_run=True)
    assert {p.account_id for p in planned} & set(waiting) == set()
    ledger.clock.set(delete_at - DAY)
    planned, _ = await restarted.sweeper.sweep(dry_run=True, limit=5000)
    assert {p.account_id for p in planned if p.action == "remind_deletion"} >= set(waiting)


async def test_re_timing_leaves_held_accounts_unscheduled(ledger):
    frozen_at = NOW - dt.timedelta(days=10)
    delete_at = ledger.settings.calendar.delete_at(frozen_at)
    (held,) = await ledger.add_frozen(1, frozen_at=frozen_at, next_due=delete_at - WEEK)
    await ledger.hold(held)
    await ledger.cases(deletion_reminders=(DAY,)).retiming.apply()
    assert await ledger.due_times([held]) == {None}


async def test_a_failed_re_timing_holds_no_sweep_up_and_is_tried_again(infra, capsys):
    """Replicas of a new release may start before the migration Job has run: the table of the
    re-timing record is not there yet. Freezes and deletions go on meanwhile; once the table is
    there, the next round re-times."""
    async with open_ledger(infra.service_environ(), revision="0005") as ledger:
        cal = ledger.settings.calendar
        frozen_at = NOW - dt.timedelta(days=40)
        (due,) = await ledger.add_frozen(1, frozen_at=frozen_at, next_due=cal.delete_at(frozen_at), reminders_done=1)
        frozen_at = NOW - dt.timedelta(days=10)
        waiting = await ledger.add_frozen(2, frozen_at=frozen_at, next_due=cal.delete_at(frozen_at) - WEEK)
        cases = ledger.cases(deletion_reminders=(DAY,))
        sweep = sweep_rounds(cases.sweeper, cases.retiming)

        await sweep()
        assert await ledger.states([due]) == {due: "deleting"}
        assert await ledger.due_times(waiting) == {cal.delete_at(frozen_at) - WEEK}  # not re-timed yet
        logged = "".join(capsys.readouterr())
        assert "lifecycle_retiming_failed" in logged and "UndefinedTableError" in logged
        assert ledger.settings.platform.database_url not in logged

        await migrate(ledger.settings)  # the migration Job is done
        await sweep()
        assert await ledger.due_times(waiting) == {cal.delete_at(frozen_at) - DAY}
        assert await cases.retiming.applied() == fingerprint(cases.sweeper.schedule.cal)


async def test_the_migration_takes_a_baked_in_margin_out_of_frozen_accounts(infra):
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, "lifecycle", bootstrap.MIGRATIONS, "0005")
    delete_at = NOW + dt.timedelta(days=3)
    frozen, reminding, active = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for account_id, state, next_due, deletion in (
                (frozen, "frozen", delete_at + dt.timedelta(hours=1), delete_at),
                (reminding, "frozen", delete_at - WEEK, delete_at),
                (active, "active", NOW + dt.timedelta(days=30), None),
            ):
                await conn.execute(
                    sa.text(
                        "INSERT INTO lifecycle.accounts (account_id, state, last_access_at, delete_at, next_due_at) "
                        "VALUES (:id, :state, :last, :delete_at, :next_due)"
                    ),
                    {"id": account_id, "state": state, "last": NOW, "delete_at": deletion, "next_due": next_due},
                )
        await asyncio.to_thread(migrations.upgrade, url, "lifecycle", bootstrap.MIGRATIONS, "head")
        async with engine.connect() as conn:
            due = dict((await conn.execute(sa.select(accounts.c.account_id, accounts.c.next_due_at))).all())
            assert (await conn.execute(sa.select(sa.func.count()).select_from(schedule_settings))).scalar_one() == 0
    finally:
        await engine.dispose()
    assert due == {frozen: delete_at, reminding: delete_at - WEEK, active: NOW + dt.timedelta(days=30)}
