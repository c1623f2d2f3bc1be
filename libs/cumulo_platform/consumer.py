"""The durable pull consumer: named after its service, acks explicitly, hands each event to its
handler decoded (`event_types.Event`), and applies it idempotently.

- With `handler`, each event is applied in its own transaction, once: its id is recorded in
  `processed_events` in the same transaction as the handler's effect, so redelivery is harmless.
- With `batch_handler`, a whole fetched batch is applied in one transaction and acknowledged
  after the commit: for high-volume events whose effect is idempotent by itself (e.g.
  `GREATEST(stored, new)`), so no id needs recording.
- A failed event comes back after a growing delay (`events.Redelivery`); after the last attempt,
  or at once when it cannot be decoded, it is parked in the dead-letter stream, logged and
  counted, and acknowledged: one poison event never stalls its consumer. Outages (the
  database, another service away) are retried for as long as they last, never parked. Operators list and
  replay dead letters with `cumulo-admin events` (`dead_letters`).
- With tracing on, each event is applied under a span in the trace of what caused it
  (cumulo_platform.tracing).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import is_outage
from cumulo_platform.event_types import Event, decode, event_filter, forgery
from cumulo_platform.events import DEAD_LETTER_PREFIX, STREAM_NAME, Nats
from cumulo_platform.logging import get_logger
from cumulo_platform.runtime import raise_if_cancelled
from cumulo_platform.tracing import end_event_span, within

log = get_logger(__name__)

EventHandler = Callable[[Event[Any], UnitOfWork], Awaitable[None]]
BatchHandler = Callable[[list[Event[Any]], UnitOfWork], Awaitable[None]]

# Headers a dead letter carries beside the event's own bytes.
CONSUMER_HEADER = "Cumulo-Consumer"
SUBJECT_HEADER = "Cumulo-Subject"
ERROR_HEADER = "Cumulo-Error"
ATTEMPTS_HEADER = "Cumulo-Attempts"
FAILED_AT_HEADER = "Cumulo-Failed-At"
SEQUENCE_HEADER = "Cumulo-Stream-Sequence"
ERROR_TEXT_LIMIT = 300


def describe(exc: BaseException) -> str:
    """What went wrong, short: the exception's type and the start of its text."""
    text = str(exc).replace("\n", " ")[:ERROR_TEXT_LIMIT]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class EventConsumer:
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
        self.subjects = [event_filter(t) for t in event_types]
        self.handler = handler
        self.batch_handler = batch_handler
        self.batch_size = batch_size
        self.fetch_timeout = fetch_timeout
        self.dead_lettered = 0  # events this process parked (see the log for each)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        js = await self.nats.jetstream()
        config = js_api.ConsumerConfig(
            durable_name=self.durable,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.ALL,
            filter_subjects=self.subjects,
            ack_wait=30,
            # The consumer decides when to give up (and parks the event); the server never
            # drops one silently.
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
                finally:
                    raise_if_cancelled()  # nats-py's fetch waits with asyncio.wait_for
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

    async def _decode(self, msg: Msg) -> Event[Any] | None:
        try:
            envelope = events_pb2.Envelope.FromString(msg.data)
            uuid.UUID(envelope.event_id)
            event = decode(envelope)
        except Exception as exc:  # it will never decode: no point in retrying
            await self._dead_letter(msg, f"undecodable: {describe(exc)}")
            return None
        forged = forgery(msg.subject, envelope)
        if forged is not None:  # never applied; kept for an operator to look at
            log.warning("event_forged", consumer=self.durable, subject=msg.subject, event_type=envelope.type)
            await self._dead_letter(msg, f"forged: {forged}")
            return None
        return event

    async def _failed(self, msg: Msg, exc: BaseException) -> None:
        """Retry later; park the event once its attempts are used up. A dependency being away
        (the database, another service) is no fault of the event's: it is retried for as long
        as the outage lasts, never parked."""
        attempt = msg.metadata.num_delivered
        policy = self.nats.redelivery
        if is_outage(exc):
            await msg.nak(delay=policy.delay(min(attempt, policy.max_attempts)))
        elif attempt >= policy.max_attempts:
            await self._dead_letter(msg, describe(exc))
        else:
            await msg.nak(delay=policy.delay(attempt))

    async def _dead_letter(self, msg: Msg, error: str) -> None:
        """Parks the event in the dead-letter stream, then acknowledges it. Published with a
        message id of its own, so a crash between the two parks it once."""
        sequence = msg.metadata.sequence.stream
        js = await self.nats.jetstream()
        await js.publish(
            DEAD_LETTER_PREFIX + self.durable,
            msg.data,
            headers={
                "Nats-Msg-Id": f"dead:{self.durable}:{sequence}",
                CONSUMER_HEADER: self.durable,
                SUBJECT_HEADER: msg.subject,
                ERROR_HEADER: error,
                ATTEMPTS_HEADER: str(msg.metadata.num_delivered),
                FAILED_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                SEQUENCE_HEADER: str(sequence),
            },
        )
        await msg.ack()
        self.dead_lettered += 1
        if self.nats.on_dead_letter is not None:
            self.nats.on_dead_letter(self.durable)
        log.error("event_dead_lettered", consumer=self.durable, subject=msg.subject, sequence=sequence, error=error)

    async def _apply_batch(self, messages: list[Msg]) -> None:
        assert self.batch_handler is not None
        decoded = [(msg, await self._decode(msg)) for msg in messages]
        good = [(msg, event) for msg, event in decoded if event is not None]
        if not good:
            return
        tracing = self.nats.tracing
        if tracing is not None:  # each event in the trace of what caused it
            for msg, event in good:
                event.span = tracing.event_span(self.durable, event.type, msg.headers, event.envelope)
        failure: BaseException | None = None
        try:
            async with self.db.unit_of_work() as uow:
                await self.batch_handler([event for _, event in good], uow)
                await uow.commit()
        except Exception as exc:
            failure = exc
            log.exception("event_batch_failed", consumer=self.durable, events=len(good))
            for msg, _ in good:
                await self._failed(msg, exc)
            return
        except BaseException as exc:  # cancelled: the spans end all the same
            failure = exc
            raise
        finally:
            for _, event in good:
                end_event_span(event.span, failure)
        for msg, _ in good:
            await msg.ack()

    async def _apply(self, msg: Msg) -> None:
        assert self.handler is not None
        event = await self._decode(msg)
        if event is None:
            return
        tracing = self.nats.tracing
        if tracing is None:
            await self._apply_event(msg, event)
            return
        span = tracing.event_span(self.durable, event.type, msg.headers, event.envelope)
        failure: BaseException | None = None
        try:
            with within(span):  # what the handler emits continues this trace
                failure = await self._apply_event(msg, event)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            end_event_span(span, failure)

    async def _apply_event(self, msg: Msg, event: Event[Any]) -> Exception | None:
        """Applies the event once; what made it fail (it is retried or parked), else None."""
        assert self.handler is not None
        try:
            async with self.db.unit_of_work() as uow:
                first_time = (
                    await uow.execute(
                        pg_insert(self.db.processed_events)
                        .values(consumer=self.durable, event_id=uuid.UUID(event.event_id))
                        .on_conflict_do_nothing()
                        .returning(self.db.processed_events.c.event_id)
                    )
                ).first()
                if first_time is not None:
                    await self.handler(event, uow)
                await uow.commit()
        except Exception as exc:
            log.exception("event_handler_failed", consumer=self.durable, event_type=event.type)
            await self._failed(msg, exc)
            return exc
        await msg.ack()
        return None
