"""No client can stall blob. Against blob services of this module's own (own database; same
auth, NATS and S3), attackers on loopback hold many streams open and go quiet, while another
user's calls are served:

- upload streams that sent a little and then nothing hold no database connection, so more of
  them than the connection pool has connections starve no one; an account's streams beyond its
  limit are refused at once; a stream silent for the idle timeout ends, resumable;
- download streams whose client never reads hold no S3 connection and at most a couple of
  messages, so more of them than S3's connection pool has connections starve no one; downloads
  beyond the limits per client address and per share link are refused at once; a download
  left unread for the stall timeout ends.

The attackers' client addresses are told by x-forwarded-for (trusted: one proxy hop), so that
the victim, at the transport's own 127.0.0.1, is counted apart. Nothing here asserts how fast
anything is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_blob import bootstrap as blob_bootstrap
from cumulo_blob.bootstrap import BlobApp
from cumulo_blob.config import BlobSettings
from cumulo_blob.downloads import WINDOW_BYTES
from cumulo_blob.sharing import token_hash
from cumulo_devstack.testing import eventually, open_channel, start_service
from cumulo_sdk import CumuloRpcError
from cumulo_sdk.client import DEFAULT_CLIENT_ID

from .conftest import MIB, PART, as_rpc_error, sha

S3_POOL = 32  # cumulo_platform.storage: max_pool_connections
STALLED_UPLOADS = 24  # more than the database pool's connections (10 + 10 overflow)
PER_ADDRESS = 8
ATTACKER_ADDRESSES = [f"127.0.0.{66 + i}" for i in range(5)]  # 5 x 8 = 40 streams > S3_POOL
PER_LINK = PER_ADDRESS * len(ATTACKER_ADDRESSES)
QUIET = 2  # seconds of silence the impatient service allows


@contextlib.asynccontextmanager
async def serving(settings: BlobSettings) -> AsyncIterator[tuple[BlobApp, str]]:
    app = await blob_bootstrap.build(settings)
    port = await start_service(app.runtime)
    try:
        yield app, f"127.0.0.1:{port}"
    finally:
        await app.runtime.stop()


@pytest.fixture(scope="module")
async def guarded(infra, auth) -> AsyncIterator[tuple[BlobApp, str]]:
    """Limits that let the attacks go past the pools (the streams' own limits are what is
    tested here); nobody's silence runs out during a test."""
    settings = BlobSettings.from_env(
        infra.service_environ(
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_BLOB_UPLOADS_PER_ACCOUNT=str(STALLED_UPLOADS),
            CUMULO_BLOB_DOWNLOADS_PER_ADDRESS=str(PER_ADDRESS),
            CUMULO_BLOB_DOWNLOADS_PER_LINK=str(PER_LINK),
            CUMULO_BLOB_UPLOAD_IDLE_TIMEOUT="PT10M",
            CUMULO_BLOB_DOWNLOAD_STALL_TIMEOUT="PT10M",
        )
    )
    async with serving(settings) as served:
        yield served


@pytest.fixture(scope="module")
async def impatient(infra, auth) -> AsyncIterator[tuple[BlobApp, str]]:
    """A service that ends quiet streams after QUIET seconds."""
    settings = BlobSettings.from_env(
        infra.service_environ(
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_BLOB_UPLOAD_IDLE_TIMEOUT=f"PT{QUIET}S",
            CUMULO_BLOB_DOWNLOAD_STALL_TIMEOUT=f"PT{QUIET}S",
        )
    )
    async with serving(settings) as served:
        yield served


async def count(app: BlobApp, sql: str, **params: Any) -> int:
    async with app.db.engine.connect() as conn:
        return int((await conn.execute(sa.text(sql), params)).scalar_one())


def refusal(exc: grpc.aio.AioRpcError) -> CumuloRpcError:
    error = as_rpc_error(exc)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert error.retry_after_seconds and error.retry_after_seconds > 0, error
    return error


async def silent_after(
    upload_id: str, data: bytes, release: asyncio.Event
) -> AsyncIterator[blob_pb2.UploadChunksRequest]:
    """`data` from the upload's start (in MiB messages), then nothing until `release`; then
    the stream ends."""
    yield blob_pb2.UploadChunksRequest(upload_id=upload_id, offset=0, data=data[:MIB])
    for at in range(MIB, len(data), MIB):
        yield blob_pb2.UploadChunksRequest(data=data[at : at + MIB])
    await release.wait()


# --- uploads ---------------------------------------------------------------------------------


