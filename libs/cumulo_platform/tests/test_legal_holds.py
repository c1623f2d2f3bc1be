"""The legal-hold store every service keeps: a change older than the one recorded changes
nothing, and the authority's changes carry strictly growing times whatever its clock says, so
every copy orders a hold and its release the same way."""

from __future__ import annotations

import datetime as dt
import uuid

from cumulo.events.v1 import events_pb2
from cumulo_platform.db import Database, make_envelope
from cumulo_platform.event_types import decode
from cumulo_platform.legal_holds import LegalHolds

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


async def _holds(bare_db: Database, create_tables) -> LegalHolds:
    holds = LegalHolds(bare_db)
    await create_tables(bare_db)
    return holds


async def _change(holds: LegalHolds, account: uuid.UUID, held: bool, at: dt.datetime) -> None:
    """As a copy applies the authority's `account.hold_changed`."""
    envelope = make_envelope(
        "account.hold_changed", events_pb2.LegalHoldChanged(account_id=str(account), held=held),
        account_id=str(account), producer="lifecycle", occurred_at=at,
    )
    async with holds.db.unit_of_work() as uow:
        await holds.apply(decode(envelope), uow)
        await uow.commit()


async def test_a_late_older_change_is_ignored_and_a_newer_one_wins(bare_db, create_tables):
    holds = await _holds(bare_db, create_tables)
    account = uuid.uuid4()
    await _change(holds, account, True, T0)
    await _change(holds, account, False, T0 + dt.timedelta(seconds=1))
    await _change(holds, account, True, T0)  # the hold, redelivered late
    assert not await holds.held(account)
    await _change(holds, account, True, T0 + dt.timedelta(seconds=2))
    assert await holds.held(account)


async def test_the_authority_orders_its_changes_even_when_its_clock_goes_back(bare_db, create_tables):
    authority = await _holds(bare_db, create_tables)
    account = uuid.uuid4()
    times = []
    # A hold on one replica, then a release on another whose clock is a second behind.
    for held, clock_says in ((True, T0), (False, T0 - dt.timedelta(seconds=1)), (True, T0 - dt.timedelta(seconds=1))):
        async with authority.db.unit_of_work() as uow:
            at = await authority.change_time(uow, account, clock_says)
            await authority.record(uow, account, held, at)
            await uow.commit()
        times.append(at)
    assert times[0] < times[1] < times[2]
    assert await authority.held(account)
    # A copy that hears the three in any order ends where the authority is.
    copy_db = Database(bare_db.engine, schema="t1", producer="blob")
    copy = LegalHolds(copy_db)
    other = uuid.uuid4()
    for held, at in ((False, times[1]), (True, times[2]), (True, times[0])):
        await _change(copy, other, held, at)
    assert await copy.held(other)
