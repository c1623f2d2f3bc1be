"""LastAccessRecorder: coalesced access.recorded events written through the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing.waiting import eventually
from cumulo_platform.clock import FrozenClock
from cumulo_platform.db import Database
from cumulo_platform.event_types import event_subject
from cumulo_platform.last_access import EVENT_TYPE, LastAccessRecorder

INTERVAL = dt.timedelta(minutes=10)
START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def producer() -> str:
    return "files"  # the recorder writes as the files service


@pytest.fixture
def clock() -> FrozenClock:  # shadows the session's auth clock on purpose
    return FrozenClock(START)


def recorder(db: Database, clock: FrozenClock) -> LastAccessRecorder:
    return LastAccessRecorder(db, service="files", interval=INTERVAL, clock=clock)


async def outbox(db: Database) -> list[tuple[sa.Row, events_pb2.Envelope]]:
    async with db.sessions() as session:
        rows = (await session.execute(sa.select(db.outbox).order_by(db.outbox.c.created_at))).all()
    return [(row, events_pb2.Envelope.FromString(row.envelope)) for row in rows]


def accessed(envelope: events_pb2.Envelope) -> events_pb2.AccessRecorded:
    payload = events_pb2.AccessRecorded()
    assert envelope.payload.Unpack(payload)
    return payload


async def test_flush_with_nothing_marked_writes_nothing(db, clock):
    assert await recorder(db, clock).flush() == 0
    assert await outbox(db) == []


async def test_marks_coalesce_to_one_event_per_account(db, clock):
    rec = recorder(db, clock)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    rec.mark(alice)
    clock.advance(dt.timedelta(minutes=1))
    rec.mark(alice)
    rec.mark(bob)
    rec.mark(alice)
    assert await rec.flush() == 2

    written = await outbox(db)
    assert sorted(env.account_id for _, env in written) == sorted([alice, bob])
    for row, env in written:
        assert row.subject == event_subject("files", EVENT_TYPE)
        assert env.type == EVENT_TYPE
        assert env.producer == "files"
        payload = accessed(env)
        assert payload.account_id == env.account_id
        assert payload.service == "files"
    by_account = {env.account_id: accessed(env) for _, env in written}
    # The first mark of each account is what is recorded.
    assert by_account[alice].accessed_at.ToDatetime(dt.UTC) == START
    assert by_account[bob].accessed_at.ToDatetime(dt.UTC) == START + dt.timedelta(minutes=1)
    # One flush, one transaction: PostgreSQL's now() is the same for every row.
    assert len({row.created_at for row, _ in written}) == 1


async def test_at_most_one_event_per_account_per_interval(db, clock):
    rec = recorder(db, clock)
    alice = str(uuid.uuid4())
    rec.mark(alice)
    assert await rec.flush() == 1

    clock.advance(INTERVAL - dt.timedelta(seconds=1))
    rec.mark(alice)
    assert await rec.flush() == 0
    assert len(await outbox(db)) == 1

    clock.advance(dt.timedelta(seconds=1))  # a full interval after the recorded access
    rec.mark(alice)
    rec.mark(alice)
    assert await rec.flush() == 1
    written = await outbox(db)
    assert len(written) == 2
    stamps = sorted(accessed(env).accessed_at.ToDatetime(dt.UTC) for _, env in written)
    assert stamps == [START, START + INTERVAL]


async def test_the_interval_is_per_account(db, clock):
    rec = recorder(db, clock)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    rec.mark(alice)
    await rec.flush()
    clock.advance(dt.timedelta(minutes=5))
    rec.mark(alice)
    rec.mark(bob)
    assert await rec.flush() == 1
    assert [env.account_id for _, env in await outbox(db)][-1] == bob


async def test_a_failed_flush_keeps_the_marks_for_the_next_one(bare_db, clock, create_tables):
    rec = recorder(bare_db, clock)
    alice = str(uuid.uuid4())
    rec.mark(alice)
    with pytest.raises(sa.exc.ProgrammingError):
        await rec.flush()  # the outbox table does not exist yet
    await create_tables(bare_db)
    assert await rec.flush() == 1
    ((_, env),) = await outbox(bare_db)
    assert env.account_id == alice
    assert accessed(env).accessed_at.ToDatetime(dt.UTC) == START


async def test_close_flushes_what_is_pending(db, clock):
    rec = recorder(db, clock)
    rec.mark("acc-close")
    await rec.close()
    assert [env.account_id for _, env in await outbox(db)] == ["acc-close"]


async def test_the_recorder_is_not_idle_while_a_flush_is_still_writing(db, clock):
    """`idle` promises every mark made so far is in the outbox (tests age accounts once it
    holds): a flush that has taken the marks but not committed is not idle."""
    rec = recorder(db, clock)
    rec.mark(str(uuid.uuid4()))
    async with db.engine.connect() as blocker:
        await blocker.execute(sa.text(f"LOCK TABLE {db.outbox.fullname} IN ACCESS EXCLUSIVE MODE"))
        flushing = asyncio.create_task(rec.flush())

        async def marks_taken() -> bool:  # the flush has them; its insert waits for the lock
            return not rec._pending

        await eventually(marks_taken, what="the flush to take the marks")
        assert not rec.idle
        assert not flushing.done()
        await blocker.rollback()
    assert await flushing == 1
    assert rec.idle
    assert len(await outbox(db)) == 1