async def test_stalled_upload_streams_hold_no_database_connection_and_starve_no_one(guarded, owners):
    app, target = guarded
    attacker, victim = await owners.new(target), await owners.new(target)
    pool = app.db.engine.pool
    assert STALLED_UPLOADS > pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    payload = os.urandom(1000)
    started = [await attacker.start(f"stall-{i}.bin", payload) for i in range(STALLED_UPLOADS)]
    release = asyncio.Event()
    metadata = await attacker.metadata()
    stalled = [
        attacker.stub.UploadChunks(
            silent_after(s.upload_id, payload[:10], release),
            metadata=metadata,
            timeout=120,
        )
        for s in started
    ]
    try:

        async def all_stalled() -> bool:
            assert not any(call.done() for call in stalled), [call for call in stalled if call.done()]
            held = await count(
                app, "SELECT count(*) FROM blob.upload_writers WHERE account_id = :a AND held_until > now()",
                a=uuid.UUID(attacker.account_id),
            )
            return held == STALLED_UPLOADS

        await eventually(all_stalled, timeout=60, what="every attacking stream to hold its upload")
        # Waiting for their clients, the streams hold no connection (a few may be out for
        # the service's background work, or a lease's renewal).
        assert pool.checkedout() < pool.size(), pool.status()
        # One more stream of the attacker's is refused at once, before it takes anything.
        extra = await attacker.start("one-more.bin", payload)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await attacker.stub.UploadChunks(
                silent_after(extra.upload_id, payload[:10], release),
                metadata=metadata,
                timeout=60,
            )
        assert refusal(caught.value).reason == "TOO_MANY_UPLOADS"
        # Meanwhile the victim is served: its usage, an upload, a download.
        usage = await victim.usage()
        assert (usage.used, usage.reserved) == (0, 0)
        mine = os.urandom(3 * MIB + 5)
        node = await victim.put("mine.bin", mine)
        assert await victim.read(node.node_id) == mine
        assert (await victim.usage()).used == len(mine)
        assert not any(call.done() for call in stalled)
    finally:
        release.set()
        ended = await asyncio.gather(*stalled, return_exceptions=True)
    # The stalled streams end as streams that sent 10 bytes of 1000 do: nothing committed, no
    # lease left behind, and every upload goes on from its start.
    assert all(isinstance(answer, blob_pb2.UploadChunksResponse) and answer.committed_offset == 0 for answer in ended), ended
    assert await count(app, "SELECT count(*) FROM blob.upload_writers WHERE account_id = :a", a=uuid.UUID(attacker.account_id)) == 0
    done = await attacker.send(started[0].upload_id, 0, payload)
    assert done.file.sha256 == sha(payload)


async def test_an_upload_stream_silent_for_the_idle_timeout_ends_and_the_upload_resumes(impatient, owners):
    app, target = impatient
    owner = await owners.new(target)
    payload = os.urandom(PART + 1000)
    started = await owner.start("paused.bin", payload)
    release = asyncio.Event()
    try:
        # A whole part and a little more, then silence: the part is kept, the little dropped.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await owner.stub.UploadChunks(
                silent_after(started.upload_id, payload[: PART + 10], release),
                metadata=await owner.metadata(),
                timeout=60,
            )
    finally:
        release.set()
    error = as_rpc_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "UPLOAD_IDLE"), error
    assert error.metadata["committed_offset"] == str(PART)
    assert (await owner.get_upload(started.upload_id)).committed_offset == PART
    done = await owner.send(started.upload_id, PART, payload[PART:])
    assert done.file.sha256 == sha(payload)
    assert await owner.read(done.file.node_id) == payload


async def test_an_upload_stream_that_never_names_its_upload_ends_at_the_idle_timeout(impatient, owners):
    _, target = impatient
    owner = await owners.new(target)
    release = asyncio.Event()

    async def nothing() -> AsyncIterator[blob_pb2.UploadChunksRequest]:
        await release.wait()
        yield blob_pb2.UploadChunksRequest()

    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await owner.stub.UploadChunks(nothing(), metadata=await owner.metadata(), timeout=60)
    finally:
        release.set()
    error = as_rpc_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "UPLOAD_IDLE"), error
    # Its place is given back: the account streams again at once.
    payload = os.urandom(100)
    assert (await owner.put("after.bin", payload)).sha256 == sha(payload)


# --- downloads -------------------------------------------------------------------------------


class Reader:
    """A stranger's channel to the service, from a client address of its choosing. It takes
    no more than it must: a connection of its own whose windows never grow, so that what it
    does not read stays unsent at the service."""

    def __init__(self, target: str, address: str) -> None:
        self.channel = open_channel(target, options=[("grpc.use_local_subchannel_pool", 1), ("grpc.http2.bdp_probe", 0)])
        self.stub = blob_pb2_grpc.ShareLinkServiceStub(self.channel)
        self.metadata = [("x-cumulo-client-id", DEFAULT_CLIENT_ID), ("x-forwarded-for", address)]

    def download(self, token: str) -> Any:
        return self.stub.DownloadShared(blob_pb2.DownloadSharedRequest(token=token), metadata=self.metadata, timeout=300)

    async def close(self) -> None:
        await self.channel.close()


async def first_message(call: Any) -> blob_pb2.DownloadSharedResponse:
    """The download's first message (the file's metadata): the stream is open and admitted."""
    try:
        message = await call.read()
    except grpc.aio.AioRpcError as exc:
        raise as_rpc_error(exc) from None
    assert message.HasField("file"), message
    return message


