"""UnitOfWork + outbox + OutboxRelay against the session's real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from nats.js import api as js_api

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import Delivered, eventually, identity, read_stream, unique_event_type
from cumulo_platform.db import Database
from cumulo_platform.event_types import SUBJECT_PREFIX, event_filter, event_subject
from cumulo_platform.events import DUPLICATE_WINDOW, STREAM_NAME, Nats
from cumulo_platform.identity import OPERATOR
from cumulo_platform.outbox import OutboxRelay

# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
def text_tables() -> dict[str, str]:
    return {"items": "name"}  # the state a unit of work changes next to its events


def stream_messages(url: str, subject: str) -> list[Delivered]:
    """Everything the stream holds on `subject` now; a message that is no envelope fails."""
    return read_stream(url, subject, at_least=0, skip_undecodable=False)


async def outbox_rows(db: Database) -> list[sa.Row]:
    async with db.sessions() as session:
        return list((await session.execute(sa.select(db.outbox).order_by(db.outbox.c.created_at))).all())


async def item_names(db: Database) -> list[str]:
    items = db.metadata.tables[f"{db.schema}.items"]
    async with db.sessions() as session:
        return list((await session.execute(sa.select(items.c.name).order_by(items.c.name))).scalars())


def payload(text: str) -> events_pb2.AccountCancelled:
    return events_pb2.AccountCancelled(account_id=text, cancelled_at=timestamp_pb2.Timestamp(seconds=1_700_000_000))


# --- UnitOfWork ----------------------------------------------------------------------


async def test_unit_of_work_without_commit_rolls_back_state_and_events(db):
    items = db.metadata.tables[f"{db.schema}.items"]
    async with db.unit_of_work() as uow:
        await uow.execute(sa.insert(items).values(name="never"))
        uow.emit(unique_event_type(), payload("a"), account_id="a")
        # Visible inside the transaction...
        assert (await uow.execute(sa.select(sa.func.count()).select_from(items))).scalar_one() == 1
    # ...gone after it, and no event waits in the outbox.
    assert await item_names(db) == []
    assert await outbox_rows(db) == []
    assert not db.outbox_written.is_set()


async def test_unit_of_work_rolls_back_when_the_block_raises(db):
    items = db.metadata.tables[f"{db.schema}.items"]
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            await uow.execute(sa.insert(items).values(name="never"))
            uow.emit(unique_event_type(), payload("a"))
            raise RuntimeError("domain rule broken")
    assert await item_names(db) == []
    assert await outbox_rows(db) == []


async def test_commit_writes_state_and_outbox_rows_together(db):
    items = db.metadata.tables[f"{db.schema}.items"]
    event_type = unique_event_type()
    async with db.unit_of_work() as uow:
        await uow.execute(sa.insert(items).values(name="kept"))
        first = uow.emit(event_type, payload("acc-1"), account_id="acc-1")
        second = uow.emit(event_type, payload("acc-2"), account_id="acc-2")
        await uow.commit()
    assert db.outbox_written.is_set()
    assert await item_names(db) == ["kept"]
    rows = await outbox_rows(db)
    assert {row.event_id for row in rows} == {uuid.UUID(first.event_id), uuid.UUID(second.event_id)}
    assert first.event_id != second.event_id
    by_id = {str(row.event_id): row for row in rows}
    for envelope in (first, second):
        row = by_id[envelope.event_id]
        assert row.subject == event_subject("test", event_type)
        assert row.attempts == 0
        stored = events_pb2.Envelope.FromString(row.envelope)
        assert stored == envelope
        assert stored.type == event_type
        assert stored.producer == "test"
        unpacked = events_pb2.AccountCancelled()
        assert stored.payload.Unpack(unpacked)
        assert unpacked.account_id == stored.account_id
    # One transaction: PostgreSQL's now() is the same for both rows.
    assert rows[0].created_at == rows[1].created_at


async def test_commit_without_events_writes_no_outbox_row(db):
    items = db.metadata.tables[f"{db.schema}.items"]
    async with db.unit_of_work() as uow:
        await uow.execute(sa.insert(items).values(name="quiet"))
        await uow.commit()
    assert await item_names(db) == ["quiet"]
    assert await outbox_rows(db) == []
    assert not db.outbox_written.is_set()


# --- OutboxRelay ---------------------------------------------------------------------


async def test_relay_publishes_with_event_id_as_msg_id_and_deletes_rows(db, bus, infra):
    event_type = unique_event_type()
    async with db.unit_of_work() as uow:
        envelopes = [uow.emit(event_type, payload(f"acc-{i}"), account_id=f"acc-{i}") for i in range(3)]
        await uow.commit()

    assert await OutboxRelay(db, bus).publish_batch() == 3
    assert await outbox_rows(db) == []

    messages = await stream_messages(infra.nats.url, event_filter(event_type))
    assert len(messages) == 3
    by_id = {envelope.event_id: envelope for envelope in envelopes}
    for msg in messages:
        assert msg.subject == event_subject("test", event_type)
        envelope = msg.envelope
        assert msg.headers["Nats-Msg-Id"] == envelope.event_id
        assert by_id.pop(envelope.event_id) == envelope
    assert by_id == {}


async def test_relay_with_empty_outbox_publishes_nothing(db, bus):
    assert await OutboxRelay(db, bus).publish_batch() == 0


async def test_relay_publishes_in_batches(db, bus, infra):
    event_type = unique_event_type()
    async with db.unit_of_work() as uow:
        for i in range(5):
            uow.emit(event_type, payload(str(i)))
        await uow.commit()
    relay = OutboxRelay(db, bus, batch_size=2)
    assert await relay.publish_batch() == 2
    assert len(await outbox_rows(db)) == 3
    assert await relay.publish_batch() == 2
    assert await relay.publish_batch() == 1
    assert await relay.publish_batch() == 0
    assert len(await stream_messages(infra.nats.url, event_filter(event_type))) == 5


async def test_stream_is_provisioned_with_a_dedup_window(bus):
    js = await bus.jetstream()
    info = await js.stream_info(STREAM_NAME)
    assert SUBJECT_PREFIX + ">" in info.config.subjects
    assert info.config.duplicate_window == DUPLICATE_WINDOW.total_seconds()
    assert info.config.storage == js_api.StorageType.FILE


async def test_publishing_the_same_event_twice_stores_one_message(db, bus, infra):
    event_type = unique_event_type()
    async with db.unit_of_work() as uow:
        envelope = uow.emit(event_type, payload("acc"), account_id="acc")
        await uow.commit()
    (row,) = await outbox_rows(db)
    relay = OutboxRelay(db, bus)
    assert await relay.publish_batch() == 1

    # As if the relay crashed after JetStream acknowledged but before the delete committed:
    # the same row is in the outbox again and is published again.
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(db.outbox).values(event_id=row.event_id, subject=row.subject, envelope=row.envelope)
        )
    assert await relay.publish_batch() == 1
    assert await outbox_rows(db) == []

    messages = await stream_messages(infra.nats.url, event_filter(event_type))
    assert len(messages) == 1
    assert messages[0].envelope.event_id == envelope.event_id


async def test_relay_publishes_what_was_written_while_it_ran(db, bus, infra):
    event_type = unique_event_type()
    relay = OutboxRelay(db, bus, poll_interval=0.2)
    task = asyncio.create_task(relay.run())
    try:
        async with db.unit_of_work() as uow:
            uow.emit(event_type, payload("a"))
            await uow.commit()

        async def published() -> bool:
            return not await outbox_rows(db) and len(await stream_messages(infra.nats.url, event_filter(event_type))) == 1

        await eventually(published, what="the running relay to publish the event")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class CommitDuringPublish(OutboxRelay):
    """A relay whose first batch overlaps with a service committing a new event: the commit
    (and its outbox_written wake-up) lands while publish_batch is still running."""

    def __init__(self, *args, event_type: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.event_type = event_type
        self.committed = False

    async def publish_batch(self) -> int:
        published = await super().publish_batch()
        if not self.committed:
            self.committed = True
            async with self.db.unit_of_work() as uow:
                uow.emit(self.event_type, payload("late"))
                await uow.commit()
        return published


async def test_relay_does_not_lose_a_wake_up_that_arrives_during_a_batch(db, bus, infra):
    # Events committed while a batch is in flight must not wait for the next poll: the
    # wake-up they send must not be cleared by the relay before it looks at the outbox again.
    event_type = unique_event_type()
    relay = CommitDuringPublish(db, bus, poll_interval=3600, event_type=event_type)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: asyncio.sleep(0, relay.committed), what="the overlapping commit")

        async def published() -> bool:
            return not await outbox_rows(db)

        await eventually(published, timeout=10, what="the event committed during a batch to be published")
        assert len(await stream_messages(infra.nats.url, event_filter(event_type))) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_publish_once_is_bounded_when_nats_is_unreachable(db):
    # Shutdown must not hang when NATS is away: what is left stays in the outbox.
    async with db.unit_of_work() as uow:
        uow.emit(unique_event_type(), payload("a"))
        await uow.commit()
    dead = Nats("nats://127.0.0.1:1", identity=identity(OPERATOR))
    relay = OutboxRelay(db, dead, publish_timeout=1.0)
    await asyncio.wait_for(relay.publish_once(), 15)
    assert len(await outbox_rows(db)) == 1


async def test_publish_batch_fails_instead_of_hanging_when_nats_is_unreachable(db):
    # The relay's loop backs off and logs `outbox_relay_retry` when NATS is away; for that,
    # publish_batch must fail. It must not wait for NATS inside its transaction, holding the
    # outbox rows locked and a database connection idle in transaction for the whole outage.
    from cumulo_devstack.servers import free_port

    async with db.unit_of_work() as uow:
        uow.emit(unique_event_type(), payload("a"))
        await uow.commit()
    dead = Nats(f"nats://127.0.0.1:{free_port()}", identity=identity(OPERATOR))
    relay = OutboxRelay(db, dead, publish_timeout=1.0)
    task = asyncio.create_task(relay.publish_batch())
    try:
        done, _ = await asyncio.wait({task}, timeout=15)
        assert done, "publish_batch is still waiting for an unreachable NATS after 15 s"
        assert isinstance(task.exception(), Exception)
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    assert len(await outbox_rows(db)) == 1
