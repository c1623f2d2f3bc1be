"""Every service answers `/metrics` on its own port (never through the gateway), after a
session that touched each: its calls by method and status code with their durations, its
outbox, its consumers and its database pool (issue 20 §1, the platform's part)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import urllib.request

import grpc

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2
from cumulo.moderation.v1 import moderation_pb2
from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.testing import eventually
from cumulo_sdk.devices import DeviceAgent


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert answer.status == 200
        return answer.read().decode()


def value(text: str, series: str) -> float | None:
    """The sample `series` (name and labels as exposed), or None if absent."""
    found = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else None


async def test_every_service_exposes_its_calls_outbox_consumers_and_pool(people, auth, blob, lifecycle, sync, locator, moderation, tmp_path):
    person = await people.new()
    (tmp_path / "a.txt").write_bytes(b"counted")
    await person.client.files.upload(tmp_path / "a.txt")
    await person.client.sync.push("notes", [sync_pb2.RecordSave(record_id="r1", record_type="note", payload=b"{}")])
    await DeviceAgent(person.client).register("phone-m", name="phone")
    await person.client.call(person.client.complaints.stub.ListMyCases, moderation_pb2.ListMyCasesRequest())
    await person.client.call(person.client.lifecycle.GetAccountState, lifecycle_pb2.GetAccountStateRequest())

    called = [
        (auth, "/cumulo.auth.v1.AuthService/Login"),
        (blob, "/cumulo.blob.v1.BlobService/StartUpload"),
        (sync, "/cumulo.sync.v1.SyncService/Push"),
        (locator, "/cumulo.locator.v1.DeviceAgentService/RegisterDevice"),
        (moderation, "/cumulo.moderation.v1.ComplaintService/ListMyCases"),
        (lifecycle, "/cumulo.lifecycle.v1.LifecycleService/GetAccountState"),
    ]
    for running, method in called:
        metrics = running.app.runtime.metrics
        assert metrics.port, running.target
        name = metrics.service

        durable = f"{name}-accounts" if name == "lifecycle" else f"{name}-purge"

        async def complete(port: int = metrics.port, durable: str = durable) -> str:
            text = await asyncio.to_thread(scrape, port)
            # The gauges come with a refresh (every 5 s); a consumer once it exists.
            return text if value(text, "cumulo_outbox_depth") is not None and f'cumulo_consumer_pending{{consumer="{durable}"}}' in text else ""

        text = await eventually(complete, timeout=30, what=f"{name}'s metrics")
        assert (value(text, f'cumulo_rpc_total{{code="OK",method="{method}"}}') or 0) >= 1, (name, method)
        assert (value(text, f'cumulo_rpc_duration_seconds_count{{method="{method}"}}') or 0) >= 1, name
        assert value(text, "cumulo_outbox_oldest_age_seconds") is not None and value(text, "cumulo_db_pool_in_use") is not None
        assert value(text, f'cumulo_consumer_redelivered{{consumer="{durable}"}}') is not None, name
        assert "cumulo_outbox_publish_errors_total" in text
    # Each service's own gauges, from its tables.
    for running in (lifecycle, blob, locator, moderation):
        # Now rather than in 30 s (the job's pace for tables): a statement that does not run fails here.
        async with running.app.db.engine.connect() as conn:
            await running.app.runtime.metrics._refresh_sql(conn)
    texts = {r.app.runtime.metrics.service: await asyncio.to_thread(scrape, r.app.runtime.metrics.port) for r in (lifecycle, blob, locator, moderation)}
    assert (value(texts["lifecycle"], 'cumulo_lifecycle_accounts{state="active"}') or 0) >= 1
    for name, series in (
        ("lifecycle", "cumulo_lifecycle_transitions_due"), ("lifecycle", "cumulo_lifecycle_purges_in_flight"),
        ("lifecycle", "cumulo_lifecycle_purges_stuck"), ("blob", "cumulo_blob_uploads_open"),
    ):
        assert value(texts[name], series) is not None, (name, series)
    for name, family in (
        ("lifecycle", "cumulo_lifecycle_notices"), ("blob", "cumulo_blob_exports"), ("locator", "cumulo_locator_commands"),
        ("moderation", "cumulo_moderation_open_cases"),
    ):
        assert f"# TYPE {family} gauge" in texts[name], (name, family)
    # A refusal is counted with its code (no token: UNAUTHENTICATED), as the alerts on error rates want.
    anonymous_before = value(await asyncio.to_thread(scrape, blob.app.runtime.metrics.port),
                             'cumulo_rpc_total{code="UNAUTHENTICATED",method="/cumulo.blob.v1.BlobService/GetUsage"}') or 0
    stub = person.client.files.stub
    try:
        await stub.GetUsage(blob_pb2.GetUsageRequest(), metadata=[("x-cumulo-client-id", "cumulo-cli")], timeout=10)
    except grpc.aio.AioRpcError as refused:
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    text = await asyncio.to_thread(scrape, blob.app.runtime.metrics.port)
    assert value(text, 'cumulo_rpc_total{code="UNAUTHENTICATED",method="/cumulo.blob.v1.BlobService/GetUsage"}') == anonymous_before + 1
    # ... and with its reason, as the refusals that matter to operators are (QUOTA_EXCEEDED ...).
    assert (value(text, 'cumulo_rpc_refusals_total{method="/cumulo.blob.v1.BlobService/GetUsage",reason="TOKEN_MISSING"}') or 0) >= 1
    assert "# TYPE cumulo_events_dead_lettered_total counter" in text
    assert "# TYPE cumulo_lifecycle_sweep_duration_seconds histogram" in texts["lifecycle"]


async def test_blob_counts_the_bytes_through_it_and_the_streams_in_flight(people, blob, tmp_path):
    """Bytes in (upload pieces received), bytes out (gRPC downloads; signed URLs never pass
    blob), and the streams open now: a client that starts an upload and sends nothing more is
    one until it goes away."""
    port = blob.app.runtime.metrics.port
    person = await people.new()
    before = await asyncio.to_thread(scrape, port)
    content = secrets.token_bytes(300_000)
    (tmp_path / "b.bin").write_bytes(content)
    node = await person.client.files.upload(tmp_path / "b.bin")
    stub = blob_pb2_grpc.BlobServiceStub(person.client.channel)
    token = await person.client.access_token()
    got = b"".join([m.data async for m in stub.Download(blob_pb2.DownloadRequest(node_id=node.node_id), metadata=person.client.metadata(token))])
    assert got == content
    after = await asyncio.to_thread(scrape, port)
    assert (value(after, "cumulo_blob_received_bytes_total") or 0) - (value(before, "cumulo_blob_received_bytes_total") or 0) >= len(content)
    assert (value(after, "cumulo_blob_sent_bytes_total") or 0) - (value(before, "cumulo_blob_sent_bytes_total") or 0) >= len(content)

    start = await person.client.call(
        stub.StartUpload,
        blob_pb2.StartUploadRequest(name="stalled.bin", size=1000, sha256=hashlib.sha256(b"s" * 1000).hexdigest()),
    )
    idle_before = value(after, "cumulo_blob_uploads_in_flight") or 0
    release = asyncio.Event()

    async def stalled():
        yield blob_pb2.UploadChunksRequest(upload_id=start.upload_id, offset=0, data=b"s" * 10)
        await release.wait()

    call = stub.UploadChunks(stalled(), metadata=person.client.metadata(token))

    async def in_flight() -> bool:
        return (value(await asyncio.to_thread(scrape, port), "cumulo_blob_uploads_in_flight") or 0) >= idle_before + 1

    await eventually(in_flight, timeout=20, what="the stalled upload to count as in flight")
    call.cancel()
    release.set()

    async def gone() -> bool:
        return (value(await asyncio.to_thread(scrape, port), "cumulo_blob_uploads_in_flight") or 0) <= idle_before

    await eventually(gone, timeout=20, what="the abandoned upload to stop counting")
