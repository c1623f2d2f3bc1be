"""Traces inside a service (cumulo_platform.tracing): an event is applied under a span in the
trace it was written in, a failure marks that span without its text, and work shared by many
calls (a group-commit writer) carries none of their traces. The whole path through the cloud's
processes is tests/test_traces.py."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid

import pytest
from google.protobuf import timestamp_pb2

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import eventually, identity, unique_event_type
from cumulo_devstack.testing.otlp import SpanCollector
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import make_envelope
from cumulo_platform.event_types import event_subject
from cumulo_platform.events import STREAM_NAME, Nats, Redelivery
from cumulo_platform.group_commit import GroupCommit
from cumulo_platform.identity import OPERATOR
from cumulo_platform.tracing import TraceSettings, Tracing, current_traceparent

SECRET_TEXT = "what-a-user-wrote-" + uuid.uuid4().hex


@pytest.fixture
def text_tables() -> dict[str, str]:
    return {}


@pytest.fixture
def collector():
    with SpanCollector() as running:
        yield running


@pytest.fixture
def tracing(collector: SpanCollector):
    traced = Tracing("test", TraceSettings(endpoint=collector.endpoint, export_delay_seconds=0.1))
    yield traced
    traced.shutdown()


async def test_a_failed_event_is_applied_under_a_span_of_its_trace_marked_failed_without_its_text(db, bus, infra, collector, tracing):
    event_type = unique_event_type()
    durable = f"test_{uuid.uuid4().hex[:10]}"

    async def fail(event, uow):
        raise ValueError(SECRET_TEXT)

    consumer_bus = Nats(infra.nats.url, identity=identity(OPERATOR), redelivery=Redelivery(max_attempts=1, first_delay=0.1, max_delay=0.1))
    consumer_bus.tracing = tracing
    consumer = EventConsumer(db, consumer_bus, durable=durable, event_types=[event_type], handler=fail, fetch_timeout=0.5)
    task = asyncio.create_task(consumer.run())
    try:
        with tracing.tracer.start_as_current_span("the call that wrote it") as call:
            envelope = make_envelope(
                event_type, events_pb2.AccountCancelled(account_id="acc-1", cancelled_at=timestamp_pb2.Timestamp(seconds=1)),
                account_id="acc-1", producer="test", occurred_at=dt.datetime.now(dt.UTC),
            )
        assert envelope.traceparent.split("-")[1] == format(call.get_span_context().trace_id, "032x")
        js = await bus.jetstream()
        await js.publish(event_subject(envelope.producer, envelope.type), envelope.SerializeToString())

        async def applied():
            return [s for s in collector.spans() if s.name == f"{durable} process {event_type}"]

        (span,) = await eventually(applied, timeout=30, what="the consumer's span")
        assert span.trace_id == format(call.get_span_context().trace_id, "032x")
        assert span.parent_span_id == format(call.get_span_context().span_id, "016x")
        assert span.status_code == 2  # ERROR
        assert SECRET_TEXT not in repr(collector.spans())
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await (await consumer_bus.connection()).close()
        await consumer_bus.close()
        with contextlib.suppress(Exception):
            await (await bus.jetstream()).delete_consumer(STREAM_NAME, durable)


async def test_a_group_commit_writer_carries_no_calls_trace(tracing):
    """The writer is started by whichever call comes first and then writes others' groups: it
    must not write them (and the events they emit) into that first call's trace."""
    seen: list[tuple[str, str]] = []

    async def apply(items: list[int]) -> list[int]:
        seen.append(current_traceparent())
        return items

    group = GroupCommit(apply)
    with tracing.tracer.start_as_current_span("a call"):
        assert current_traceparent()[0]
        assert await group.submit(1) == 1
    assert seen == [("", "")]
