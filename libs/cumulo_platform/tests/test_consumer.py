"""EventConsumer: durable, explicit acks, each event applied once (processed_events)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import eventually, identity, unique_event_type
from cumulo_platform import dead_letters
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import Database, UnitOfWork, make_envelope
from cumulo_platform.event_types import Event, event_subject
from cumulo_platform.events import STREAM_NAME, Nats, Redelivery
from cumulo_platform.identity import OPERATOR

# --- helpers -------------------------------------------------------------------------


def envelope(event_type: str, account_id: str) -> events_pb2.Envelope:
    return make_envelope(
        event_type,
        events_pb2.AccountCancelled(account_id=account_id, cancelled_at=timestamp_pb2.Timestamp(seconds=1)),
        account_id=account_id,
        producer="test",
        occurred_at=dt.datetime.now(dt.UTC),
    )


@pytest.fixture
def text_tables() -> dict[str, str]:
    return {"applied": "event_id"}  # what the handler applied


class Publisher:
    """Publishes raw envelopes straight to JetStream (as a relay of another service would)."""

    def __init__(self, bus: Nats) -> None:
        self.bus = bus

    async def publish(self, env: events_pb2.Envelope, *, msg_id: str | None = None) -> int:
        js = await self.bus.jetstream()  # also provisions the stream
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        ack = await js.publish(event_subject(env.producer, env.type), env.SerializeToString(), headers=headers)
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
def publisher(bus) -> Publisher:
    return Publisher(bus)


@pytest.fixture
async def durable(publisher) -> AsyncIterator[str]:
    """The test's own durable consumer name; the consumer is deleted from the stream afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    await publisher.delete_consumer(name)


class Running:
    """A consumer running as a background job with its own NATS connection."""

    def __init__(
        self, db: Database, url: str, durable: str, event_types: list[str], handler, *, redelivery: Redelivery | None = None
    ) -> None:
        self.bus = Nats(url, identity=identity(OPERATOR), redelivery=redelivery)
        self.consumer = EventConsumer(
            db, self.bus, durable=durable, event_types=event_types, handler=handler, fetch_timeout=0.5
        )
        self.task = asyncio.create_task(self.consumer.run())

    async def __aenter__(self) -> Running:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

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

    async def __call__(self, env: Event[events_pb2.AccountCancelled], uow: UnitOfWork) -> None:
        self.calls.append(env.event_id)
        applied = self.db.metadata.tables[f"{self.db.schema}.applied"]
        await uow.execute(sa.insert(applied).values(event_id=env.event_id))
        if len(self.calls) <= self.fail_first:
            raise RuntimeError("handler failed (on purpose)")


async def applied(db: Database) -> list[str]:
    table = db.metadata.tables[f"{db.schema}.applied"]
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


async def test_consumer_applies_an_event_and_acks_it(db, publisher, infra, durable):
    event_type = unique_event_type()
    handler = Recorder(db)
    event = envelope(event_type, "acc-1")
    await publisher.publish(event, msg_id=event.event_id)
    async with Running(db, infra.nats.url, durable, [event_type], handler):
        await eventually(settled(publisher, durable, 1), what="the event to be applied and acked")
        assert handler.calls == [event.event_id]
        assert await applied(db) == [event.event_id]
        assert await processed(db, durable) == [uuid.UUID(event.event_id)]
        info = await publisher.consumer_info(durable)
        assert info.config.durable_name == durable
        assert info.config.ack_policy == js_api.AckPolicy.EXPLICIT


async def test_consumer_applies_a_redelivered_event_once(db, publisher, infra, durable):
    event_type, other_type = unique_event_type(), unique_event_type()
    handler = Recorder(db)
    event = envelope(event_type, "acc-1")
    # The same event reaches the stream twice (e.g. re-published after the dedup window).
    await publisher.publish(event)
    await publisher.publish(event)
    # An event type this consumer did not ask for.
    await publisher.publish(envelope(other_type, "acc-2"))
    async with Running(db, infra.nats.url, durable, [event_type], handler):
        await eventually(settled(publisher, durable, 2), what="both deliveries to be acked")
        assert handler.calls == [event.event_id]
        assert await applied(db) == [event.event_id]
        assert await processed(db, durable) == [uuid.UUID(event.event_id)]
        info = await publisher.consumer_info(durable)
        assert info.delivered.consumer_seq == 2  # the other type was never delivered


async def test_consumer_naks_and_retries_when_the_handler_raises(db, publisher, infra, durable):
    event_type = unique_event_type()
    handler = Recorder(db, fail_first=1)
    event = envelope(event_type, "acc-1")
    await publisher.publish(event, msg_id=event.event_id)
    async with Running(db, infra.nats.url, durable, [event_type], handler):

        async def retried_and_applied() -> bool:
            return len(handler.calls) >= 2 and await settled(publisher, durable, 2)()

        await eventually(retried_and_applied, timeout=20, what="the failed event to be redelivered and applied")
        assert handler.calls == [event.event_id, event.event_id]
        # The failed attempt's effect was rolled back with its processed_events row.
        assert await applied(db) == [event.event_id]
        assert await processed(db, durable) == [uuid.UUID(event.event_id)]