def counting_reads(app: BlobApp) -> dict[str, int]:
    """Counts the ranged GETs the service's downloads make, per key, from now on."""
    reads: dict[str, int] = {}
    storage = app.downloads.storage
    read_range = storage.read_range

    async def counted(key: str, offset: int, length: int) -> bytes:
        reads[key] = reads.get(key, 0) + 1
        return await read_range(key, offset, length)

    storage.read_range = counted  # type: ignore[method-assign]
    return reads


async def shared_file(owner: Any, size: int) -> tuple[blob_pb2.Node, str, bytes]:
    data = os.urandom(size)
    node = await owner.put(f"shared-{uuid.uuid4().hex[:6]}.bin", data)
    link = (await owner.rpc("CreateShareLink", blob_pb2.CreateShareLinkRequest(node_id=node.node_id))).link
    return node, link.token, data


async def test_never_read_downloads_hold_no_s3_connection_and_starve_no_one(guarded, owners):
    app, target = guarded
    owner, victim = await owners.new(target), await owners.new(target)
    _, token, data = await shared_file(owner, 6 * MIB + 7)
    readers = [Reader(target, address) for address in ATTACKER_ADDRESSES]
    calls = []
    try:
        for reader in readers:
            for _ in range(PER_ADDRESS):
                call = reader.download(token)
                calls.append(call)
                await first_message(call)  # and then never another read
        assert len(calls) > S3_POOL
        # (Every stream is still being served: none was ended nor sent whole into the client's buffers.)
        assert app.downloads.per_link.held(token_hash(token)) == PER_LINK
        # Past either limit a download is refused at once: a ninth from one address, and any
        # from a sixth address once the link has all it may serve.
        with pytest.raises(CumuloRpcError) as by_address:
            await first_message(readers[0].download(token))
        assert by_address.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and by_address.value.reason == "TOO_MANY_DOWNLOADS"
        assert by_address.value.retry_after_seconds
        late = Reader(target, "127.0.0.99")
        try:
            with pytest.raises(CumuloRpcError) as by_link:
                await first_message(late.download(token))
        finally:
            await late.close()
        assert by_link.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and by_link.value.reason == "LINK_BUSY"
        assert by_link.value.retry_after_seconds
        # Meanwhile the victim uploads and downloads (through S3) as ever, and reads the link.
        mine = os.urandom(2 * MIB + 3)
        node = await victim.put("mine.bin", mine)
        assert await victim.read(node.node_id) == mine
        other = await victim.put("small.txt", b"hello")
        assert await victim.read(other.node_id) == b"hello"
        assert not any(call.done() for call in calls)
    finally:
        for reader in readers:
            await reader.close()
    # Gone clients give their places back: the link serves a whole download again.
    downloads = app.downloads

    async def places_given_back() -> bool:
        return downloads.per_link.held(token_hash(token)) == 0 and all(
            downloads.per_address.held(address) == 0 for address in ATTACKER_ADDRESSES
        )

    await eventually(places_given_back, timeout=60, what="the gone streams' places to be given back")
    again = Reader(target, ATTACKER_ADDRESSES[0])
    try:
        received = bytearray()
        async for message in again.download(token):
            received += message.data
        assert bytes(received) == data
    finally:
        await again.close()


async def test_a_download_left_unread_reads_no_further_ahead_and_ends_at_the_stall_timeout(impatient, owners, debug_logs):
    app, target = impatient
    owner = await owners.new(target)
    node, token, data = await shared_file(owner, 8 * WINDOW_BYTES)
    key = await content_key(app, node)
    reads = counting_reads(app)
    reader = Reader(target, "127.0.0.80")
    try:
        call = reader.download(token)
        await first_message(call)
        await eventually(stalled_download_ended(debug_logs), timeout=60, what="the service to end the unread download")
        # What it read from S3 is bounded by what the client took (nothing yet), not by the
        # file: the window being sent and the one after, give or take one.
        assert reads.get(key, 0) <= 3, reads
        received = 0
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while (message := await call.read()) is not grpc.aio.EOF:
                received += len(message.data)
        error = as_rpc_error(caught.value)
        assert (error.code, error.reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "CLIENT_NOT_READING"), error
        assert received < len(data)
    finally:
        await reader.close()

    async def place_given_back() -> bool:
        return app.downloads.per_address.held("127.0.0.80") == 0

    await eventually(place_given_back, timeout=30, what="the ended download's place to be given back")


async def content_key(app: BlobApp, node: blob_pb2.Node) -> str:
    async with app.db.engine.connect() as conn:
        return str(
            (await conn.execute(sa.text("SELECT s3_key FROM blob.contents WHERE sha256 = :s"), {"s": node.sha256})).scalar_one()
        )


def stalled_download_ended(debug_logs: Callable[[], str]) -> Callable[[], Awaitable[bool]]:
    seen: list[str] = []

    async def ended() -> bool:
        for text in debug_logs().splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if line.get("event") == "download_client_not_reading":
                seen.append(text)
        return bool(seen)

    return ended
