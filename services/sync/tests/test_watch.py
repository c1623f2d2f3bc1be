"""Watch: a device hears which zone changed as soon as another device pushes, whichever
replica either is connected to; plus the tombstone horizon and the sync quota."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator

import grpc
import pytest

from cumulo.sync.v1 import sync_pb2, sync_pb2_grpc
from cumulo_devstack.servers import Process, free_port, wait_for_port
from cumulo_devstack.testing import expect_error, open_channel, serves_service, transport_for
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sdk.client import TokenStore
from cumulo_sync.domain import rules

WAIT = 15.0  # generous: a shared 2-core machine; the product's aim is well under a second


def save(record_id: str, payload: bytes = b"x", tag: str = "") -> sync_pb2.RecordSave:
    return sync_pb2.RecordSave(record_id=record_id, record_type="note", payload=payload, change_tag=tag)


async def next_event(stream: AsyncIterator[sync_pb2.WatchResponse], wanted: int) -> sync_pb2.WatchResponse:
    async def first() -> sync_pb2.WatchResponse:
        async for message in stream:
            if message.event == wanted:
                return message
        raise AssertionError("the watch stream ended")

    return await asyncio.wait_for(first(), WAIT)


async def test_a_push_is_announced_to_the_other_devices_watch(phone, laptop) -> None:
    stream = laptop.client.sync.watch(device_id="laptop")
    await next_event(stream, sync_pb2.WATCH_EVENT_WATCHING)
    pushed = await phone.client.sync.push("notes", [save("n1")], device_id="phone")
    change = await next_event(stream, sync_pb2.WATCH_EVENT_ZONE_CHANGED)
    assert change.zone == "notes" and change.change_token == pushed.change_token
    # The laptop's own push is not echoed back to it; the phone's next one is.
    await laptop.client.sync.push("notes", [save("n2")], device_id="laptop")
    await phone.client.sync.push("calendar", [save("e1")], device_id="phone")
    change = await next_event(stream, sync_pb2.WATCH_EVENT_ZONE_CHANGED)
    assert change.zone == "calendar"
    await stream.aclose()


async def test_watch_can_be_limited_to_some_zones(phone, laptop) -> None:
    stream = laptop.client.sync.watch(["calendar"])
    await next_event(stream, sync_pb2.WATCH_EVENT_WATCHING)
    await phone.client.sync.push("notes", [save("n1")])
    await phone.client.sync.push("calendar", [save("e1")])
    change = await next_event(stream, sync_pb2.WATCH_EVENT_ZONE_CHANGED)
    assert change.zone == "calendar"
    await stream.aclose()


async def test_a_conflict_only_push_announces_nothing(phone, laptop) -> None:
    made = await phone.client.sync.push("notes", [save("n1")])
    stream = laptop.client.sync.watch()
    await next_event(stream, sync_pb2.WATCH_EVENT_WATCHING)
    clash = await phone.client.sync.push("notes", [save("n1", b"again")])
    assert clash.results[0].status == sync_pb2.PUSH_STATUS_CONFLICT
    await phone.client.sync.push("contacts", [save("c1")])
    change = await next_event(stream, sync_pb2.WATCH_EVENT_ZONE_CHANGED)
    assert change.zone == "contacts", "the conflict was announced as a change"
    assert made.change_token
    await stream.aclose()


@pytest.fixture
async def replica_process(sync, infra, auth, blob, lifecycle_target, tmp_path) -> AsyncIterator[tuple[str, Process]]:
    """Another sync process on the same database and NATS: what a second pod is. Its drain
    grace is the product's (15 s), so a stream ended sooner was ended on purpose."""
    port = free_port()
    env = {
        **os.environ,
        **infra.service_environ(
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_BLOB_TARGET=blob.target,
            CUMULO_LIFECYCLE_TARGET=lifecycle_target,
            CUMULO_GRPC_PORT=str(port),
        ),
        "DATABASE_URL": sync.app.settings.platform.database_url,
        "CUMULO_DRAIN_GRACE_SECONDS": "15",
    }
    process = Process("sync-2", [sys.executable, "-m", "cumulo_sync"], tmp_path / "sync-2.log", env=env)
    process.start()
    try:
        await asyncio.to_thread(wait_for_port, port, process=process.process, timeout=60)
        serves_service(f"127.0.0.1:{port}", "sync")
        yield f"127.0.0.1:{port}", process
    finally:
        await asyncio.to_thread(process.stop, 30)


@pytest.fixture
def second_replica(replica_process: tuple[str, Process]) -> str:
    return replica_process[0]


async def test_watch_on_one_replica_hears_a_push_to_another(phone, laptop, second_replica, tmp_path) -> None:
    # The laptop talks to the second process directly (same session), the phone through the gateway.
    direct = Cumulo(second_replica, transport=transport_for(second_replica), store=TokenStore(laptop.client.store.path))
    try:
        stream = direct.sync.watch()
        await next_event(stream, sync_pb2.WATCH_EVENT_WATCHING)
        pushed = await phone.client.sync.push("contacts", [save("ann")], device_id="phone")
        change = await next_event(stream, sync_pb2.WATCH_EVENT_ZONE_CHANGED)
        assert (change.zone, change.change_token) == ("contacts", pushed.change_token)
        # And the other way round: a push to the second replica reaches a watch through the gateway.
        back = phone.client.sync.watch()
        await next_event(back, sync_pb2.WATCH_EVENT_WATCHING)
        await direct.sync.push("notes", [save("n")], device_id="laptop")
        assert (await next_event(back, sync_pb2.WATCH_EVENT_ZONE_CHANGED)).zone == "notes"
        records, _ = await phone.client.sync.fetch_all("notes")
        assert [r.record_id for r in records] == ["n"]
        await stream.aclose()
        await back.aclose()
    finally:
        await direct.close()


