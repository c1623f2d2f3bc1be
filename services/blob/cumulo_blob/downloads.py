"""Downloads: a file's bytes, whole or a range, read from S3 one window ahead of the sender so
the S3 read and the gRPC send overlap — and no further, so a client that does not read costs
the service two windows' memory (a few MiB) and nothing of S3's. How many downloads may run at
once per client address and per share link is counted here (the API holds a slot per stream
until its call is over)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

import sqlalchemy as sa

from cumulo_blob.adapters import nodes as tree
from cumulo_blob.adapters.tables import contents
from cumulo_blob.config import BlobSettings
from cumulo_blob.stream_limits import StreamSlots
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from cumulo_platform.storage import READ_CHUNK, Storage

# (file row, S3 key, first byte, number of bytes): what a download serves.
Served = tuple[Any, str, int, int]

# A download's bytes go out in messages of MESSAGE_BYTES: a client that goes on reading, however
# slowly, takes one within the stall timeout (512 KiB a minute is 70 kbit/s), while bigger
# messages are no faster. They are cut from windows of WINDOW_BYTES, one ranged GET each.
MESSAGE_BYTES = 512 * 1024
WINDOW_BYTES = READ_CHUNK


def byte_range(node: Any, offset: int, length: int) -> tuple[int, int]:
    """The (offset, length) asked for, within the file; a length of 0 is to the end."""
    if offset < 0 or offset > node.size:
        raise InvalidArgument("offset", f"must be between 0 and the file's size ({node.size})")
    if length < 0:
        raise InvalidArgument("length", "must not be negative (0 means to the end)")
    return offset, node.size - offset if length == 0 else min(length, node.size - offset)


class Downloads:
    def __init__(self, *, db: Database, storage: Storage, settings: BlobSettings, clock: Clock) -> None:
        self.db = db
        self.storage = storage
        self.clock = clock
        self.url_base = settings.download_url_base
        self.url_ttl = settings.download_url_ttl
        self.stall_timeout = settings.download_stall_timeout
        self.per_address = StreamSlots(
            limit=settings.downloads_per_address, what="downloads from this address", reason="TOO_MANY_DOWNLOADS"
        )
        self.per_link = StreamSlots(limit=settings.downloads_per_link, what="downloads of this link", reason="LINK_BUSY")
        # Told the size of each piece of a file sent to a client through blob (metrics: bytes
        # out; downloads by signed URL go from the object store through Envoy, never here).
        self.on_sent: Callable[[int], None] | None = None

    async def open(self, account: uuid.UUID, node_id: str, offset: int, length: int) -> Served:
        """One of the caller's own files."""
        target = tree.node_id(node_id, "node_id")
        async with self.db.read() as conn:
            node = await tree.load(conn, account, target)
            await tree.check_folder(conn, account, node.parent_id, "node_id")
            if node.kind != "file":
                raise FailedPrecondition("node_id: is a folder; download its files one by one", reason="NOT_A_FILE",
                                         metadata={"field": "node_id"})
            if node.blocked:
                raise PermissionDenied("this file has been blocked and cannot be downloaded", reason="CONTENT_BLOCKED")
            key = await self.key_of(conn, node)
        return node, key, *byte_range(node, offset, length)

    async def signed_url(self, served: Served) -> tuple[Any, str, dt.datetime]:
        """(file, URL, until when) for a download already checked (owner or share, blocked
        content, account state: what `open` and the sharing checks did): a signed GET of its
        stored content, so the bytes never pass through this service."""
        if not self.url_base:
            raise FailedPrecondition(
                "signed download URLs are not set up on this server; download through Download", reason="DOWNLOAD_URLS_UNAVAILABLE"
            )
        node, key, _, _ = served
        seconds = int(self.url_ttl.total_seconds())
        url = await self.storage.presigned_get(key, public_endpoint=self.url_base, expires_in=seconds)
        return node, url, self.clock.now() + dt.timedelta(seconds=seconds)

    async def key_of(self, conn: Any, node: Any) -> str:
        """The S3 key of a file's content."""
        return str(
            (
                await conn.execute(
                    sa.select(contents.c.s3_key).where(contents.c.account_id == node.account_id, contents.c.sha256 == node.sha256)
                )
            ).scalar_one()
        )

    async def read(self, key: str, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        """The stored bytes in messages of MESSAGE_BYTES, cut from windows of WINDOW_BYTES. Each
        window is one ranged GET, read whole and its response closed before its first message
        is handed on, so nothing of S3's (a pooled connection, an open response) waits on a
        client that is slow to read; the next window is fetched while this one is sent, and no
        more. (The window is all that is kept here: a message handed on is the sender's.)"""
        end = offset + length
        ahead = self._fetch(key, offset, end) if length > 0 else None

        async def take(piece: asyncio.Task[bytes]) -> bytes:
            nonlocal offset, ahead
            window = await piece
            offset += len(window)
            ahead = self._fetch(key, offset, end) if offset < end else None
            return window

        try:
            while ahead is not None:
                window = await take(ahead)
                for at in range(0, len(window), MESSAGE_BYTES):
                    yield window[at : at + MESSAGE_BYTES]
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)

    def _fetch(self, key: str, offset: int, end: int) -> asyncio.Task[bytes]:
        async def fetch() -> bytes:
            data = await self.storage.read_range(key, offset, min(WINDOW_BYTES, end - offset))
            if not data:
                raise RuntimeError(f"{key} ends before byte {offset}: shorter than its record")
            return data

        return asyncio.create_task(fetch())
