"""The blob service under faults, against the real servers: a client that dies mid-upload, a
blob process killed mid-stream, S3 going away mid-upload, and identical uploads racing to
completion. Each upload must resume from a committed part boundary with the SHA-256 state
intact, or end without a file record and without leaking quota or stored objects."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pathlib
import sys
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2
from cumulo_blob.writer_lock import LEASE
from cumulo_devstack.servers import Process, wait_for_port
from cumulo_devstack.testing import eventually, serves_service, transport_for
from cumulo_platform.db import create_engine
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sdk.files import CHUNK as SDK_CHUNK
from cumulo_sdk.files import sha256_of

MIB = 1024 * 1024
PART = 8 * MIB  # the blob service's part size (CUMULO_BLOB_PART_SIZE_BYTES default)
CHUNK = MIB



# --- helpers -------------------------------------------------------------------------------


def _rpc_error(exc: grpc.aio.AioRpcError) -> CumuloRpcError:
    return CumuloRpcError.from_rpc_error(exc)


async def start_upload(client: Cumulo, name: str, data: bytes) -> blob_pb2.StartUploadResponse:
    return await client.call(
        client.files.stub.StartUpload,
        blob_pb2.StartUploadRequest(
            name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), content_type="application/octet-stream"
        ),
    )


async def get_upload(client: Cumulo, upload_id: str) -> blob_pb2.GetUploadResponse:
    return await client.call(client.files.stub.GetUpload, blob_pb2.GetUploadRequest(upload_id=upload_id))


async def chunks(
    upload_id: str, data: bytes, start: int, stop: int, *, then: asyncio.Event | None = None
) -> AsyncIterator[blob_pb2.UploadChunksRequest]:
    """data[start:stop] in 1 MiB messages, the first naming the upload and offset. With
    `then`, the stream stalls after the last byte until the event is set (a client that
    hangs, to be killed or to go on later)."""
    position = start
    first = True
    while first or position < stop:
        block = data[position : min(position + CHUNK, stop)]
        if first:
            yield blob_pb2.UploadChunksRequest(upload_id=upload_id, offset=start, data=block)
            first = False
        else:
            yield blob_pb2.UploadChunksRequest(data=block)
        position += len(block)
    if then is not None:
        await then.wait()


async def send(client: Cumulo, upload_id: str, data: bytes, start: int, stop: int | None = None) -> blob_pb2.UploadChunksResponse:
    """One UploadChunks call with data[start:stop]; errors raised as CumuloRpcError."""
    token = await client.access_token()
    try:
        return await client.files.stub.UploadChunks(
            chunks(upload_id, data, start, len(data) if stop is None else stop), metadata=client.metadata(token), timeout=90
        )
    except grpc.aio.AioRpcError as exc:
        raise _rpc_error(exc) from None


async def send_part_by_part(client: Cumulo, upload_id: str, data: bytes, start: int) -> blob_pb2.UploadChunksResponse:
    """From `start` to the end, one call per part. The service then only reports a failed
    part after the client has half-closed its stream, so the client sees the service's status.
    (A status sent while the client is still writing may reach a grpc.aio client as INTERNAL
    "Internal error from Core": grpc/grpc#36066.)"""
    while True:
        response = await send(client, upload_id, data, start, min(start + PART, len(data)))
        if response.HasField("file") or response.committed_offset == len(data):
            return response
        assert response.committed_offset == min(start + PART, len(data)), response
        start = response.committed_offset


async def download(client: Cumulo, node_id: str) -> bytes:
    return await client.files.read_range(node_id, 0, 0)


async def committed_at_least(client: Cumulo, upload_id: str, offset: int) -> blob_pb2.GetUploadResponse | None:
    status = await get_upload(client, upload_id)
    return status if status.committed_offset >= offset else None


async def writer_gone(database_url: str, upload_id: str) -> bool:
    """No live writer holds the upload: a killed process cannot let its lease go, so it lapses
    by itself (cumulo_blob.writer_lock.LEASE)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            held = await conn.scalar(
                sa.text("SELECT count(*) FROM blob.upload_writers WHERE upload_id = :u AND held_until > now()"),
                {"u": uuid.UUID(upload_id)},
            )
    finally:
        await engine.dispose()
    return held == 0


async def names_in_root(client: Cumulo) -> list[str]:
    return [node.name for node in await client.files.ls()]


async def account_id_of(client: Cumulo) -> str:
    return (await client.whoami()).account.account_id


# --- 1. the client dies mid-upload -----------------------------------------------------------


async def test_client_killed_mid_upload_resumes_from_a_committed_part(user, gateway, blob, tmp_path):
    client, _ = user
    data = os.urandom(30 * MIB + 4321)
    digest = hashlib.sha256(data).hexdigest()
    source = tmp_path / "holiday.mov"
    source.write_bytes(data)
    started = await start_upload(client, source.name, data)
    upload_id = started.upload_id
    assert started.committed_offset == 0

    # ~20 MiB go out, then the client hangs and is killed (its call cancelled).
    never = asyncio.Event()
    call = client.files.stub.UploadChunks(
        chunks(upload_id, data, 0, 20 * MIB, then=never), metadata=client.metadata(await client.access_token())
    )
    await eventually(lambda: committed_at_least(client, upload_id, 1), timeout=60, what="a first part to be committed")
    call.cancel()
    with pytest.raises((asyncio.CancelledError, grpc.aio.AioRpcError)):
        await call
    never.set()  # let the abandoned request generator end

    # The server lets go of the upload once it sees the client is gone.
    await eventually(
        lambda: writer_gone(blob.app.settings.platform.database_url, upload_id), timeout=30, what="the server to let the upload go"
    )
    status = await get_upload(client, upload_id)
    assert 0 < status.committed_offset < 20 * MIB
    assert status.committed_offset % PART == 0, status.committed_offset
    assert status.size == len(data)
    assert not status.HasField("file")
    assert source.name not in await names_in_root(client)
    usage = await client.files.usage()
    assert (usage.used, usage.reserved) == (0, len(data))

    # A new run of the SDK (sharing the session) finds the unfinished upload and resumes it.
    pending = tmp_path / "pending.json"
    async with Cumulo(gateway, transport=transport_for(gateway), store=client.store, pending_uploads=pending) as resumed:
        # The SDK's record of the unfinished upload, as the killed run had left it.
        stat = source.resolve().stat()
        resumed.files.pending.put(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{digest}||{source.name}", upload_id)
        sent_from: list[int] = []
        node = await resumed.files.upload(source, content_type="video/quicktime", progress=lambda done, total: sent_from.append(done))
    assert node.size == len(data)
    assert node.sha256 == digest
    # It went on from the committed offset, not from byte 0, and finished *this* upload.
    assert sent_from and sent_from[0] == status.committed_offset + SDK_CHUNK
    finished = await get_upload(client, upload_id)
    assert finished.HasField("file") and finished.file.node_id == node.node_id
    assert finished.committed_offset == len(data)

    back = await download(client, node.node_id)
    assert hashlib.sha256(back).hexdigest() == digest
    usage = await client.files.usage()
    assert (usage.used, usage.reserved) == (len(data), 0)


# --- 2. the blob process is killed mid-upload ------------------------------------------------


class BlobProcess:
    """`python -m cumulo_blob` on one database and port, started again after a crash."""

    def __init__(self, environ: dict[str, str], log_path: pathlib.Path) -> None:
        self.environ = {**os.environ, **environ}
        self.port = int(environ["CUMULO_GRPC_PORT"])
        self.process = Process("blob", [sys.executable, "-m", "cumulo_blob"], log_path, env=self.environ)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process.start()
        # In a thread: the auth service the new process asks for its keys runs on this loop.
        await asyncio.to_thread(wait_for_port, self.port, process=self.process.process, timeout=90)
        serves_service(self.target, "blob")

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
async def blob_process(infra, auth, tmp_path) -> AsyncIterator[BlobProcess]:
    environ = infra.service_environ(CUMULO_AUTH_TARGET=auth.target, CUMULO_ENVIRONMENT="development")
    process = BlobProcess(environ, tmp_path / "blob.log")
    await process.start()
    try:
        yield process
    finally:
        await asyncio.to_thread(process.stop)


async def until_served(check, *, timeout: float = 60, what: str):
    """check() once the (restarted) service answers: UNAVAILABLE while it comes up is retried."""

    async def attempt():
        try:
            return await check()
        except CumuloRpcError as err:
            if err.code != grpc.StatusCode.UNAVAILABLE:
                raise
            return None

    return await eventually(attempt, timeout=timeout, what=what)


async def test_blob_process_killed_mid_upload_resumes_in_a_new_process(user, blob, blob_process, tmp_path):
    client, _ = user  # logged in through the gateway; the blob process checks the same tokens
    data = os.urandom(28 * MIB + 777)
    digest = hashlib.sha256(data).hexdigest()
    async with Cumulo(blob_process.target, transport=transport_for(blob_process.target), store=client.store) as direct:
        upload_id = (await until_served(lambda: start_upload(direct, "scan.tiff", data), what="the blob process")).upload_id

        never = asyncio.Event()
        call = direct.files.stub.UploadChunks(
            chunks(upload_id, data, 0, 20 * MIB, then=never), metadata=direct.metadata(await direct.access_token())
        )
        before = await eventually(lambda: committed_at_least(direct, upload_id, 1), timeout=60, what="a first committed part")
        assert before.committed_offset % PART == 0

        blob_process.kill()  # SIGKILL: no drain, no clean-up
        with pytest.raises(grpc.aio.AioRpcError) as killed:
            await call
        never.set()  # let the abandoned request generator end
        # The connection is gone: UNAVAILABLE, or - over TLS, when the client's next write meets
        # the connection the killed process reset - gRPC core's own INTERNAL for that write
        # (never the service's: it was dead).
        lost = killed.value.code() == grpc.StatusCode.UNAVAILABLE or (
            killed.value.code() == grpc.StatusCode.INTERNAL and killed.value.details() == "Internal error from Core"
        )
        assert lost, killed.value

        await blob_process.start()  # same database, same port
        status = await until_served(lambda: get_upload(direct, upload_id), what="the restarted blob process")
        assert status.committed_offset == before.committed_offset
        assert 0 < status.committed_offset < 20 * MIB and status.committed_offset % PART == 0
        assert not status.HasField("file")
        # The dead process's writer lease lapses by itself.
        await eventually(
            lambda: writer_gone(blob_process.environ["DATABASE_URL"], upload_id),
            timeout=LEASE.total_seconds() + 30,
            what="the killed process's lease to lapse",
        )

        # Offsets other than the committed one are refused; the committed one is taken.
        with pytest.raises(CumuloRpcError) as wrong:
            await send(direct, upload_id, data, 0, 1024)  # one message: refused after the client half-closed
        assert wrong.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert wrong.value.reason == "OFFSET_MISMATCH"
        assert wrong.value.metadata.get("committed_offset") == str(status.committed_offset)

        done = await send(direct, upload_id, data, status.committed_offset)
        # The SHA-256 state saved by the first process continued in the second: the digest of
        # the whole file is right, so the server accepted it.
        assert done.HasField("file"), done
        assert done.committed_offset == len(data)
        assert done.file.sha256 == digest and done.file.size == len(data)

        back = await download(direct, done.file.node_id)
        assert len(back) == len(data)
        assert hashlib.sha256(back).hexdigest() == digest
        usage = await direct.files.usage()
        assert (usage.used, usage.reserved) == (len(data), 0)


# --- 3. S3 goes away mid-upload ----------------------------------------------------------------


async def test_storage_outage_mid_upload_fails_unavailable_and_leaks_nothing(user, infra, tmp_path):
    client, _ = user
    data = os.urandom(30 * MIB + 99)
    digest = hashlib.sha256(data).hexdigest()
    upload_id = (await start_upload(client, "backup.tar", data)).upload_id
    usage = await client.files.usage()
    assert (usage.used, usage.reserved) == (0, len(data))

    go_on = asyncio.Event()
    call = client.files.stub.UploadChunks(
        chunks(upload_id, data, 0, 20 * MIB, then=go_on), metadata=client.metadata(await client.access_token())
    )
    await eventually(lambda: committed_at_least(client, upload_id, 1), timeout=60, what="a first committed part")

    restarted = False
    await asyncio.to_thread(infra.s3.stop)
    try:
        go_on.set()  # the stream ends after its 20 MiB; the rest follows in a second call
        try:
            await call  # the first 20 MiB may all have landed before S3 went: the rest cannot
            await send_part_by_part(client, upload_id, data, (await get_upload(client, upload_id)).committed_offset)
        except grpc.aio.AioRpcError as exc:
            error = _rpc_error(exc)
        except CumuloRpcError as err:
            error = err
        else:
            pytest.fail("an upload completed while S3 was down")
        assert error.code == grpc.StatusCode.UNAVAILABLE, error
        assert error.reason == "STORAGE_UNAVAILABLE", error

        status = await get_upload(client, upload_id)
        assert not status.HasField("file")
        assert status.committed_offset % PART == 0 and status.committed_offset < len(data)
        assert "backup.tar" not in await names_in_root(client)

        # A new upload cannot start without storage, and reserves nothing.
        other = os.urandom(6 * MIB)
        with pytest.raises(CumuloRpcError) as refused:
            await start_upload(client, "other.bin", other)
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE, refused.value
        assert refused.value.reason == "STORAGE_UNAVAILABLE", refused.value
        usage = await client.files.usage()
        assert (usage.used, usage.reserved) == (0, len(data))
        assert "other.bin" not in await names_in_root(client)

        await asyncio.to_thread(infra.s3.start)
        restarted = True
    finally:
        if not restarted:
            await asyncio.to_thread(infra.s3.start)

    # S3 is back: the upload either resumes and completes, or says clearly that it must start
    # again; in no case is quota leaked.
    async def resume():
        try:
            status = await get_upload(client, upload_id)
            return await send_part_by_part(client, upload_id, data, status.committed_offset)
        except CumuloRpcError as err:
            if err.code == grpc.StatusCode.UNAVAILABLE:  # the service's S3 connections reopen
                return None
            return err

    outcome = await eventually(resume, timeout=60, what="the upload to resume or end after S3 came back")

    # With storage back, new uploads work again.
    source = tmp_path / "after.bin"
    source.write_bytes(os.urandom(MIB + 5))
    node = await client.files.upload(source)
    assert node.sha256 == sha256_of(source)
    after = len(source.read_bytes())

    if isinstance(outcome, CumuloRpcError):
        # The upload cannot go on: cancelling it must give its reservation back...
        await client.call(client.files.stub.CancelUpload, blob_pb2.CancelUploadRequest(upload_id=upload_id))
        usage = await client.files.usage()
        assert (usage.used, usage.reserved) == (after, 0)
        assert "backup.tar" not in await names_in_root(client)
        # ... and the service must have said so clearly (start again), not failed internally.
        assert (outcome.code, outcome.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "UPLOAD_LOST"), (
            f"resuming after the S3 restart failed with {outcome}"
        )
    else:
        assert outcome.HasField("file") and outcome.file.sha256 == digest
        back = await download(client, outcome.file.node_id)
        assert hashlib.sha256(back).hexdigest() == digest
        usage = await client.files.usage()
        assert (usage.used, usage.reserved) == (len(data) + after, 0)


async def test_cancelling_an_upload_cut_off_by_a_storage_outage_releases_its_quota(user, infra):
    client, _ = user
    data = os.urandom(12 * MIB + 3)
    upload_id = (await start_upload(client, "cut.bin", data)).upload_id

    restarted = False
    await asyncio.to_thread(infra.s3.stop)
    try:
        with pytest.raises(CumuloRpcError) as during:
            await send_part_by_part(client, upload_id, data, 0)
        assert during.value.code == grpc.StatusCode.UNAVAILABLE, during.value
        assert during.value.reason == "STORAGE_UNAVAILABLE", during.value
        status = await get_upload(client, upload_id)
        assert status.committed_offset == 0 and not status.HasField("file")
        await asyncio.to_thread(infra.s3.start)
        restarted = True
    finally:
        if not restarted:
            await asyncio.to_thread(infra.s3.start)

    async def cancelled() -> bool:
        try:
            await client.call(client.files.stub.CancelUpload, blob_pb2.CancelUploadRequest(upload_id=upload_id))
            return True
        except CumuloRpcError as err:
            if err.code == grpc.StatusCode.UNAVAILABLE:
                return False
            raise

    await eventually(cancelled, timeout=60, what="CancelUpload once S3 is back")
    usage = await client.files.usage()
    assert (usage.used, usage.reserved) == (0, 0)
    assert "cut.bin" not in await names_in_root(client)
    with pytest.raises(CumuloRpcError) as closed:
        await send(client, upload_id, data, 0, 1024)
    assert closed.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert closed.value.reason == "UPLOAD_CLOSED"


# --- 4. identical uploads racing to completion -----------------------------------------------


async def test_identical_uploads_racing_store_the_content_once_and_leave_no_object(user, blob):
    client, _ = user
    account_id = await account_id_of(client)
    data = os.urandom(17 * MIB + 1234)
    digest = hashlib.sha256(data).hexdigest()

    # Both start before either finishes: two multipart uploads of the same bytes.
    first = await start_upload(client, "a.raw", data)
    second = await start_upload(client, "b.raw", data)
    assert not first.HasField("file") and not second.HasField("file")
    usage = await client.files.usage()
    assert (usage.used, usage.reserved) == (0, 2 * len(data))

    done = await asyncio.gather(
        send(client, first.upload_id, data, 0), send(client, second.upload_id, data, 0)
    )
    nodes = [response.file for response in done]
    assert all(response.HasField("file") for response in done)
    assert sorted(node.name for node in nodes) == ["a.raw", "b.raw"]
    assert {node.sha256 for node in nodes} == {digest}
    assert nodes[0].node_id != nodes[1].node_id

    usage = await client.files.usage()
    assert (usage.used, usage.reserved) == (len(data), 0), "the same content must count once"
    for node in nodes:
        assert hashlib.sha256(await download(client, node.node_id)).hexdigest() == digest

    storage = blob.app.storage

    async def keys() -> list[str]:
        listing = await storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=f"accounts/{account_id}/")
        return [item["Key"] for item in listing.get("Contents", [])]

    assert await keys(), "the content's object must be in the bucket"

    # One file gone: the content stays for the other.
    await client.files.delete(nodes[0].node_id)
    await client.files.empty_trash()
    usage = await client.files.usage()
    assert (usage.used, usage.reserved) == (len(data), 0)
    assert hashlib.sha256(await download(client, nodes[1].node_id)).hexdigest() == digest

    # Both gone: nothing is counted and nothing stays in the bucket.
    await client.files.delete(nodes[1].node_id)
    assert await client.files.empty_trash() == 1
    usage = await client.files.usage()
    assert (usage.used, usage.reserved) == (0, 0)

    async def bucket_empty() -> bool:
        return not await keys()

    await eventually(bucket_empty, timeout=20, what=f"the bucket to hold no object under accounts/{account_id}/")
