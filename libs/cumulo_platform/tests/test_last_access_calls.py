"""What counts as a use, call by call: the CallInterceptor marks an authenticated call's account
in a real gRPC server, streams at their end too (uploads and downloads that finish, a watch or an
upload the client gives up midway), and the coalescing interval follows the lifecycle's
inactivity, so an account in use is never reported idle for long."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import eventually, with_client_id
from cumulo_platform.clients import ClientRegistry
from cumulo_platform.clock import FrozenClock, OffsetClock
from cumulo_platform.db import Database
from cumulo_platform.interceptors import CallInterceptor
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.settings import Env, PlatformSettings
from cumulo_platform.tokens import KeyCache, TokenVerifier, access_claims, sign

SERVICE = "cumulo.test.v1.UseService"
APP = "use-test-app"
START = dt.datetime(2026, 12, 4, 6, 0, tzinfo=dt.UTC)
INTERVAL = dt.timedelta(minutes=10)


@pytest.fixture
def producer() -> str:
    return "blob"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


class Server:
    def __init__(self, target: str, key_id: str, private: Ed25519PrivateKey, middle: asyncio.Queue[None], go_on: asyncio.Event) -> None:
        self.target = target
        self.key_id = key_id
        self.private = private
        self.middle = middle  # a stream (upload, download, watch) reached its middle
        self.go_on = go_on  # ... and may finish (a watch never does: its client ends it)

    def token(self, account_id: str) -> str:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        claims = access_claims(
            account_id=account_id, session_id=str(uuid.uuid4()), client_id=APP, minor=False, roles=[],
            issued_at=now, expires_at=now + dt.timedelta(minutes=15), password_at=now,
        )
        return sign(claims, self.key_id, self.private)


@pytest.fixture
async def server(db: Database, clock: FrozenClock) -> AsyncIterator[tuple[Server, LastAccessRecorder]]:
    private = Ed25519PrivateKey.generate()
    key_id = f"k-{secrets.token_hex(4)}"
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    recorder = LastAccessRecorder(db, service="blob", interval=INTERVAL, clock=clock)
    middle: asyncio.Queue[None] = asyncio.Queue()
    go_on = asyncio.Event()

    async def keys() -> dict[str, bytes]:
        return {key_id: public}

    async def registered(client_id: str) -> bool:
        return client_id == APP

    async def upload(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        count = 0
        async for _ in requests:
            count += 1
            if count == 1:
                middle.put_nowait(None)
                await go_on.wait()
        return b"stored"

    async def download(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"part 1"
        middle.put_nowait(None)
        await go_on.wait()
        yield b"part 2"

    async def watch(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"change 1"
        middle.put_nowait(None)
        await asyncio.Event().wait()  # until the client goes away
        yield b"never"

    async def whoami(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"you"

    interceptor = CallInterceptor(
        verifier=TokenVerifier(KeyCache(keys), clock=OffsetClock()), clients=ClientRegistry(registered), recorder=recorder,
        callers=lambda method: None,  # a plaintext server of the test's own: no caller identities
    )
    grpc_server = grpc.aio.server(interceptors=[interceptor])
    grpc_server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(SERVICE, {
            "Upload": grpc.stream_unary_rpc_method_handler(upload),
            "Download": grpc.unary_stream_rpc_method_handler(download),
            "Watch": grpc.unary_stream_rpc_method_handler(watch),
            "Whoami": grpc.unary_unary_rpc_method_handler(whoami),
        }),
    ))
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        yield Server(f"127.0.0.1:{port}", key_id, private, middle, go_on), recorder
    finally:
        await grpc_server.stop(None)


async def recorded(db: Database) -> list[tuple[str, dt.datetime]]:
    """The access events in the outbox: (account, when), oldest first."""
    async with db.read() as conn:
        rows = (await conn.execute(db.outbox.select().order_by(db.outbox.c.created_at))).all()
    found = []
    for row in rows:
        envelope = events_pb2.Envelope.FromString(row.envelope)
        payload = events_pb2.AccessRecorded()
        assert envelope.payload.Unpack(payload)
        found.append((payload.account_id, payload.accessed_at.ToDatetime(tzinfo=dt.UTC)))
    return sorted(found, key=lambda item: item[1])


async def test_an_upload_stream_is_a_use_at_its_start_and_at_its_end(server, clock, db):
    door, recorder = server
    account = str(uuid.uuid4())
    metadata = with_client_id(door.token(account), APP)
    async with grpc.aio.insecure_channel(door.target) as channel:
        call = channel.stream_unary(f"/{SERVICE}/Upload")(metadata=metadata, timeout=20)
        await call.write(b"part 1")
        await asyncio.wait_for(door.middle.get(), 10)
        assert await recorder.flush() == 1  # the upload began: a use
        clock.advance(INTERVAL + dt.timedelta(minutes=5))  # a long upload
        door.go_on.set()
        await call.write(b"part 2")
        await call.done_writing()
        assert await call == b"stored"
    assert await recorder.flush() == 1  # ... and its end too
    assert await recorded(db) == [(account, START), (account, START + INTERVAL + dt.timedelta(minutes=5))]


async def test_a_short_upload_adds_nothing_to_its_start(server, clock, db):
    door, recorder = server
    door.go_on.set()
    account = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(door.target) as channel:
        answer = await channel.stream_unary(f"/{SERVICE}/Upload")(iter([b"a", b"b"]), metadata=with_client_id(door.token(account), APP), timeout=20)
    assert answer == b"stored"
    assert await recorder.flush() == 1
    assert await recorded(db) == [(account, START)]


async def test_a_download_stream_is_a_use_at_its_start_and_at_its_end(server, clock, db):
    door, recorder = server
    account = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(door.target) as channel:
        call = channel.unary_stream(f"/{SERVICE}/Download")(b"", metadata=with_client_id(door.token(account), APP), timeout=20)
        assert await call.read() == b"part 1"
        await asyncio.wait_for(door.middle.get(), 10)
        assert await recorder.flush() == 1  # the download began: a use
        clock.advance(INTERVAL + dt.timedelta(minutes=5))  # a long download
        door.go_on.set()
        assert await call.read() == b"part 2"
        assert await call.read() is grpc.aio.EOF
    assert await ended(recorder)  # ... and its end too
    assert await recorded(db) == [(account, START), (account, START + INTERVAL + dt.timedelta(minutes=5))]


async def test_a_watch_the_client_leaves_is_a_use_until_it_leaves(server, clock, db):
    door, recorder = server
    account = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(door.target) as channel:
        call = channel.unary_stream(f"/{SERVICE}/Watch")(b"", metadata=with_client_id(door.token(account), APP), timeout=20)
        assert await call.read() == b"change 1"
        await asyncio.wait_for(door.middle.get(), 10)
        assert await recorder.flush() == 1
        clock.advance(INTERVAL + dt.timedelta(hours=2))  # watched for hours
        assert call.cancel()
    assert await ended(recorder)  # the server saw the client go
    assert await recorded(db) == [(account, START), (account, START + INTERVAL + dt.timedelta(hours=2))]


async def test_an_upload_the_client_cancels_is_a_use_until_it_is_cancelled(server, clock, db):
    door, recorder = server
    account = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(door.target) as channel:
        call = channel.stream_unary(f"/{SERVICE}/Upload")(metadata=with_client_id(door.token(account), APP), timeout=20)
        await call.write(b"part 1")
        await asyncio.wait_for(door.middle.get(), 10)
        assert await recorder.flush() == 1
        clock.advance(INTERVAL + dt.timedelta(minutes=5))  # a long upload, given up midway
        assert call.cancel()
    assert await ended(recorder)
    assert await recorded(db) == [(account, START), (account, START + INTERVAL + dt.timedelta(minutes=5))]


async def ended(recorder: LastAccessRecorder) -> int:
    """Waits until the server has marked a stream's end (after the client is done with it,
    the server's side finishes on its own time) and flushed it."""
    return await eventually(recorder.flush, timeout=10, what="the stream's end to be marked")


