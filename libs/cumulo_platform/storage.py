"""S3 through aiobotocore, one bucket per `Storage`: multipart uploads, ranged reads, copies
between buckets, hashing in place. Connection failures become UNAVAILABLE; nothing here holds
a whole object in memory."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from cumulo_platform.errors import Unavailable
from cumulo_platform.logging import get_logger
from cumulo_platform.settings import PlatformSettings

log = get_logger(__name__)
READ_CHUNK = 2 * 1024 * 1024  # bytes per piece that `read` yields, and per ranged GET of a download

_OUTAGES = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ResponseStreamingError,
    OSError,
)


class UploadGone(Exception):
    """S3 no longer knows this multipart upload (aborted, expired, or lost by the server)."""


@contextlib.contextmanager
def _outage_as_unavailable() -> Any:
    try:
        yield
    except _OUTAGES as exc:
        log.warning("s3_unavailable", error=type(exc).__name__)
        raise Unavailable("file storage is briefly unavailable; retry", reason="STORAGE_UNAVAILABLE") from None


class ObjectWriter:
    """One object written as a stream of bytes: gathered into parts of `part_size` and
    uploaded as each fills (memory: about one part), sized and hashed (SHA-256) on the way.
    `finish` completes the upload; `abort` (or a failure before `finish`) gives it up."""

    def __init__(self, storage: Storage, key: str, upload_id: str, part_size: int) -> None:
        self.storage = storage
        self.key = key
        self.upload_id = upload_id
        self.part_size = part_size
        self.size = 0
        self._hasher = hashlib.sha256()
        self._pending = bytearray()
        self._etags: list[str] = []

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self._hasher.update(data)
        self._pending += data
        self.size += len(data)
        if len(self._pending) >= self.part_size:
            await self._flush()

    async def _flush(self) -> None:
        chunk = bytes(self._pending)
        self._pending.clear()
        self._etags.append(await self.storage.upload_part(self.key, self.upload_id, len(self._etags) + 1, chunk))

    @property
    def parts_sent(self) -> int:
        return len(self._etags)

    @property
    def sha256(self) -> str:
        return self._hasher.hexdigest()

    async def finish(self) -> None:
        if self._pending or not self._etags:
            await self._flush()
        if not await self.storage.complete_multipart(self.key, self.upload_id, self._etags):
            raise Unavailable("file storage lost an object being written; try again", reason="STORAGE_UNAVAILABLE")

    async def abort(self) -> None:
        self._pending.clear()
        await self.storage.abort_multipart(self.key, self.upload_id)


class Storage:
    def __init__(self, *, endpoint: str, access_key: str, secret_key: str, region: str, bucket: str) -> None:
        self.bucket = bucket
        self._settings = dict(
            endpoint_url=endpoint or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region,
            # rclone serve s3 (and some others) fail botocore's whole-object checksum checks on
            # ranged reads; cumulo verifies SHA-256 itself, end to end.
            config=AioConfig(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=32,
            ),
        )
        self._exit: contextlib.AsyncExitStack | None = None
        self.client: Any = None
        self._signers: dict[str, Any] = {}

    @classmethod
    def of(cls, platform: PlatformSettings, bucket: str) -> Storage:
        """The bucket with the service's S3 keys; the preservation bucket with its own where
        they are configured."""
        preservation = bucket == platform.preservation_bucket
        return cls(
            endpoint=platform.s3_endpoint,
            access_key=platform.preservation_access_key if preservation else platform.s3_access_key,
            secret_key=platform.preservation_secret_key if preservation else platform.s3_secret_key,
            region=platform.s3_region, bucket=bucket,
        )

    async def open(self) -> None:
        self._exit = contextlib.AsyncExitStack()
        self.client = await self._exit.enter_async_context(get_session().create_client("s3", **self._settings))

    async def ensure_bucket(self) -> None:
        with _outage_as_unavailable():
            try:
                await self.client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError:
                await self.client.create_bucket(Bucket=self.bucket)

    async def presigned_get(self, key: str, *, public_endpoint: str, expires_in: int) -> str:
        """A URL that lets whoever holds it GET (ranges allowed) this one object for
        `expires_in` seconds, and nothing else. Signed with SigV4 for `public_endpoint`, the
        address clients use (the signature covers the Host header): whatever forwards it to the
        object store must keep that Host. Computed here; nothing goes to S3."""
        signer = await self._signer(public_endpoint)
        url = await signer.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in)
        return str(url)

    async def _signer(self, public_endpoint: str) -> Any:
        signer = self._signers.get(public_endpoint)
        if signer is None:
            assert self._exit is not None, "open() first"
            settings = {**self._settings, "endpoint_url": public_endpoint}
            settings["config"] = settings["config"].merge(AioConfig(signature_version="s3v4"))
            signer = await self._exit.enter_async_context(get_session().create_client("s3", **settings))
            self._signers[public_endpoint] = signer
        return signer

    async def close(self) -> None:
        if self._exit is not None:
            await self._exit.aclose()
            self._exit = None
            self._signers.clear()

    async def start_multipart(self, key: str) -> str:
        with _outage_as_unavailable():
            response = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        return response["UploadId"]

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        with _outage_as_unavailable():
            try:
                response = await self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
                    raise UploadGone(upload_id) from None
                raise
        return response["ETag"]

    async def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> bool:
        """False when S3 no longer knows the upload (completed before a crash, or aborted)."""
        parts = [{"PartNumber": i + 1, "ETag": etag} for i, etag in enumerate(etags)]
        with _outage_as_unavailable():
            try:
                await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
                    return False
                raise
        return True

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        with _outage_as_unavailable():
            try:
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                    raise

    async def new_writer(self, key: str, *, part_size: int = 8 * 1024 * 1024) -> ObjectWriter:
        """An ObjectWriter for `key` whose `finish` or `abort` is the caller's to call."""
        return ObjectWriter(self, key, await self.start_multipart(key), part_size)

    @contextlib.asynccontextmanager
    async def writer(self, key: str, *, part_size: int = 8 * 1024 * 1024) -> AsyncIterator[ObjectWriter]:
        """An ObjectWriter for `key`, finished when the block ends, aborted if it raises."""
        writer = await self.new_writer(key, part_size=part_size)
        try:
            yield writer
            await writer.finish()
        except BaseException:
            with contextlib.suppress(Exception):
                await writer.abort()
            raise

    async def put(self, key: str, data: bytes) -> None:
        with _outage_as_unavailable():
            await self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    async def size_of(self, key: str) -> int | None:
        with _outage_as_unavailable():
            try:
                response = await self.client.head_object(Bucket=self.bucket, Key=key)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return int(response["ContentLength"])

    async def read(self, key: str, offset: int, length: int) -> AsyncIterator[bytes]:
        """Bytes [offset, offset+length) in chunks of at most 1 MiB."""
        if length <= 0:
            return
        with _outage_as_unavailable():
            response = await self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}"
            )
            body = response["Body"]
            try:
                # The HTTP body arrives in small pieces; gather them into 1 MiB messages.
                pending: list[bytes] = []
                size = 0
                while True:
                    chunk = await body.read(READ_CHUNK - size)
                    if not chunk:
                        break
                    pending.append(chunk)
                    size += len(chunk)
                    if size >= READ_CHUNK:
                        yield b"".join(pending)
                        pending, size = [], 0
                if pending:
                    yield b"".join(pending)
            finally:
                body.close()

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) by one ranged GET, read whole and the response closed
        before they are returned: a caller that is slow to use them (a download whose client
        does not read) holds neither a pooled connection nor an open response. For pieces of a
        few MiB; `read` streams longer ranges."""
        if length <= 0:
            return b""
        with _outage_as_unavailable():
            response = await self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")
            async with response["Body"] as body:
                return bytes(await body.read())

    async def delete(self, key: str) -> None:
        with _outage_as_unavailable():
            await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def copy_from(self, source_bucket: str, source_key: str, key: str) -> None:
        """A server-side copy of another bucket's object into this one."""
        with _outage_as_unavailable():
            await self.client.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": source_key})

    async def digest(self, key: str) -> tuple[int, str] | None:
        """(size, SHA-256 hex) of the object as stored, read in chunks; None if it is missing."""
        size = await self.size_of(key)
        if size is None:
            return None
        hasher = hashlib.sha256()
        async for chunk in self.read(key, 0, size):
            hasher.update(chunk)
        return size, hasher.hexdigest()

    async def read_small(self, key: str, limit: int) -> bytes | None:
        """A whole small object (a manifest), refused above `limit` bytes; None if missing."""
        size = await self.size_of(key)
        if size is None:
            return None
        if size > limit:
            raise ValueError(f"{key} is {size} bytes, more than {limit}")
        return b"".join([chunk async for chunk in self.read(key, 0, size)])

    async def delete_prefix(self, prefix: str) -> int:
        """Deletes every object whose key starts with `prefix`; answers how many."""
        deleted = 0
        with _outage_as_unavailable():
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    await self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                    deleted += 1
        return deleted
