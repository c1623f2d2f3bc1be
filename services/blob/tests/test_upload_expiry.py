"""Uploads that end without completing: cancelled by the client, or expired by the sweep once
abandoned (never under a writer that still holds them) — each closes once, aborts its S3 parts
and gives its reservation back."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import clock_moved, eventually, expect_error
from cumulo_sdk import CumuloRpcError

from .conftest import PART, sha, until_dry

# --- cancelling and expiry ---------------------------------------------------------------


async def test_cancelling_releases_the_reservation_and_closes_the_upload(alice, peek):
    payload = os.urandom(PART + 5)
    started = await alice.start("cancelled.bin", payload)
    partial = await alice.send(started.upload_id, 0, payload[: PART + 1])
    assert partial.committed_offset == PART
    assert (await alice.usage()).reserved == len(payload)
    await alice.cancel(started.upload_id)
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (0, 0)
    await expect_error(alice.send(started.upload_id, PART, payload[PART:]), grpc.StatusCode.FAILED_PRECONDITION, reason="UPLOAD_CLOSED")
    await alice.cancel(started.upload_id)  # cancelling twice is harmless
    assert (await alice.usage()).reserved == 0
    assert await alice.names() == []
    assert await peek.multipart_uploads(alice.account_id) == []
    assert await peek.objects(alice.account_id) == []


async def test_cancelling_a_completed_upload_keeps_the_file(alice):
    node = await alice.put("kept.txt", b"kept")
    uploads = await alice.start("other.txt", b"other")
    done = await alice.send(uploads.upload_id, 0, b"other")
    await alice.cancel(uploads.upload_id)
    assert sorted(await alice.names()) == ["kept.txt", "other.txt"]
    assert await alice.read(done.file.node_id) == b"other"
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (len(b"kept") + len(b"other"), 0)
    assert node.name == "kept.txt"


async def test_an_abandoned_upload_expires_and_releases_its_reservation(alice, blob, blob_clock, peek):
    payload = os.urandom(PART + 100)
    started = await alice.start("abandoned.bin", payload)
    await alice.send(started.upload_id, 0, payload[:PART])
    fresh = await alice.start("fresh.bin", size=500, sha256="1" * 64)
    # Not yet overdue: kept.
    with clock_moved(blob_clock, dt.timedelta(hours=23)):
        await until_dry(blob.app.uploads.expire_abandoned)
    assert (await alice.usage()).reserved == len(payload) + 500
    # Past its expiry: closed, reservation released, S3 parts aborted.
    with clock_moved(blob_clock, dt.timedelta(hours=24, minutes=1)):
        swept = await until_dry(blob.app.uploads.expire_abandoned)
    assert swept >= 2
    assert await peek.upload_state(started.upload_id) == "expired"
    assert await peek.upload_state(fresh.upload_id) == "expired"
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (0, 0)
    await expect_error(alice.send(started.upload_id, PART, payload[PART:]), grpc.StatusCode.FAILED_PRECONDITION, reason="UPLOAD_CLOSED")
    assert await peek.multipart_uploads(alice.account_id) == []
    assert await alice.names() == []


class HeldWriter:
    """An UploadChunks stream that sends its first bytes, then waits to be let go."""

    def __init__(self, owner, peek, upload_id: str, payload: bytes, head: int) -> None:
        self.owner = owner
        self.peek = peek
        self.upload_id = upload_id
        self.go_on = asyncio.Event()
        self.call = None

        async def messages():
            yield blob_pb2.UploadChunksRequest(upload_id=upload_id, offset=0, data=payload[:head])
            await self.go_on.wait()
            yield blob_pb2.UploadChunksRequest(data=payload[head:])

        self.messages = messages

    async def start(self) -> None:
        assert not await self.peek.writer_holds(self.upload_id)
        self.call = asyncio.ensure_future(self.owner.stub.UploadChunks(self.messages(), metadata=await self.owner.metadata(), timeout=60))

        async def writing():
            assert not self.call.done(), self.call
            return await self.peek.writer_holds(self.upload_id)

        await eventually(writing, timeout=20, what="the held writer to hold the upload")

    async def finish(self):
        self.go_on.set()
        try:
            return await asyncio.wait_for(self.call, 60)
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None


async def test_an_upload_being_written_is_not_expired_under_its_writer(alice, blob, blob_clock, peek):
    """expire_abandoned promises to skip an upload whose writer holds it."""
    payload = os.urandom(1000)
    started = await alice.start("slow.bin", payload)
    writer = HeldWriter(alice, peek, started.upload_id, payload, head=10)
    await writer.start()
    try:
        with clock_moved(blob_clock, dt.timedelta(hours=25)):
            await until_dry(blob.app.uploads.expire_abandoned)
        assert await peek.upload_state(started.upload_id) == "open"
    finally:
        (done,) = await asyncio.gather(writer.finish(), return_exceptions=True)
    assert not isinstance(done, BaseException), done
    assert done.file.sha256 == sha(payload)
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (1000, 0)


async def test_a_reservation_is_released_once_even_if_the_upload_expires_while_written(alice, blob, blob_clock, peek):
    payload = os.urandom(1000)
    started = await alice.start("wrong-and-slow.bin", payload, sha256=sha(b"not these bytes"))
    writer = HeldWriter(alice, peek, started.upload_id, payload, head=10)
    await writer.start()
    try:
        with clock_moved(blob_clock, dt.timedelta(hours=25)):
            await until_dry(blob.app.uploads.expire_abandoned)
        other = await alice.start("other.bin", size=5000, sha256="2" * 64)
    finally:
        with pytest.raises(CumuloRpcError):
            await writer.finish()
    # Only the other upload's bytes are still set aside.
    assert (await alice.usage()).reserved == 5000
    await alice.cancel(other.upload_id)
    assert (await alice.usage()).reserved == 0


async def test_sending_to_an_overdue_upload_is_refused_before_the_sweep(alice, blob_clock, clock):
    started = await alice.start("late.bin", b"late")
    token = await alice.token()
    # Both clocks move, so the (re-issued) token is still good at the blob service.
    clock.advance(dt.timedelta(hours=25))
    blob_clock.advance(dt.timedelta(hours=25))
    await alice.client.refresh()
    assert await alice.token() != token
    await expect_error(alice.send(started.upload_id, 0, b"late"), grpc.StatusCode.FAILED_PRECONDITION, reason="UPLOAD_CLOSED")
