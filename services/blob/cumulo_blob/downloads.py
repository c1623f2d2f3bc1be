"""Downloads: a file's bytes, whole or a range, read from S3 a little ahead of the sender so
the S3 read and the gRPC send overlap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from cumulo_blob.adapters import nodes as tree
from cumulo_blob.adapters.tables import contents
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from cumulo_platform.storage import Storage

# (file row, S3 key, first byte, number of bytes): what a download serves.
Served = tuple[Any, str, int, int]


def byte_range(node: Any, offset: int, length: int) -> tuple[int, int]:
    """The (offset, length) asked for, within the file; a length of 0 is to the end."""
    if offset < 0 or offset > node.size:
        raise InvalidArgument("offset", f"must be between 0 and the file's size ({node.size})")
    if length < 0:
        raise InvalidArgument("length", "must not be negative (0 means to the end)")
    return offset, node.size - offset if length == 0 else min(length, node.size - offset)


class Downloads:
    def __init__(self, *, db: Database, storage: Storage) -> None:
        self.db = db
        self.storage = storage

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

    async def key_of(self, conn: Any, node: Any) -> str:
        """The S3 key of a file's content."""
        return str(
            (
                await conn.execute(
                    sa.select(contents.c.s3_key).where(contents.c.account_id == node.account_id, contents.c.sha256 == node.sha256)
                )
            ).scalar_one()
        )

    async def read(self, key: str, offset: int, length: int, *, ahead: int = 4) -> AsyncIterator[bytes]:
        """The stored bytes, read from S3 up to `ahead` chunks before the caller takes them
        (memory stays bounded by `ahead` chunks)."""
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=ahead)

        async def produce() -> None:
            try:
                async for chunk in self.storage.read(key, offset, length):
                    await queue.put(chunk)
                await queue.put(None)
            except BaseException as exc:  # handed to the reader, which raises it
                await queue.put(exc)

        producer = asyncio.create_task(produce())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
