"""Uploads that go wrong (a wrong digest, more bytes than declared, a wrong offset, a second
writer) leave nothing behind and give their reservation back; an interrupted upload resumes
from the committed offset, in steps of any size."""

from __future__ import annotations

import asyncio
import os

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import eventually, expect_error

from .conftest import MIB, PART, sha

# --- failures that leave nothing behind ---------------------------------------------------


async def test_bytes_with_another_digest_are_refused_and_leave_nothing(alice, peek):
    payload = os.urandom(PART + 4321)
    started = await alice.start("liar.bin", payload, sha256=sha(b"something else"))
    assert (await alice.usage()).reserved == len(payload)
    await expect_error(
        alice.send(started.upload_id, 0, payload), grpc.StatusCode.INVALID_ARGUMENT, reason="SHA256_MISMATCH", field="sha256"
    )
    assert await alice.names() == []
    assert await peek.file_nodes(alice.account_id) == 0
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (0, 0)
    assert await peek.objects(alice.account_id) == []
    assert await peek.multipart_uploads(alice.account_id) == []
    # The upload is over: sending again does not revive it.
    await expect_error(alice.send(started.upload_id, 0, payload[:1000]), grpc.StatusCode.FAILED_PRECONDITION, reason="UPLOAD_CLOSED")


async def test_more_bytes_than_declared_are_refused(alice):
    payload = os.urandom(1000)
    started = await alice.start("short.bin", payload)
    await expect_error(alice.send(started.upload_id, 0, payload + b"!"), grpc.StatusCode.INVALID_ARGUMENT, field="data")
    assert await alice.names() == []
    # Nothing was committed; the right bytes still complete it.
    assert (await alice.get_upload(started.upload_id)).committed_offset == 0
    done = await alice.send(started.upload_id, 0, payload)
    assert await alice.read(done.file.node_id) == payload
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (1000, 0)


async def test_more_bytes_than_declared_are_refused_past_a_part(resident, workdir):
    payload = os.urandom(PART + 10)
    started = await resident.start("overflow.bin", payload, parent_id=workdir)
    # The overflow comes in the last message, after a whole part went to S3.
    await expect_error(resident.send(started.upload_id, 0, payload + b"!"), grpc.StatusCode.INVALID_ARGUMENT, field="data")
    assert await resident.names(workdir) == []


@pytest.mark.parametrize("offset", [1, -1, 100])
async def test_a_first_offset_other_than_the_committed_one_is_refused(resident, workdir, offset):
    payload = os.urandom(200)
    started = await resident.start("offset.bin", payload, parent_id=workdir)
    err = await expect_error(
        resident.send(started.upload_id, offset, payload[max(offset, 0):]),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="OFFSET_MISMATCH",
    )
    assert err.metadata["committed_offset"] == "0"
    assert (await resident.get_upload(started.upload_id)).committed_offset == 0
    await resident.cancel(started.upload_id)


async def test_an_interrupted_upload_resumes_from_the_committed_offset(alice):
    payload = os.urandom(3 * PART + 777)
    started = await alice.start("resumed.bin", payload)
    # Two and a half parts, then the stream ends: only whole parts are kept.
    partial = await alice.send(started.upload_id, 0, payload[: 2 * PART + PART // 2])
    assert not partial.HasField("file")
    assert partial.committed_offset == 2 * PART
    status = await alice.get_upload(started.upload_id)
    assert (status.committed_offset, status.size, status.HasField("file")) == (2 * PART, len(payload), False)
    assert await alice.names() == []
    # Resuming anywhere but the committed offset is refused, and says where to go on from.
    err = await expect_error(
        alice.send(started.upload_id, 2 * PART + PART // 2, payload[2 * PART + PART // 2 :][:1000]),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="OFFSET_MISMATCH",
    )
    assert err.metadata["committed_offset"] == str(2 * PART)
    done = await alice.send(started.upload_id, 2 * PART, payload[2 * PART :])
    assert done.committed_offset == len(payload)
    assert done.file.sha256 == sha(payload)
    assert sha(await alice.read(done.file.node_id)) == sha(payload)
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (len(payload), 0)


async def test_an_upload_resumed_in_small_steps_still_hashes_right(resident, workdir):
    payload = os.urandom(2 * PART + 3)
    started = await resident.start("steps.bin", payload, parent_id=workdir)
    offset = 0
    for _ in range(10):  # bounded: three streams expected
        sent = await resident.send(started.upload_id, offset, payload[offset : offset + PART + MIB])
        if sent.HasField("file"):
            break
        assert sent.committed_offset == offset + PART
        offset = sent.committed_offset
    assert sent.file.sha256 == sha(payload)
    assert sha(await resident.read(sent.file.node_id)) == sha(payload)


async def test_a_second_writer_on_the_same_upload_is_refused_while_the_first_writes(alice):
    payload = os.urandom(2 * PART + 1)
    started = await alice.start("busy.bin", payload)
    go_on = asyncio.Event()

    async def first_writer():
        yield blob_pb2.UploadChunksRequest(upload_id=started.upload_id, offset=0, data=payload[:MIB])
        for at in range(MIB, 2 * PART, MIB):
            yield blob_pb2.UploadChunksRequest(data=payload[at : at + MIB])
        await go_on.wait()
        yield blob_pb2.UploadChunksRequest(data=payload[2 * PART :])

    metadata = await alice.metadata()
    first = asyncio.ensure_future(alice.stub.UploadChunks(first_writer(), metadata=metadata, timeout=60))
    try:
        # Once a part has landed the first writer is certainly inside (and still open).
        async def first_part_landed():
            return (await alice.get_upload(started.upload_id)).committed_offset >= PART

        await eventually(first_part_landed, timeout=30, what="the first writer's first part")
        # (A first message alone: a refused stream still sending bytes races its own end.)
        await expect_error(alice.send(started.upload_id, PART, b""), grpc.StatusCode.FAILED_PRECONDITION, reason="UPLOAD_BUSY")
    finally:
        go_on.set()
    done = await asyncio.wait_for(first, 60)
    assert done.file.sha256 == sha(payload)
    assert sha(await alice.read(done.file.node_id)) == sha(payload)


async def test_the_writer_lock_is_released_when_a_stream_fails(resident, workdir):
    payload = os.urandom(100)
    started = await resident.start("unlocked.bin", payload, parent_id=workdir)
    await expect_error(resident.send(started.upload_id, 5, payload), grpc.StatusCode.FAILED_PRECONDITION, reason="OFFSET_MISMATCH")
    await expect_error(resident.send(started.upload_id, 0, payload * 2), grpc.StatusCode.INVALID_ARGUMENT, field="data")
    done = await resident.send(started.upload_id, 0, payload)
    assert done.HasField("file")
