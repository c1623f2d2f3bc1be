"""EventConsumer: durable, explicit acks, each event applied once (processed_events)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from cumulo.events.v1 import events_pb2
from cumulo_platform.db import SUBJECT_PREFIX, Database, UnitOfWork, create_engine, make_envelope
from cumulo_platform.events import STREAM_NAME, EventConsumer, Nats

SCHEMA = "t1"


# --- helpers -------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[object]], *, timeout: float = 15.0, what: str = "condition") -> object:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def unique_type() -> str:
    return f"test.{uuid.uuid4().hex[:12]}"


def envelope(event_type: str, account_id: str) -> events_pb2.Envelope:
    return make_envelope(
        event_type,
        events_pb2.AccountCancelled(account_id=account_id, cancelled_at=timestamp_pb2.Timestamp(seconds=1)),
        account_id=account_id,
        producer="test",
        occurred_at=dt.datetime.now(dt.timezone.utc),
    )


@pytest.fixture
async def db(infra) -> AsyncIterator[Database]:
    database = Database(create_engine(infra.new_database(), pool_size=2), schema=SCHEMA, producer="test")
    sa.Table(
        "applied",
        database.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, nullable=False),
    )
    async with database.engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{SCHEMA}"'))
        await conn.run_sync(database.metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


class Publisher:
    """Publishes raw envelopes straight to JetStream (as a relay of another service would)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bus = Nats(url, name="test-publisher")

    async def publish(self, env: events_pb2.Envelope, *, msg_id: str | None = None) -> int:
        js = await self.bus.jetstream()  # also provisions the stream
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        ack = await js.publish(SUBJECT_PREFIX + env.type, env.SerializeToString(), headers=headers)
        return ack.seq

    async def consumer_info(self, durable: str):
        js = await self.bus.jetstream()
        try:
            return await js.consumer_info(STREAM_NAME, durable)
        except NotFoundError:
            return None

    async def delete_consumer(self, durable: str) -> None:
        js = await self.bus.jetstream()
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(STREAM_NAME, durable)


@pytest.fixture
async def publisher(infra) -> AsyncIterator[Publisher]:
    p = Publisher(infra.nats.url)
    try:
        yield p
    finally:
        await p.bus.close()


class Running:
    """A consumer running as a background job with its own NATS connection."""

    def __init__(self, db: Database, url: str, durable: str, event_types: list[str], handler) -> None:
        self.bus = Nats(url, name=f"test-{durable}")
        self.consumer = EventConsumer(
            db, self.bus, durable=durable, event_types=event_types, handler=handler, fetch_timeout=0.5
        )
        self.task = asyncio.create_task(self.consumer.run())

    async def stop(self) -> None:
        """Stop like a process that ends: cancel the job, close the connection.

        (Not Nats.close(): its drain can wait nats-py's 30 s drain timeout for a pull
        subscription's leftover status messages; see the report.)"""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await (await self.bus.connection()).close()
        await self.bus.close()


class Recorder:
    """A handler with a visible effect in the consumer's database."""

    def __init__(self, db: Database, *, fail_first: int = 0) -> None:
        self.db = db
        self.calls: list[str] = []
        self.fail_first = fail_first

    async def __call__(self, env: events_pb2.Envelope, uow: UnitOfWork) -> None:
        self.calls.append(env.event_id)
        applied = self.db.metadata.tables[f"{SCHEMA}.applied"]
        await uow.execute(sa.insert(applied).values(event_id=env.event_id))
        if len(self.calls) <= self.fail_first:
            raise RuntimeError("handler failed (on purpose)")


async def applied(db: Database) -> list[str]:
    table = db.metadata.tables[f"{SCHEMA}.applied"]
    async with db.sessions() as session:
        return list((await session.execute(sa.select(table.c.event_id).order_by(table.c.id))).scalars())


async def processed(db: Database, durable: str) -> list[uuid.UUID]:
    table = db.processed_events
    async with db.sessions() as session:
        return list(
            (await session.execute(sa.select(table.c.event_id).where(table.c.consumer == durable))).scalars()
        )


def settled(publisher: Publisher, durable: str, delivered: int):
    """The consumer got at least `delivered` deliveries and acknowledged everything."""

    async def check() -> bool:
        info = await publisher.consumer_info(durable)
        return (
            info is not None
            and info.delivered.consumer_seq >= delivered
            and info.num_pending == 0
            and info.num_ack_pending == 0
        )

    return check


# --- tests ---------------------------------------------------------------------------


async def test_consumer_applies_an_event_and_acks_it(db, publisher, infra):
    event_type, durable = unique_type(), f"test_{uuid.uuid4().hex[:10]}"
    handler = Recorder(db)
    event = envelope(event_type, "acc-1")
    await publisher.publish(event, msg_id=event.event_id)
    running = Running(db, infra.nats.url, durable, [event_type], handler)
    try:
        await eventually(settled(publisher, durable, 1), what="the event to be applied and acked")
        assert handler.calls == [event.event_id]
        assert await applied(db) == [event.event_id]
        assert await processed(db, durable) == [uuid.UUID(event.event_id)]
        info = await publisher.consumer_info(durable)
        assert info.config.durable_name == durable
        assert info.config.ack_policy == js_api.AckPolicy.EXPLICIT
    finally:
        await running.stop()
        await publisher.delete_consumer(durable)