def interval_for(environ: dict[str, str], service: str = "blob") -> dt.timedelta:
    env = Env(service, {"DATABASE_URL": "postgresql://localhost/cumulo", **environ})
    return PlatformSettings.from_env(service, env).last_access_interval


async def test_an_account_used_every_4_s_is_never_reported_idle_for_long_with_a_20_s_inactivity(db, clock):
    """With the interval the platform derives from CUMULO_LIFECYCLE_INACTIVITY=PT20S, the
    lifecycle hears of an account used every 4 s at every use; with the old fixed 10 minutes
    it would have heard once, and frozen it 20 s later."""
    inactivity = dt.timedelta(seconds=20)
    interval = interval_for({"CUMULO_LIFECYCLE_INACTIVITY": "PT20S"})
    recorder = LastAccessRecorder(db, service="blob", interval=interval, clock=clock)
    account = str(uuid.uuid4())
    for _ in range(30):  # two minutes of use
        recorder.mark(account)
        await recorder.flush()
        clock.advance(dt.timedelta(seconds=4))
    times = [at for _, at in await recorded(db)]
    assert times[0] == START and times[-1] >= START + dt.timedelta(seconds=112)
    # The longest the lifecycle's last access lags a use: far less than the inactivity.
    assert max(later - earlier for earlier, later in zip(times, times[1:])) <= dt.timedelta(seconds=4) < inactivity / 4
