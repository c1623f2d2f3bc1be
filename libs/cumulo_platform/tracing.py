"""Traces (OpenTelemetry): W3C trace context from the gateway through every gRPC hop and
through NATS, so one request can be followed from Envoy to the last consumer it set off.

- A call's server span continues the `traceparent` it came with (Envoy starts one at the
  edge); calls to other services (`remote.Remote`) pass the current context on.
- An event carries the context it was written in (`Envelope.traceparent`): the outbox relay's
  publish span is its child, and puts its own context in the message's `traceparent` header;
  a consumer applies the event in a span under it. A last-access event carries the context of
  the call that used the account, so the lifecycle's handling of it (a reactivation) is in
  that call's trace.

Off unless CUMULO_OTLP_ENDPOINT names a collector (OTLP over gRPC): then every service sends
its spans there, sampled at CUMULO_TRACE_SAMPLE_RATIO of new traces (a call that comes with a
sampled context is always traced). Each service has a provider of its own (tests run several
in one process). Off, nothing here is called on a hot path but `current_traceparent`, which
then finds no span and returns "".
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_propagator = TraceContextTextMapPropagator()


@dataclasses.dataclass(frozen=True)
class TraceSettings:
    """Where spans go (an OTLP/gRPC collector, `http://host:4317`; "" = tracing off), the
    share of new traces kept, and how long spans wait to be sent in a batch."""

    endpoint: str = ""
    sample_ratio: float = 1.0
    export_delay_seconds: float = 5.0

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint)

    def validate(self) -> str | None:
        """What is wrong, naming the variable; None when nothing is."""
        if self.endpoint:
            parsed = urllib.parse.urlsplit(self.endpoint)
            if parsed.scheme not in {"http", "https"} or not parsed.hostname or not parsed.port:
                return "CUMULO_OTLP_ENDPOINT must be http(s)://host:port (an OTLP/gRPC collector)"
        if not 0 <= self.sample_ratio <= 1:
            return "CUMULO_TRACE_SAMPLE_RATIO must be between 0 and 1"
        if not 0 < self.export_delay_seconds <= 60:
            return "CUMULO_TRACE_EXPORT_DELAY must be more than PT0S and at most PT1M"
        return None


TRACES_OFF = TraceSettings()


class Tracing:
    """One service's tracer, sending its spans to the collector in batches, off the calls."""

    def __init__(self, service: str, settings: TraceSettings) -> None:
        # The SDK and exporter only where tracing is on: off, a service imports the API alone.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        self.service = service
        resource = Resource.create({"service.name": service, "service.namespace": "cumulo"})
        self._provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
        parsed = urllib.parse.urlsplit(settings.endpoint)
        exporter = OTLPSpanExporter(endpoint=f"{parsed.hostname}:{parsed.port}", insecure=parsed.scheme == "http")
        self._provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=int(settings.export_delay_seconds * 1000))
        )
        self.tracer = self._provider.get_tracer("cumulo")

    @classmethod
    def of(cls, service: str, settings: TraceSettings) -> Tracing | None:
        return cls(service, settings) if settings.enabled else None

    def server_span(self, method: str, metadata: Mapping[str, str]) -> Span:
        """The span of a call being served, under the context it came with, made current for
        the rest of the call (each call runs in a task of its own, so nothing leaks out)."""
        service, _, name = method.lstrip("/").partition("/")
        span = self.tracer.start_span(
            method.lstrip("/"),
            context=_propagator.extract(metadata),
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        otel_context.attach(trace.set_span_in_context(span))
        return span

    def publish_span(self, subject: str, traceparent: str, tracestate: str = "") -> Span:
        """The outbox relay's publish of one event, under the context it was written in."""
        return self.tracer.start_span(
            f"publish {subject}",
            context=parent_of(traceparent, tracestate),
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.destination.name": subject},
        )

    def event_span(self, durable: str, event_type: str, headers: Mapping[str, str] | None, envelope: Any) -> Span:
        """A consumer applying one event, under the context the event came with (the publish
        span's, from the message's header; else the one it was written in); the caller ends it
        (`end_event_span`). A batch consumer makes one per event: each is in the trace of what
        caused it."""
        return self.tracer.start_span(
            f"{durable} process {event_type}",
            context=_event_context(headers, envelope),
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "nats", "messaging.consumer.group.name": durable, "cumulo.event_type": event_type},
        )

    def shutdown(self) -> None:
        """Sends what is waiting (blocking: call it from a thread)."""
        self._provider.shutdown()


def end_call_span(span: Span, code: str) -> None:
    """Ends a call's span with its gRPC status code."""
    span.set_attribute("rpc.grpc.status_code", code)
    if code not in ("OK", "NOT_FOUND", "CANCELLED"):
        span.set_status(Status(StatusCode.ERROR, code))
    span.end()


def publish_span(tracing: Tracing, subject: str, envelope_bytes: bytes) -> Span:
    """The relay's publish of one stored event (its bytes: the context is in the envelope)."""
    from cumulo.events.v1 import events_pb2

    envelope = events_pb2.Envelope.FromString(envelope_bytes)
    return tracing.publish_span(subject, envelope.traceparent, envelope.tracestate)


def end_publish_span(span: Span, result: object) -> None:
    if isinstance(result, BaseException):
        span.set_status(Status(StatusCode.ERROR, type(result).__name__))
    span.end()


def end_event_span(span: Span | None, failure: BaseException | None) -> None:
    if span is None:
        return
    if failure is not None:  # its type only: an error's text may hold what a user wrote
        span.set_status(Status(StatusCode.ERROR, type(failure).__name__))
    span.end()


def within(span: Span | None) -> Any:
    """A context manager: `span` current inside (not ended on leaving, and told nothing of an
    error's text, which may hold what a user wrote), or nothing if None."""
    if span is None:
        return nullcontext()
    return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)


def parent_of(traceparent: str, tracestate: str = "") -> otel_context.Context:
    carrier = {TRACEPARENT: traceparent, TRACESTATE: tracestate} if tracestate else {TRACEPARENT: traceparent}
    return _propagator.extract(carrier)


def _event_context(headers: Mapping[str, str] | None, envelope: Any) -> otel_context.Context:
    if headers and headers.get(TRACEPARENT):
        return parent_of(headers[TRACEPARENT], headers.get(TRACESTATE, ""))
    return parent_of(envelope.traceparent, envelope.tracestate)


def current_traceparent() -> tuple[str, str]:
    """(traceparent, tracestate) of the current span, ("", "") when there is none: what an
    event written now, or a call made now, carries on."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return "", ""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT, ""), carrier.get(TRACESTATE, "")


def outgoing_metadata() -> tuple[tuple[str, str], ...] | None:
    """The trace context for a call made now (gRPC metadata), None when there is none."""
    traceparent, tracestate = current_traceparent()
    if not traceparent:
        return None
    return ((TRACEPARENT, traceparent), (TRACESTATE, tracestate)) if tracestate else ((TRACEPARENT, traceparent),)


def span_headers(span: Span) -> dict[str, str]:
    """A span's context as message headers (what a consumer continues)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier
