"""Traces on the whole cloud as separate processes, with every span sent to a collector in
this test (OTLP over gRPC, as an operator's collector takes them): one request is followed
from the gateway (Envoy) into blob, across a gRPC hop to auth, and through the outbox and NATS
into the lifecycle's consumer of the last-access event it caused."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import pathlib
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.locator.v1 import locator_pb2
from cumulo_devstack.stack import Cloud, Infra
from cumulo_devstack.testing import Member, eventually, new_member, rpc, unique_email
from cumulo_devstack.testing.otlp import ReceivedSpan, SpanCollector
from cumulo_platform.tracing import TraceSettings
from cumulo_sdk import CumuloRpcError
from cumulo_sdk.devices import DeviceAgent

ACCESS_INTERVAL = 0.5  # CUMULO_LAST_ACCESS_INTERVAL below: a use this long after the last is told again
SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP's span kinds


@dataclasses.dataclass
class Traced:
    cloud: Cloud
    gateway: str
    collector: SpanCollector


@pytest.fixture(scope="module")
def traced(infra: Infra) -> Iterator[Traced]:
    with SpanCollector() as collector:
        cloud = Cloud(prefix="cumulo-traces-", tls=infra.tls, identities=infra.identities)
        traces = TraceSettings(endpoint=collector.endpoint, sample_ratio=1.0, export_delay_seconds=0.2)
        try:
            cloud.start_services(
                CUMULO_OTLP_ENDPOINT=traces.endpoint, CUMULO_TRACE_EXPORT_DELAY="PT0.2S", CUMULO_LAST_ACCESS_INTERVAL=f"PT{ACCESS_INTERVAL}S",
            )
            yield Traced(cloud, cloud.start_gateway(traces=traces), collector)
        finally:
            cloud.stop()


@pytest.fixture
async def person(traced: Traced, tmp_path: pathlib.Path) -> AsyncIterator[Member]:
    member = await new_member(traced.gateway, tmp_path)
    try:
        yield member
    finally:
        await member.client.close()


def client_traceparent() -> tuple[str, str]:
    """A client's own trace context, sampled: (header, trace id). The edge never continues it."""
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01", trace_id


async def blob_call(person: Member, method_name: str, request: object) -> tuple[Any, str, int]:
    """A blob call through the gateway that comes with a trace context of the client's own:
    (the answer, the client's trace id, when it was made in ns)."""
    header, client_trace = client_traceparent()
    stub = blob_pb2_grpc.BlobServiceStub(person.client.channel)
    token = await person.client.access_token()
    began = time.time_ns()
    answer = await rpc(getattr(stub, method_name), request, metadata=[*person.client.metadata(token), ("traceparent", header)])
    return answer, client_trace, began


def one(spans: list[ReceivedSpan], **match: object) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, key) == value for key, value in match.items())]
    assert len(found) == 1, (match, [(s.service, s.name, s.kind) for s in spans])
    return found[0]


async def call_span(collector: SpanCollector, service: str, method: str, since: int) -> ReceivedSpan:
    """The server span of the one call of `method` made since `since` (each test makes its own)."""

    async def arrived() -> list[ReceivedSpan]:
        return [s for s in collector.spans() if s.service == service and s.name == method and s.start_unix_nano >= since]

    (span,) = await eventually(arrived, timeout=30, what=f"the span of {method}")
    return span


async def spans_of(collector: SpanCollector, trace_id: str, *wanted: tuple[str, str]) -> list[ReceivedSpan]:
    """The trace's spans once every (service, name prefix) wanted has arrived."""

    async def arrived() -> list[ReceivedSpan]:
        spans = collector.spans(trace_id)
        have = all(any(s.service == service and s.name.startswith(name) for s in spans) for service, name in wanted)
        return spans if have else []

    return await eventually(arrived, timeout=30, what=f"the spans {wanted} of trace {trace_id}")


async def test_one_trace_follows_a_call_from_the_gateway_through_blob_and_nats_to_the_lifecycle(traced: Traced, person: Member) -> None:
    # Past the interval, the next use is told to the lifecycle again: by this call.
    await asyncio.sleep(ACCESS_INTERVAL * 3)
    answer, client_trace, began = await blob_call(person, "ListFolder", blob_pb2.ListFolderRequest())
    assert [n.node_id for n in answer.nodes] == [person.file_id]
    call = await call_span(traced.collector, "blob", "cumulo.blob.v1.BlobService/ListFolder", began)

    spans = await spans_of(
        traced.collector, call.trace_id,
        ("gateway", ""), ("blob", "publish "), ("lifecycle", "lifecycle-access process"),
    )
    edge = one(spans, service="gateway")
    assert edge.parent_span_id == "" and call.trace_id != client_trace  # the edge starts the trace, whatever came
    assert call.kind == SERVER and call.parent_span_id == edge.span_id
    assert call.attributes["rpc.grpc.status_code"] == "OK"
    publish = one(spans, service="blob", name="publish cumulo.events.blob.access.recorded")
    assert publish.kind == PRODUCER and publish.parent_span_id == call.span_id  # written in the call, published later
    applied = one(spans, service="lifecycle", name="lifecycle-access process access.recorded")
    assert applied.kind == CONSUMER and applied.parent_span_id == publish.span_id  # through NATS
    assert applied.attributes["messaging.consumer.group.name"] == "lifecycle-access"
    assert traced.collector.spans(client_trace) == []  # nothing anywhere continued the client's


async def test_a_call_to_another_service_is_in_the_same_trace(traced: Traced, person: Member) -> None:
    """Blob asks auth who the recipient is (a gRPC hop inside): auth's span is under blob's.
    Nobody has the address, so the call is refused: traced all the same."""
    with pytest.raises(CumuloRpcError) as refused:
        await blob_call(person, "ShareWithUser", blob_pb2.ShareWithUserRequest(node_id=person.file_id, recipient=unique_email()))
    assert refused.value.reason == "RECIPIENT_NOT_FOUND"
    began = time.time_ns() - 60 * 10**9  # the call's start is not known here: the one ShareWithUser of this module
    share = await call_span(traced.collector, "blob", "cumulo.blob.v1.BlobService/ShareWithUser", began)
    spans = await spans_of(traced.collector, share.trace_id, ("auth", "cumulo.auth.v1.AuthInternalService/FindAccount"))
    found = one(spans, service="auth", name="cumulo.auth.v1.AuthInternalService/FindAccount")
    assert found.kind == SERVER and found.parent_span_id == share.span_id
    assert found.attributes["rpc.grpc.status_code"] == "NOT_FOUND" and found.status_code != 2  # a miss is no error


async def test_a_refused_call_is_traced_as_an_error_and_a_garbage_context_changes_nothing(traced: Traced, person: Member) -> None:
    """An attacker's garbage `traceparent` is dropped at the edge like any other, and a refused
    call's span says it failed, with its code and nothing of what was sent."""
    stub = blob_pb2_grpc.BlobServiceStub(person.client.channel)
    token = await person.client.access_token()
    garbage = "00-" + "z" * 32 + "-" + "1" * 16 + "-01"
    bad_node = "not-a-node-" + secrets.token_hex(4)
    began = time.time_ns()
    with pytest.raises(CumuloRpcError) as refused_with:
        await rpc(
            stub.Stat, blob_pb2.StatRequest(node_id=bad_node),
            metadata=[*person.client.metadata(token), ("traceparent", garbage), ("tracestate", "x=" + "y" * 4000)],
        )
    assert refused_with.value.code == grpc.StatusCode.INVALID_ARGUMENT
    span = await call_span(traced.collector, "blob", "cumulo.blob.v1.BlobService/Stat", began)
    assert len(span.trace_id) == 32 and span.parent_span_id  # under the edge's span
    assert span.attributes["rpc.grpc.status_code"] == "INVALID_ARGUMENT"
    assert span.status_code == 2  # ERROR
    assert bad_node not in repr(span) and "yyyy" not in repr(traced.collector.spans(span.trace_id))


async def test_what_a_report_causes_is_in_the_reporting_calls_trace(traced: Traced, person: Member) -> None:
    """Location reports are written in groups by a writer that serves many calls: the event a
    report causes (a lost device found) still continues that report's own trace."""
    agent = DeviceAgent(person.client)
    await agent.register("traced-phone", name="phone")
    await person.client.devices.lost_mode("traced-phone", message="Lost!", phone="+86 138 0013 8000")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC))
    began = time.time_ns()
    await agent.report("traced-phone", [locator_pb2.Location(
        latitude=31.23, longitude=121.47, accuracy=12.0, battery=80, source=locator_pb2.LOCATION_SOURCE_GPS, measured_at=stamp,
    )])
    report = await call_span(traced.collector, "locator", "cumulo.locator.v1.DeviceAgentService/ReportLocations", began)
    spans = await spans_of(traced.collector, report.trace_id, ("locator", "publish cumulo.events.locator.device.found"))
    publish = one(spans, service="locator", name="publish cumulo.events.locator.device.found")
    assert publish.parent_span_id == report.span_id


async def test_a_download_by_signed_url_leaves_no_span_with_its_signature(traced: Traced, person: Member, tmp_path: pathlib.Path) -> None:
    """The edge's span of a request would carry its URL as a tag: the object store's route is
    never traced, so a signed URL (its credential) reaches no collector."""
    back = tmp_path / "back.jpg"
    await person.client.files.download(person.file_id, back)
    assert back.read_bytes() == person.content
    # Spans leave Envoy in order: once a later call's edge span is here, the download's would be.
    _, _, began = await blob_call(person, "GetUsage", blob_pb2.GetUsageRequest())
    later = await call_span(traced.collector, "blob", "cumulo.blob.v1.BlobService/GetUsage", began)
    await spans_of(traced.collector, later.trace_id, ("gateway", ""))
    assert not [s for s in traced.collector.spans() if "X-Amz" in repr(s) or "cumulo-blobs/" in repr(s)]


def test_the_gateway_pod_renders_the_edges_tracing_from_the_cluster_settings(tmp_path: pathlib.Path) -> None:
    """The gateway's init container reads the config map: with a collector named, Envoy's
    config sends its spans there; a malformed address stops the render, naming the variable."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
    out = tmp_path / "envoy.json"
    rendered = subprocess.run(
        [sys.executable, "-m", "cumulo_gateway", "render-k8s", "--out", str(out)],
        env={**environ, "CUMULO_OTLP_ENDPOINT": "http://otel-collector.monitoring:4317", "CUMULO_TRACE_SAMPLE_RATIO": "0.05"},
        capture_output=True, text=True, timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    config = json.loads(out.read_text())
    [public] = [listener for listener in config["static_resources"]["listeners"] if listener["name"] == "public"]
    tracing = public["filter_chains"][0]["filters"][0]["typed_config"]["tracing"]
    assert tracing["provider"]["name"] == "envoy.tracers.opentelemetry" and tracing["random_sampling"]["value"] == 5
    [otlp] = [c for c in config["static_resources"]["clusters"] if c["name"] == "otlp"]
    assert otlp["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {
        "address": "otel-collector.monitoring", "port_value": 4317,
    }
    untraced = subprocess.run(
        [sys.executable, "-m", "cumulo_gateway", "render-k8s"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert untraced.returncode == 0 and "opentelemetry" not in untraced.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "cumulo_gateway", "render-k8s"], env={**environ, "CUMULO_OTLP_ENDPOINT": "otel-collector:4317"},
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2 and "CUMULO_OTLP_ENDPOINT" in refused.stderr