async def test_a_quiet_watch_stream_sends_heartbeats(phone) -> None:
    """The session's heartbeat is PT1S (the product's PT30S keeps proxies from closing idle streams)."""
    stream = phone.client.sync.watch()
    await next_event(stream, sync_pb2.WATCH_EVENT_WATCHING)
    for _ in range(2):
        assert (await next_event(stream, sync_pb2.WATCH_EVENT_HEARTBEAT)).zone == ""
    await stream.aclose()


async def test_a_token_from_before_pruned_tombstones_expires(phone, laptop, sync) -> None:
    made = await phone.client.sync.push("contacts", [save("a"), save("b")])
    _, old_token = await laptop.client.sync.fetch_all("contacts")
    await phone.client.sync.push("contacts", deletes=[sync_pb2.RecordDelete(record_id="a", change_tag=made.results[0].change_tag)])
    _, fresh_token = await laptop.client.sync.fetch_all("contacts", old_token)
    clock = sync.clock
    before = clock.offset
    clock.offset = before + sync.app.settings.tombstone_retention + dt.timedelta(minutes=1)
    try:
        pruned = await sync.app.cleanup.prune_tombstones()
    finally:
        clock.offset = before
    assert pruned >= 1
    await expect_error(
        laptop.client.sync.fetch("contacts", old_token), grpc.StatusCode.FAILED_PRECONDITION, reason="CHANGE_TOKEN_EXPIRED"
    )
    # A token from after the deletion is still good, and a full resync works.
    assert (await laptop.client.sync.fetch("contacts", fresh_token)).records == []
    everything, _ = await laptop.client.sync.fetch_all("contacts")
    assert [(r.record_id, r.deleted) for r in everything] == [("b", False)]


async def test_a_deleted_zones_tokens_expire_and_its_name_is_free(phone, laptop) -> None:
    await phone.client.sync.push("wifi", [save("home"), save("office")])
    _, token = await laptop.client.sync.fetch_all("wifi")
    assert await phone.client.sync.delete_zone("wifi") == 2
    await expect_error(laptop.client.sync.fetch("wifi", token), grpc.StatusCode.FAILED_PRECONDITION, reason="CHANGE_TOKEN_EXPIRED")
    await phone.client.sync.push("wifi", [save("cafe")])
    records, new_token = await laptop.client.sync.fetch_all("wifi")
    assert [r.record_id for r in records] == ["cafe"]
    await expect_error(laptop.client.sync.fetch("wifi", token), grpc.StatusCode.FAILED_PRECONDITION, reason="CHANGE_TOKEN_EXPIRED")
    # The deleted zone's records are gone, and their cost with them: one record of 1 byte is left.
    assert (await phone.client.sync.usage()).used == 1 + rules.RECORD_OVERHEAD_BYTES
    await expect_error(phone.client.sync.delete_zone("nope"), grpc.StatusCode.NOT_FOUND, reason="ZONE_NOT_FOUND")


async def test_the_sync_quota_refuses_a_push_that_would_exceed_it(phone, sync) -> None:
    quota = sync.app.settings.quota_bytes
    limit = sync.app.settings.max_payload_bytes
    # Fill up to just under the quota straight in the usage table: a GiB of pushes is slow.
    # A new record costs its payload and the overhead of its row.
    import uuid

    import sqlalchemy as sa

    from cumulo_sync.adapters.tables import usage

    async with sync.app.db.unit_of_work() as uow:
        await uow.execute(sa.insert(usage).values(account_id=uuid.UUID(phone.account_id), used=quota - 10 - rules.RECORD_OVERHEAD_BYTES))
        await uow.commit()
    err = await expect_error(
        phone.client.sync.push("big", [save("r", b"x" * 11)]), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="QUOTA_EXCEEDED"
    )
    assert err.metadata["quota"] == str(quota)
    assert (await phone.client.sync.push("big", [save("r", b"x" * 10)])).results[0].status == sync_pb2.PUSH_STATUS_SAVED
    assert (await phone.client.sync.usage()).used == quota
    # Shrinking and deleting are always allowed, and free the space (the tombstone keeps its row's cost).
    tag = (await phone.client.sync.get("big", ["r"]))[0].change_tag
    await phone.client.sync.push("big", deletes=[sync_pb2.RecordDelete(record_id="r", change_tag=tag)])
    assert (await phone.client.sync.usage()).used == quota - 10
    assert limit > 11


async def test_a_stopping_replica_ends_its_watch_streams_at_once(laptop, replica_process) -> None:
    """SIGTERM ends open Watch streams with UNAVAILABLE SERVER_STOPPING (devices reconnect to
    another replica) instead of holding them until the drain grace is over."""
    target, process = replica_process
    token = await laptop.client.access_token()
    async with open_channel(target) as channel:
        stream = sync_pb2_grpc.SyncServiceStub(channel).Watch(sync_pb2.WatchRequest(), metadata=laptop.client.metadata(token))
        first = await asyncio.wait_for(stream.read(), WAIT)
        assert first.event == sync_pb2.WATCH_EVENT_WATCHING
        stopping = asyncio.create_task(asyncio.to_thread(process.stop, 30))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while True:
                message = await asyncio.wait_for(stream.read(), WAIT)
                if message is grpc.aio.EOF:
                    break
        await stopping
    error = CumuloRpcError.from_rpc_error(ended.value)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "SERVER_STOPPING")
