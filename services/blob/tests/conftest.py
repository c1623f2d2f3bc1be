"""Fixtures of the blob service's tests.

- `owners`: logs in new accounts (each an `Owner`: its own SDK client, by default through
  the gateway) — `alice` and `bob` are two of them, fresh for each test; `resident` lives
  as long as the test module, and `workdir` is a new folder of its, for one test.
- `Owner`: the BlobService calls as the tests make them (raw stubs for the streaming calls,
  so a test controls every message), failures raised as CumuloRpcError.
- `invoke`: any BlobService method (unary or streaming) with metadata of the test's choosing.
- `blob_clock`: the blob service's clock; whatever a test moves is put back afterwards.
- `peek`: looks where clients cannot — the blob schema and the S3 bucket.
- `until_dry`: a sweeping job run until it finds nothing more.

Test modules cannot import each other (importlib mode); what they share lives here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2
from cumulo.blob.v1 import blob_pb2
from cumulo_blob.adapters.storage import object_key
from cumulo_devstack.servers import MailCatcher
from cumulo_devstack.testing import PASSWORD, call, call_in_shape, transport_for, unique_email, verify_email
from cumulo_platform.clock import OffsetClock
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sdk.client import Tokens

MIB = 1024 * 1024
PART = 8 * MIB  # the service's part size (CUMULO_BLOB_PART_SIZE_BYTES default)
CHUNK = MIB  # bytes per UploadChunks message unless a test says otherwise


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def until_dry(sweep: Callable[[], Awaitable[int]]) -> int:
    """Runs a job that sweeps a batch a call (upload expiry, trash purge) until it finds
    nothing more; answers how many it swept in all."""
    total = 0
    for _ in range(20):
        swept = await sweep()
        total += swept
        if swept == 0:
            return total
    raise AssertionError(f"{getattr(sweep, '__name__', 'the sweep')} never ran dry")


def as_rpc_error(exc: grpc.aio.AioRpcError) -> CumuloRpcError:
    return CumuloRpcError.from_rpc_error(exc)


BLOB_METHODS = blob_pb2.DESCRIPTOR.services_by_name["BlobService"].methods_by_name


async def invoke_stub(stub: Any, method: str, request: Any, metadata: list[tuple[str, str]], *, timeout: float = 30) -> Any:
    """One BlobService call, whatever its shape: a client stream gets `request` as its only
    message; a server stream's messages come back as a list. Failures raise CumuloRpcError."""
    return await call_in_shape(getattr(stub, method), BLOB_METHODS[method], request, metadata=metadata, timeout=timeout, messages="all")