async def test_consumer_applies_a_redelivered_event_once(db, publisher, infra):
    event_type, other_type, durable = unique_type(), unique_type(), f"test_{uuid.uuid4().hex[:10]}"
    handler = Recorder(db)
    event = envelope(event_type, "acc-1")
    # The same event reaches the stream twice (e.g. re-published after the dedup window).
    await publisher.publish(event)
    await publisher.publish(event)
    # An event type this consumer did not ask for.
    await publisher.publish(envelope(other_type, "acc-2"))
    running = Running(db, infra.nats.url, durable, [event_type], handler)
    try:
        await eventually(settled(publisher, durable, 2), what="both deliveries to be acked")
        assert handler.calls == [event.event_id]
        assert await applied(db) == [event.event_id]
        assert await processed(db, durable) == [uuid.UUID(event.event_id)]
        info = await publisher.consumer_info(durable)
        assert info.delivered.consumer_seq == 2  # the other type was never delivered
    finally:
        await running.stop()
        await publisher.delete_consumer(durable)


async def test_consumer_naks_and_retries_when_the_handler_raises(db, publisher, infra):
    event_type, durable = unique_type(), f"test_{uuid.uuid4().hex[:10]}"
    handler = Recorder(db, fail_first=1)
    event = envelope(event_type, "acc-1")
    await publisher.publish(event, msg_id=event.event_id)
    running = Running(db, infra.nats.url, durable, [event_type], handler)
    try:

        async def retried_and_applied() -> bool:
            return len(handler.calls) >= 2 and await settled(publisher, durable, 2)()

        await eventually(retried_and_applied, timeout=20, what="the failed event to be redelivered and applied")
        assert handler.calls == [event.event_id, event.event_id]
        # The failed attempt's effect was rolled back with its processed_events row.
        assert await applied(db) == [event.event_id]
        assert await processed(db, durable) == [uuid.UUID(event.event_id)]
    finally:
        await running.stop()
        await publisher.delete_consumer(durable)


async def test_consumer_skips_undecodable_messages_and_goes_on(db, publisher, infra):
    event_type, durable = unique_type(), f"test_{uuid.uuid4().hex[:10]}"
    handler = Recorder(db)
    js = await publisher.bus.jetstream()
    await js.publish(SUBJECT_PREFIX + event_type, b"\xff\xffnot an envelope")
    good = envelope(event_type, "acc-1")
    await publisher.publish(good, msg_id=good.event_id)
    running = Running(db, infra.nats.url, durable, [event_type], handler)
    try:
        await eventually(settled(publisher, durable, 2), what="both messages to be settled")
        assert handler.calls == [good.event_id]
        assert await applied(db) == [good.event_id]
    finally:
        await running.stop()
        await publisher.delete_consumer(durable)


async def test_consumer_is_durable_across_restarts(db, publisher, infra):
    event_type, durable = unique_type(), f"test_{uuid.uuid4().hex[:10]}"
    handler = Recorder(db)
    first, second = envelope(event_type, "acc-1"), envelope(event_type, "acc-2")

    await publisher.publish(first, msg_id=first.event_id)
    running = Running(db, infra.nats.url, durable, [event_type], handler)
    try:
        await eventually(settled(publisher, durable, 1), what="the first event to be applied")
    finally:
        await running.stop()
    assert handler.calls == [first.event_id]

    # While the service is down, another event arrives; the consumer stays on the server.
    await publisher.publish(second, msg_id=second.event_id)
    info = await publisher.consumer_info(durable)
    assert info is not None and info.num_pending == 1

    # The service starts again: same durable name, a new process (connection, consumer object).
    restarted = Running(db, infra.nats.url, durable, [event_type], handler)
    try:
        await eventually(settled(publisher, durable, 2), what="the restarted consumer to apply the new event")
        assert handler.calls == [first.event_id, second.event_id]
        assert await applied(db) == [first.event_id, second.event_id]
        assert sorted(await processed(db, durable)) == sorted([uuid.UUID(first.event_id), uuid.UUID(second.event_id)])
        info = await publisher.consumer_info(durable)
        assert info.delivered.consumer_seq == 2  # the first event was not delivered again
    finally:
        await restarted.stop()
        await publisher.delete_consumer(durable)


async def test_consumer_keeps_consuming_after_nats_restarts(db, publisher, infra):
    event_type, durable = unique_type(), f"test_{uuid.uuid4().hex[:10]}"
    handler = Recorder(db)
    before, after = envelope(event_type, "acc-1"), envelope(event_type, "acc-2")
    await publisher.publish(before, msg_id=before.event_id)
    running = Running(db, infra.nats.url, durable, [event_type], handler)
    try:
        await eventually(settled(publisher, durable, 1), what="the first event to be applied")
        infra.nats.stop()
        try:
            await asyncio.sleep(1)  # NATS stays away for a moment: the consumer's fetches fail
        finally:
            infra.nats.start()
        await eventually(
            lambda: _publish_ok(publisher, after), timeout=30, what="JetStream to accept publishes again"
        )
        await eventually(settled(publisher, durable, 2), timeout=30, what="the consumer to apply an event after the restart")
        assert handler.calls == [before.event_id, after.event_id]
        assert await applied(db) == [before.event_id, after.event_id]
    finally:
        await running.stop()
        await publisher.delete_consumer(durable)


async def _publish_ok(publisher: Publisher, env: events_pb2.Envelope) -> bool:
    try:
        await publisher.publish(env, msg_id=env.event_id)
    except Exception:
        return False
    return True