async def test_consumer_parks_undecodable_messages_and_goes_on(db, publisher, infra, durable):
    event_type = unique_event_type()
    handler = Recorder(db)
    js = await publisher.bus.jetstream()
    await js.publish(event_subject("test", event_type), b"\xff\xffnot an envelope")
    wrong_payload = make_envelope(  # an envelope whose payload is not what its type carries
        event_type, events_pb2.FileDeleted(account_id="acc-9"), account_id="acc-9", producer="test", occurred_at=dt.datetime.now(dt.UTC)
    )
    await publisher.publish(wrong_payload)
    good = envelope(event_type, "acc-1")
    await publisher.publish(good, msg_id=good.event_id)
    async with Running(db, infra.nats.url, durable, [event_type], handler):
        await eventually(settled(publisher, durable, 3), what="the three messages to be settled")
        assert handler.calls == [good.event_id]
        assert await applied(db) == [good.event_id]
    parked = await dead_letters.listing(js, consumer=durable)
    assert [letter.error.split(":")[0] for letter in parked] == ["undecodable", "undecodable"]
    assert parked[1].event_id == wrong_payload.event_id and "does not carry" in parked[1].error
    assert all(letter.subject == event_subject("test", event_type) and letter.attempts == 1 for letter in parked)


class Poisoned:
    """A handler that fails on one account's events (a malformed event, a bug) and applies
    every other."""

    def __init__(self, db: Database, poison: str) -> None:
        self.recorder = Recorder(db)
        self.poison = poison
        self.attempts = 0
        self.fixed = False

    async def __call__(self, event: Event[events_pb2.AccountCancelled], uow: UnitOfWork) -> None:
        if event.message.account_id == self.poison and not self.fixed:
            self.attempts += 1
            uuid.UUID(event.message.account_id)  # raises: not an id
        await self.recorder(event, uow)


async def test_a_poison_event_is_retried_a_bounded_number_of_times_then_dead_lettered_and_replayable(db, publisher, infra, durable):
    event_type = unique_event_type()
    handler = Poisoned(db, poison="not-a-uuid")
    poison, good = envelope(event_type, "not-a-uuid"), envelope(event_type, "acc-1")
    await publisher.publish(poison, msg_id=poison.event_id)
    await publisher.publish(good, msg_id=good.event_id)
    js = await publisher.bus.jetstream()
    policy = Redelivery(max_attempts=3, first_delay=0.1, max_delay=0.2)
    async with Running(db, infra.nats.url, durable, [event_type], handler, redelivery=policy) as running:
        await eventually(lambda: _parked(running), what="the poison event to be parked")
        await eventually(settled(publisher, durable, 4), what="the good event applied, the poison one acknowledged")
        assert handler.recorder.calls == [good.event_id]  # the poison event did not hold the other up
        assert handler.attempts == 3
        assert running.consumer.dead_lettered == 1
        [letter] = await dead_letters.listing(js, consumer=durable)
        assert (letter.event_id, letter.event_type, letter.attempts) == (poison.event_id, event_type, 3)
        assert letter.error.startswith("ValueError")
        assert letter.subject == event_subject("test", event_type)

        # The fix is deployed; the operator replays the event: it is applied once, and the
        # dead letter is gone.
        handler.fixed = True
        await dead_letters.replay(js, letter.id)
        await eventually(lambda: _applied_has(db, poison.event_id), what="the replayed event to be applied")
        assert await dead_letters.listing(js, consumer=durable) == []
        with pytest.raises(dead_letters.NoSuchDeadLetter):
            await dead_letters.replay(js, letter.id)  # a second replay finds nothing
    assert sorted(await applied(db)) == sorted([good.event_id, poison.event_id])


async def _parked(running: Running) -> bool:
    return running.consumer.dead_lettered >= 1


async def _applied_has(db: Database, event_id: str) -> bool:
    return event_id in await applied(db)


async def test_consumer_is_durable_across_restarts(db, publisher, infra, durable):
    event_type = unique_event_type()
    handler = Recorder(db)
    first, second = envelope(event_type, "acc-1"), envelope(event_type, "acc-2")

    await publisher.publish(first, msg_id=first.event_id)
    async with Running(db, infra.nats.url, durable, [event_type], handler):
        await eventually(settled(publisher, durable, 1), what="the first event to be applied")
    assert handler.calls == [first.event_id]

    # The stopped consumer's last pull request lingers on the server until its fetch timeout;
    # a message published before that would be handed to it and redelivered only after
    # ack_wait (no loss, just a 30 s delay this test is not about).
    async def no_waiting_pulls() -> bool:
        info = await publisher.consumer_info(durable)
        return info is not None and info.num_waiting == 0

    await eventually(no_waiting_pulls, what="the stopped consumer's pull request to expire")
    # While the service is down, another event arrives; the consumer stays on the server.
    await publisher.publish(second, msg_id=second.event_id)
    info = await publisher.consumer_info(durable)
    assert info is not None and info.num_pending == 1

    # The service starts again: same durable name, a new process (connection, consumer object).
    async with Running(db, infra.nats.url, durable, [event_type], handler):
        await eventually(settled(publisher, durable, 2), what="the restarted consumer to apply the new event")
        assert handler.calls == [first.event_id, second.event_id]
        assert await applied(db) == [first.event_id, second.event_id]
        assert sorted(await processed(db, durable)) == sorted([uuid.UUID(first.event_id), uuid.UUID(second.event_id)])
        info = await publisher.consumer_info(durable)
        assert info.delivered.consumer_seq == 2  # the first event was not delivered again


async def test_consumer_keeps_consuming_after_nats_restarts(db, publisher, infra, durable):
    event_type = unique_event_type()
    handler = Recorder(db)
    before, after = envelope(event_type, "acc-1"), envelope(event_type, "acc-2")
    await publisher.publish(before, msg_id=before.event_id)
    async with Running(db, infra.nats.url, durable, [event_type], handler):
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


async def _publish_ok(publisher: Publisher, env: events_pb2.Envelope) -> bool:
    try:
        await publisher.publish(env, msg_id=env.event_id)
    except Exception:
        return False
    return True
