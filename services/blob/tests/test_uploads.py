"""Uploads: the bytes that come back are the bytes that went in; content the account holds
completes at once; every way an upload can go wrong (digest, size, offset, a second writer,
cancelling, expiry) leaves nothing behind and gives its reservation back; an interrupted
upload resumes from the committed offset."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import pathlib

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import eventually, expect_error
from cumulo_sdk import CumuloRpcError

MIB = 1024 * 1024
PART = 8 * MIB  # the service's part size


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def expire_everything_overdue(blob) -> int:
    """Runs the expiry sweep until it finds nothing more (bounded)."""
    total = 0
    for _ in range(20):
        swept = await blob.app.uploads.expire_abandoned()
        total += swept
        if swept == 0:
            return total
    raise AssertionError("the expiry sweep never ran dry")


# --- bytes out equal bytes in -------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, PART, PART + 1, 3 * PART + 12345], ids=["empty", "one-byte", "one-part", "part+1", "several-parts"]
)
async def test_sdk_upload_and_download_give_back_the_same_bytes(alice, tmp_path: pathlib.Path, size):
    payload = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(payload)
    node = await alice.client.files.upload(source, content_type="application/octet-stream")
    assert (node.name, node.size, node.sha256) == ("source.bin", size, sha(payload))
    back = tmp_path / "back.bin"
    await alice.client.files.download(node.node_id, back)
    assert sha(back.read_bytes()) == sha(payload)
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (size, 0)


@pytest.mark.parametrize("chunk", [1, 4096, 777_777, 3 * MIB + 1], ids=["1-byte", "4-KiB", "odd", "over-3-MiB"])
async def test_chunks_of_any_size_assemble_the_same_file(resident, workdir, chunk):
    size = {1: 3000, 4096: PART + 5}.get(chunk, 2 * PART + 5)  # many tiny messages: keep it short
    payload = os.urandom(size)
    started = await resident.start("chunked.bin", payload, parent_id=workdir)
    done = await resident.send(started.upload_id, 0, payload, chunk=chunk)
    assert done.committed_offset == size
    assert done.file.sha256 == sha(payload)
    assert sha(await resident.read(done.file.node_id)) == sha(payload)


async def test_a_stream_whose_first_message_has_no_bytes_is_fine(resident, workdir):
    payload = os.urandom(5000)
    started = await resident.start("late-bytes.bin", payload, parent_id=workdir)
    done = await resident.send_messages(started.upload_id, 0, [b"", payload[:100], b"", payload[100:]])
    assert done.file.size == 5000
    assert await resident.read(done.file.node_id) == payload


async def test_upload_status_shows_the_completed_file(resident, workdir):
    payload = b"status"
    started = await resident.start("status.txt", payload, parent_id=workdir, content_type="text/plain")
    before = await resident.get_upload(started.upload_id)
    assert (before.size, before.committed_offset, before.HasField("file")) == (6, 0, False)
    assert before.expires_at.ToDatetime(dt.UTC) > dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
    done = await resident.send(started.upload_id, 0, payload)
    after = await resident.get_upload(started.upload_id)
    assert after.committed_offset == 6
    assert after.file.node_id == done.file.node_id
    assert after.file.content_type == "text/plain"
    # Sending to a completed upload again only tells the same story.
    again = await resident.send(started.upload_id, 6, b"")
    assert again.file.node_id == done.file.node_id
    assert await resident.names(workdir) == ["status.txt"]


async def test_content_type_defaults_to_octet_stream(resident, workdir):
    node = await resident.put("unknown", b"bytes", parent_id=workdir)
    assert node.content_type == "application/octet-stream"


@pytest.mark.parametrize("content_type", ["jpeg", "image/", "text plain", "a/b/c"])
async def test_a_content_type_that_is_not_a_media_type_is_refused(resident, workdir, content_type):
    await expect_error(
        resident.start("typed", b"x", parent_id=workdir, content_type=content_type),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="content_type",
    )


@pytest.mark.parametrize("size", [-1, 5 * 1024**4 + 1])
async def test_a_size_out_of_range_is_refused(resident, workdir, size):
    await expect_error(
        resident.start("sized", size=size, sha256="0" * 64, parent_id=workdir), grpc.StatusCode.INVALID_ARGUMENT, field="size"
    )


async def test_an_empty_file_must_declare_the_empty_digest(resident, workdir):
    await expect_error(
        resident.start("empty", size=0, sha256=sha(b"not empty"), parent_id=workdir),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason="SHA256_MISMATCH",
        field="sha256",
    )
    assert await resident.names(workdir) == []


async def test_a_malformed_digest_is_refused(resident, workdir):
    await expect_error(resident.start("x", b"x", sha256="xyz", parent_id=workdir), grpc.StatusCode.INVALID_ARGUMENT, field="sha256")


async def test_start_refuses_a_name_already_taken(resident, workdir):
    await resident.mkdir("taken.txt", workdir)
    await expect_error(
        resident.start("taken.txt", b"x", parent_id=workdir), grpc.StatusCode.ALREADY_EXISTS, reason="NAME_TAKEN", field="name"
    )


# --- instant uploads --------------------------------------------------------------------


async def test_content_the_account_holds_completes_at_once_without_quota(alice, tmp_path):
    payload = os.urandom(PART + 1000)
    first = await alice.put("original.bin", payload)
    folder = await alice.mkdir("elsewhere")
    started = await alice.start("copy.bin", payload, parent_id=folder.node_id)
    assert started.HasField("file")
    assert (started.file.name, started.file.parent_id, started.file.sha256) == ("copy.bin", folder.node_id, first.sha256)
    assert started.file.node_id != first.node_id
    status = await alice.get_upload(started.upload_id)
    assert status.file.node_id == started.file.node_id
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (len(payload), 0)
    assert sha(await alice.read(started.file.node_id)) == sha(payload)
    # The SDK skips sending too.
    source = tmp_path / "third.bin"
    source.write_bytes(payload)
    sent: list[int] = []
    third = await alice.client.files.upload(source, progress=lambda done, total: sent.append(done))
    assert third.sha256 == first.sha256 and third.name == "third.bin"
    assert sent == [len(payload)]
    assert (await alice.usage()).used == len(payload)


async def test_content_held_only_in_the_trash_still_completes_at_once(alice):
    payload = os.urandom(4096)
    first = await alice.put("binned.bin", payload)
    await alice.delete(first.node_id)
    started = await alice.start("again.bin", payload)
    assert started.HasField("file")
    assert await alice.read(started.file.node_id) == payload


async def test_the_same_content_in_another_account_is_not_instant(alice, bob, peek):
    payload = os.urandom(10_000)
    await alice.put("mine.bin", payload)
    started = await bob.start("also-mine.bin", payload)
    assert not started.HasField("file")
    assert started.committed_offset == 0
    assert (await bob.usage()).reserved == len(payload)
    # Knowing the digest is not enough: without the bytes nothing completes.
    status = await bob.send(started.upload_id, 0, b"")
    assert not status.HasField("file") and status.committed_offset == 0
    assert await bob.names() == []
    done = await bob.send(started.upload_id, 0, payload)
    assert done.file.sha256 == sha(payload)
    # Each account holds its own copy.
    alice_key = await peek.content_key(alice.account_id, sha(payload))
    bob_key = await peek.content_key(bob.account_id, sha(payload))
    assert alice_key and bob_key and alice_key != bob_key
    assert await peek.object_size(bob_key) == len(payload)


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
    blob_clock.advance(dt.timedelta(hours=23))
    await expire_everything_overdue(blob)
    blob_clock.advance(dt.timedelta(hours=-23))
    assert (await alice.usage()).reserved == len(payload) + 500
    # Past its expiry: closed, reservation released, S3 parts aborted.
    blob_clock.advance(dt.timedelta(hours=24, minutes=1))
    swept = await expire_everything_overdue(blob)
    blob_clock.advance(dt.timedelta(hours=-24, minutes=-1))
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
        blob_clock.advance(dt.timedelta(hours=25))
        await expire_everything_overdue(blob)
        blob_clock.advance(dt.timedelta(hours=-25))
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
        blob_clock.advance(dt.timedelta(hours=25))
        await expire_everything_overdue(blob)
        blob_clock.advance(dt.timedelta(hours=-25))
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


# --- names taken meanwhile ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,taken,expected",
    [
        ("report.txt", ["report.txt"], "report (1).txt"),
        ("report.txt", ["report.txt", "report (1).txt"], "report (2).txt"),
        ("notes", ["notes"], "notes (1)"),
        ("archive.tar.gz", ["archive.tar.gz"], "archive.tar (1).gz"),
        (".bashrc", [".bashrc"], ".bashrc (1)"),
    ],
)
async def test_a_name_taken_between_start_and_completion_gets_a_free_variant(resident, workdir, name, taken, expected):
    payload = os.urandom(64)
    started = await resident.start(name, payload, parent_id=workdir)
    for other in taken:
        await resident.mkdir(other, workdir)
    done = await resident.send(started.upload_id, 0, payload)
    assert done.file.name == expected
    assert await resident.read(done.file.node_id) == payload
    assert sorted(await resident.names(workdir)) == sorted([*taken, expected])


async def test_an_instant_upload_onto_a_name_taken_is_refused(resident, workdir):
    payload = os.urandom(64)
    await resident.put("a.bin", payload, parent_id=workdir)
    await expect_error(resident.start("a.bin", payload, parent_id=workdir), grpc.StatusCode.ALREADY_EXISTS, reason="NAME_TAKEN")


async def test_an_upload_whose_folder_was_deleted_for_good_meanwhile_ends_cleanly(alice, peek):
    """Either the file is stored somewhere reachable, or the upload is refused with a clear
    error and leaves nothing behind: no reservation, no stored object."""
    folder = await alice.mkdir("going away")
    payload = os.urandom(1000)
    started = await alice.start("orphan.bin", payload, parent_id=folder.node_id)
    await alice.delete(folder.node_id)
    await alice.rpc("EmptyTrash", blob_pb2.EmptyTrashRequest())
    try:
        done = await alice.send(started.upload_id, 0, payload)
    except CumuloRpcError as err:
        assert err.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION), err
        usage = await alice.usage()
        assert usage.reserved == 0, "the refused upload still holds its reservation"
        assert await peek.objects(alice.account_id) == []
    else:
        assert await alice.read(done.file.node_id) == payload
        assert done.file.node_id in [n.node_id for n in await alice.ls(done.file.parent_id)]
