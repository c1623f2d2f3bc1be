"""Events over NATS JetStream: the connection, stream provisioning, the outbox relay and the
durable pull consumer.

- The relay publishes outbox rows in batches with `Nats-Msg-Id` = event id, so a publish that is
  retried after a crash is de-duplicated by JetStream; rows are deleted only once acknowledged.
  While NATS is down, rows wait in the outbox: nothing is lost.
- A consumer is durable, named after its service, acks explicitly and records each event id in
  `processed_events` in the same transaction as the handler's effect: redelivery is harmless.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence

import nats
import sqlalchemy as sa
from nats.aio.client import Client as NatsConnection
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BadRequestError
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_platform.db import SUBJECT_PREFIX, Database, UnitOfWork
from cumulo_platform.logging import get_logger

STREAM_NAME = "CUMULO_EVENTS"
# JetStream de-duplicates by Nats-Msg-Id within this window; the relay retries well inside it.
DUPLICATE_WINDOW = dt.timedelta(minutes=30)

log = get_logger(__name__)


class Nats:
    """A lazily (re)connecting NATS client: services keep serving while NATS is away."""

    def __init__(self, url: str, *, name: str) -> None:
        self.url = url
        self.name = name
        self._connection: NatsConnection | None = None
        self._lock = asyncio.Lock()
        self._stream_ready = False

    async def connection(self) -> NatsConnection:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                connection = NatsConnection()
                try:
                    # Once connected, the client reconnects forever; the first connect must
                    # give up instead, so callers can retry (and not hold transactions open).
                    await asyncio.wait_for(
                        connection.connect(
                            self.url,
                            name=self.name,
                            connect_timeout=2,
                            allow_reconnect=True,
                            max_reconnect_attempts=-1,
                            reconnect_time_wait=0.5,
                            drain_timeout=5,
                            error_cb=self._on_error,
                            disconnected_cb=self._on_disconnected,
                            reconnected_cb=self._on_reconnected,
                        ),
                        timeout=5,
                    )
                except BaseException:
                    await connection.close()
                    raise
                self._connection = connection
            return self._connection

    async def jetstream(self) -> JetStreamContext:
        connection = await self.connection()
        js = connection.jetstream(timeout=5)
        if not self._stream_ready:
            await ensure_stream(js)
            self._stream_ready = True
        return js

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.drain()
        self._connection = None

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats_error", error=type(exc).__name__)

    async def _on_disconnected(self) -> None:
        log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        log.info("nats_reconnected")


async def ensure_stream(js: JetStreamContext) -> None:
    config = js_api.StreamConfig(
        name=STREAM_NAME,
        subjects=[SUBJECT_PREFIX + ">"],
        storage=js_api.StorageType.FILE,
        retention=js_api.RetentionPolicy.LIMITS,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        max_age=dt.timedelta(days=7).total_seconds(),
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        nats_client: Nats,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
    ) -> None:
        self.db = db
        self.nats = nats_client
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout

    async def run(self) -> None:
        backoff = 0.2
        while True:
            # Cleared before the batch: a commit during the batch wakes the next round at once.
            self.db.outbox_written.clear()
            try:
                published = await self.publish_batch()
                backoff = 0.2
            except Exception as exc:  # NATS or PostgreSQL away: wait and try again
                log.warning("outbox_relay_retry", error=type(exc).__name__, retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self.batch_size:
                try:
                    await asyncio.wait_for(self.db.outbox_written.wait(), self.poll_interval)
                except TimeoutError:
                    pass

    async def publish_once(self) -> None:
        """Best effort on shutdown: what is left stays in the outbox for the next start."""
        try:
            await asyncio.wait_for(self.publish_batch(), self.publish_timeout)
        except Exception as exc:
            log.info("outbox_left_for_next_start", error=type(exc).__name__)

    async def publish_batch(self) -> int:
        """Publish up to one batch; returns how many were published and removed."""
        outbox = self.db.outbox
        js = await self.nats.jetstream()  # before the transaction: never hold row locks while connecting
        async with self.db.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(outbox.c.event_id, outbox.c.subject, outbox.c.envelope)
                    .order_by(outbox.c.created_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            results = await asyncio.gather(
                *(
                    js.publish(
                        row.subject,
                        row.envelope,
                        timeout=self.publish_timeout,
                        headers={"Nats-Msg-Id": str(row.event_id)},
                    )
                    for row in rows
                ),
                return_exceptions=True,
            )
            done = [row.event_id for row, result in zip(rows, results) if not isinstance(result, BaseException)]
            failed = [row.event_id for row, result in zip(rows, results) if isinstance(result, BaseException)]
            if done:
                await session.execute(sa.delete(outbox).where(outbox.c.event_id.in_(done)))
            if failed:
                await session.execute(
                    sa.update(outbox)
                    .where(outbox.c.event_id.in_(failed))
                    .values(attempts=outbox.c.attempts + 1)
                )
        if failed:
            raise ConnectionError(f"{len(failed)} of {len(rows)} events not acknowledged by JetStream")
        return len(done)


EventHandler = Callable[[events_pb2.Envelope, UnitOfWork], Awaitable[None]]
BatchHandler = Callable[[list[events_pb2.Envelope], UnitOfWork], Awaitable[None]]


class EventConsumer:
    """A durable pull consumer named after its service, applying events idempotently.

    With `handler`, each event is applied in its own transaction, once (its id is recorded in
    processed_events). With `batch_handler`, a whole fetched batch is applied in one
    transaction and acknowledged after the commit: for high-volume events whose effect is
    idempotent by itself (e.g. `GREATEST(stored, new)`), so no id needs recording."""

    def __init__(
        self,
        db: Database,
        nats_client: Nats,
        *,
        durable: str,
        event_types: Sequence[str],
        handler: EventHandler | None = None,
        batch_handler: BatchHandler | None = None,
        batch_size: int = 200,
        fetch_timeout: float = 1.0,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        self.db = db
        self.nats = nats_client
        self.durable = durable
        self.subjects = [SUBJECT_PREFIX + t for t in event_types]
        self.handler = handler
        self.batch_handler = batch_handler
        self.batch_size = batch_size
        self.fetch_timeout = fetch_timeout

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        js = await self.nats.jetstream()
        config = js_api.ConsumerConfig(
            durable_name=self.durable,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.ALL,
            filter_subjects=self.subjects,
            ack_wait=30,
            max_deliver=-1,
        )
        # Creates the durable consumer, or updates it when its configuration changed.
        await js.add_consumer(STREAM_NAME, config)
        return await js.pull_subscribe_bind(durable=self.durable, stream=STREAM_NAME)

    async def run(self) -> None:
        backoff = 0.2
        subscription = None
        while True:
            try:
                if subscription is None:
                    subscription = await self._subscribe()
                try:
                    messages = await subscription.fetch(self.batch_size, timeout=self.fetch_timeout)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                if self.batch_handler is not None:
                    await self._apply_batch(messages)
                else:
                    for msg in messages:
                        await self._apply(msg)
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event_consumer_retry", consumer=self.durable, error=type(exc).__name__)
                subscription = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _decode(self, msg: nats.aio.msg.Msg) -> events_pb2.Envelope | None:
        try:
            envelope = events_pb2.Envelope.FromString(msg.data)
            uuid.UUID(envelope.event_id)
        except Exception:
            log.error("event_undecodable", consumer=self.durable, subject=msg.subject)
            await msg.term()
            return None
        return envelope

    async def _apply_batch(self, messages: list[nats.aio.msg.Msg]) -> None:
        assert self.batch_handler is not None
        decoded = [(msg, await self._decode(msg)) for msg in messages]
        good = [(msg, envelope) for msg, envelope in decoded if envelope is not None]
        if not good:
            return
        try:
            async with self.db.unit_of_work() as uow:
                await self.batch_handler([envelope for _, envelope in good], uow)
                await uow.commit()
        except Exception:
            log.exception("event_batch_failed", consumer=self.durable, events=len(good))
            for msg, _ in good:
                await msg.nak(delay=2)
            return
        for msg, _ in good:
            await msg.ack()

    async def _apply(self, msg: nats.aio.msg.Msg) -> None:
        assert self.handler is not None
        envelope = await self._decode(msg)
        if envelope is None:
            return
        event_id = uuid.UUID(envelope.event_id)
        try:
            async with self.db.unit_of_work() as uow:
                first_time = (
                    await uow.execute(
                        pg_insert(self.db.processed_events)
                        .values(consumer=self.durable, event_id=event_id)
                        .on_conflict_do_nothing()
                        .returning(self.db.processed_events.c.event_id)
                    )
                ).first()
                if first_time is not None:
                    await self.handler(envelope, uow)
                await uow.commit()
        except Exception:
            log.exception("event_handler_failed", consumer=self.durable, event_type=envelope.type)
            await msg.nak(delay=2)
            return
        await msg.ack()