def split(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@dataclasses.dataclass
class Owner:
    """A logged-in account and the calls the tests make as it."""

    client: Cumulo
    account_id: str
    email: str

    @property
    def stub(self) -> Any:
        return self.client.files.stub

    async def token(self) -> str:
        return await self.client.access_token()

    async def metadata(self) -> list[tuple[str, str]]:
        return self.client.metadata(await self.token())

    async def rpc(self, method: str, request: Any) -> Any:
        """A unary BlobService call with this owner's fresh token."""
        return await self.client.call(getattr(self.stub, method), request)

    # --- folders -----------------------------------------------------------------------

    async def mkdir(self, name: str, parent_id: str = "") -> blob_pb2.Node:
        return (await self.rpc("CreateFolder", blob_pb2.CreateFolderRequest(parent_id=parent_id, name=name))).folder

    async def ls(self, folder_id: str = "") -> list[blob_pb2.Node]:
        return list(await self.client.files.ls(folder_id))

    async def names(self, folder_id: str = "") -> list[str]:
        return [n.name for n in await self.ls(folder_id)]

    async def stat(self, node_id: str) -> blob_pb2.Node:
        return (await self.rpc("Stat", blob_pb2.StatRequest(node_id=node_id))).node

    async def delete(self, node_id: str) -> None:
        await self.rpc("Delete", blob_pb2.DeleteRequest(node_id=node_id))

    async def trash(self) -> list[blob_pb2.Node]:
        return list(await self.client.files.trash())

    async def usage(self) -> blob_pb2.GetUsageResponse:
        return await self.rpc("GetUsage", blob_pb2.GetUsageRequest())

    # --- uploads -----------------------------------------------------------------------

    async def start(
        self,
        name: str,
        data: bytes = b"",
        *,
        parent_id: str = "",
        size: int | None = None,
        sha256: str | None = None,
        content_type: str = "",
    ) -> blob_pb2.StartUploadResponse:
        """StartUpload for `data` (or the size and digest given instead)."""
        return await self.rpc(
            "StartUpload",
            blob_pb2.StartUploadRequest(
                parent_id=parent_id,
                name=name,
                size=len(data) if size is None else size,
                sha256=sha(data) if sha256 is None else sha256,
                content_type=content_type,
            ),
        )

    async def send(self, upload_id: str, offset: int, data: bytes, *, chunk: int = CHUNK) -> blob_pb2.UploadChunksResponse:
        """One UploadChunks stream: the first message names the upload and the offset, the
        bytes follow in messages of `chunk` bytes; the stream then ends."""
        return await self.send_messages(upload_id, offset, split(data, chunk))

    async def send_messages(self, upload_id: str, offset: int, pieces: Iterable[bytes]) -> blob_pb2.UploadChunksResponse:
        async def messages() -> AsyncIterator[blob_pb2.UploadChunksRequest]:
            first = True
            for piece in pieces:
                if first:
                    yield blob_pb2.UploadChunksRequest(upload_id=upload_id, offset=offset, data=piece)
                    first = False
                else:
                    yield blob_pb2.UploadChunksRequest(data=piece)

        try:
            return await self.stub.UploadChunks(messages(), metadata=await self.metadata(), timeout=60)
        except grpc.aio.AioRpcError as exc:
            raise as_rpc_error(exc) from None

    async def put(self, name: str, data: bytes, *, parent_id: str = "", content_type: str = "") -> blob_pb2.Node:
        """A whole upload (instant when the account already holds the bytes)."""
        started = await self.start(name, data, parent_id=parent_id, content_type=content_type)
        if started.HasField("file"):
            return started.file
        done = await self.send(started.upload_id, started.committed_offset, data)
        assert done.HasField("file"), done
        return done.file

    async def get_upload(self, upload_id: str) -> blob_pb2.GetUploadResponse:
        return await self.rpc("GetUpload", blob_pb2.GetUploadRequest(upload_id=upload_id))

    async def cancel(self, upload_id: str) -> None:
        await self.rpc("CancelUpload", blob_pb2.CancelUploadRequest(upload_id=upload_id))

    # --- downloads ---------------------------------------------------------------------

    async def download(self, node_id: str, offset: int = 0, length: int = 0) -> tuple[blob_pb2.Node | None, bytes]:
        """Download's first message (the file) and the bytes of the rest."""
        node: blob_pb2.Node | None = None
        data = bytearray()
        try:
            async for message in self.stub.Download(
                blob_pb2.DownloadRequest(node_id=node_id, offset=offset, length=length), metadata=await self.metadata(), timeout=60
            ):
                if message.HasField("file"):
                    assert node is None and not data, "the file's metadata comes once, first"
                    node = message.file
                else:
                    data += message.data
        except grpc.aio.AioRpcError as exc:
            raise as_rpc_error(exc) from None
        return node, bytes(data)

    async def read(self, node_id: str) -> bytes:
        return (await self.download(node_id))[1]


class Owners:
    """Registers and logs in accounts, each with a client of its own."""

    def __init__(self, auth_target: str, gateway: str, mail: MailCatcher) -> None:
        self.auth_target = auth_target
        self.gateway = gateway
        self.mail = mail
        self.clients: list[Cumulo] = []

    async def new(self, target: str | None = None) -> Owner:
        """A newly registered adult, logged in, its e-mail address verified (people share with
        it), whose client calls `target` (the gateway by default; a blob service directly, for
        one of the tests' own)."""
        email = unique_email()
        async with Cumulo(self.auth_target, transport=transport_for(self.auth_target)) as to_auth:
            await to_auth.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
            # A fake client address of its own: the login throttle never counts our logins together.
            response = await call(
                to_auth, to_auth.auth.Login, auth_pb2.LoginRequest(login=email, password=PASSWORD, device_name="blob tests")
            )
            to_auth.store.save(Tokens.from_pair(response.tokens, account_id=response.account.account_id, login=email))
            await verify_email(to_auth, self.mail, email)
        client = Cumulo(target or self.gateway, transport=transport_for(target or self.gateway))
        client.store.save(Tokens.from_pair(response.tokens, account_id=response.account.account_id, login=email))
        self.clients.append(client)
        return Owner(client, response.account.account_id, email)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()


@pytest.fixture(scope="session")
async def owners(auth, gateway, mail) -> AsyncIterator[Owners]:
    factory = Owners(auth.target, gateway, mail)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def alice(owners: Owners) -> Owner:
    return await owners.new()


@pytest.fixture
async def bob(owners: Owners) -> Owner:
    return await owners.new()


@pytest.fixture(scope="module")
async def resident(owners: Owners) -> Owner:
    """One account for a whole test module, for tests that each work in a folder of their
    own (logging in an account per test costs more than the test)."""
    return await owners.new()


@pytest.fixture
async def workdir(resident: Owner) -> str:
    """A new folder of `resident`'s, for one test."""
    return (await resident.mkdir(f"test-{uuid.uuid4().hex[:12]}")).node_id


@pytest.fixture
def invoke():
    return invoke_stub


@pytest.fixture
def blob_clock(blob) -> Iterator[OffsetClock]:
    """The blob service's clock (which also judges token expiry there); put back afterwards."""
    before = blob.clock.offset
    yield blob.clock
    blob.clock.offset = before


class Peek:
    """What only the service sees: its tables and its bucket."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.storage = app.storage

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.app.db.engine.connect() as conn:
            return (await conn.execute(sa.text(sql), params)).scalar()

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.app.db.engine.begin() as conn:
            await conn.execute(sa.text(sql), params)

    async def content_key(self, account_id: str, sha256: str) -> str | None:
        """The S3 key of an account's content with that SHA-256 (None if it holds none)."""
        return await self.scalar(
            "SELECT s3_key FROM blob.contents WHERE account_id = :a AND sha256 = :s", a=uuid.UUID(account_id), s=sha256
        )

    async def upload_state(self, upload_id: str) -> str | None:
        return await self.scalar("SELECT state FROM blob.uploads WHERE upload_id = :u", u=uuid.UUID(upload_id))

    async def file_nodes(self, account_id: str) -> int:
        """Every file record of the account, live or trashed."""
        return await self.scalar(
            "SELECT count(*) FROM blob.nodes WHERE account_id = :a AND kind = 'file'", a=uuid.UUID(account_id)
        )

    async def writer_holds(self, upload_id: str) -> bool:
        """Whether an UploadChunks stream holds the upload (its writer's lease is live), seen
        from outside without taking it."""
        return bool(
            await self.scalar(
                "SELECT count(*) FROM blob.upload_writers WHERE upload_id = :u AND held_until > now()", u=uuid.UUID(upload_id)
            )
        )

    async def block(self, node_id: str) -> None:
        await self.execute("UPDATE blob.nodes SET blocked = true WHERE node_id = :n", n=uuid.UUID(node_id))

    def upload_key(self, account_id: str, upload_id: str) -> str:
        return object_key(account_id, upload_id)

    async def object_size(self, key: str) -> int | None:
        return await self.storage.size_of(key)

    async def objects(self, account_id: str) -> list[str]:
        """The keys stored in the bucket for the account."""
        response = await self.storage.client.list_objects_v2(Bucket=self.storage.bucket, Prefix=f"accounts/{account_id}/")
        return [item["Key"] for item in response.get("Contents", [])]

    async def multipart_uploads(self, account_id: str) -> list[str]:
        """The keys of the account's unfinished S3 multipart uploads."""
        response = await self.storage.client.list_multipart_uploads(Bucket=self.storage.bucket, Prefix=f"accounts/{account_id}/")
        return [item["Key"] for item in response.get("Uploads", [])]


@pytest.fixture
def peek(blob) -> Peek:
    return Peek(blob.app)
