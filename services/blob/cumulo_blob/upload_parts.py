"""The bytes of one upload stream on their way to S3: incoming chunks are buffered into parts,
each full part is sent while the next arrives (a few in flight), hashing as it goes, and the
committed offset, part ETags and SHA-256 state are recorded in order as parts land — so a
resumed upload, in this process or any other, goes on from there. Each record takes a pooled
database connection for its one statement: none is held while the client is waited for."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import sqlalchemy as sa

from cumulo_blob.adapters.sha256 import ResumableSha256
from cumulo_blob.adapters.storage import object_key
from cumulo_blob.adapters.tables import uploads
from cumulo_blob.writer_lock import WriterLease
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument
from cumulo_platform.storage import Storage


class NoLongerWriter(Exception):
    """A part's record found the upload closed (cancelled, expired, purged) or taken over."""


class PartWriter:
    """`lease` is the stream's hold on the upload; `row` the open upload as it was claimed."""

    def __init__(
        self, storage: Storage, db: Database, lease: WriterLease, row: Any, *, part_size: int, parts_in_flight: int
    ) -> None:
        self.storage = storage
        self.db = db
        self.lease = lease
        self.row = row
        self.key = object_key(str(row.account_id), str(row.upload_id))
        self.part_size = part_size
        self.parts_in_flight = parts_in_flight
        self.received = row.committed_offset
        self.etags = list(row.part_etags)
        self.hasher = ResumableSha256(row.hash_state)
        # Incoming chunks are kept as they came and joined once per part: one 8 MiB
        # allocation per part, no growing or shifting buffer.
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.in_flight: collections.deque[tuple[asyncio.Task[str], int, bytes]] = collections.deque()

    async def take(self, data: bytes) -> None:
        if not data:
            return
        if self.received + self.buffered + len(data) > self.row.size:
            raise InvalidArgument("data", f"more bytes than the {self.row.size} declared at the start")
        self.chunks.append(data)
        self.buffered += len(data)
        while self.buffered >= self.part_size:
            await self._send(self._cut(self.part_size))

    def _cut(self, size: int) -> bytes:
        """The next `size` buffered bytes as one object (a single copy of them)."""
        taken: list[bytes | memoryview] = []
        total = 0
        while total < size:
            chunk = self.chunks.popleft()
            need = size - total
            if len(chunk) > need:
                view = memoryview(chunk)
                taken.append(view[:need])
                self.chunks.appendleft(bytes(view[need:]))
                total += need
            else:
                taken.append(chunk)
                total += len(chunk)
        self.buffered -= size
        return b"".join(taken)

    async def _send(self, part: bytes) -> None:
        await asyncio.to_thread(self.hasher.update, part)
        number = len(self.etags) + len(self.in_flight) + 1
        self.received += len(part)
        task = asyncio.create_task(self.storage.upload_part(self.key, self.row.s3_upload_id, number, part))
        self.in_flight.append((task, self.received, self.hasher.state()))
        while len(self.in_flight) >= self.parts_in_flight:
            await self._land_oldest()

    async def _land_oldest(self) -> None:
        task, end, state = self.in_flight[0]
        etag = await task
        self.in_flight.popleft()
        self.etags.append(etag)
        # One statement on an autocommit connection: no transaction to roll back when the
        # stream is cancelled inside it (the client's Ctrl-C), so the cancellation stays the end.
        async with self.db.read() as conn:
            recorded = await conn.execute(
                sa.update(uploads)
                .where(uploads.c.upload_id == self.row.upload_id, uploads.c.state == "open", self.lease.still_mine())
                .values(committed_offset=end, part_etags=self.etags, hash_state=state)
            )
        if recorded.rowcount == 0:
            raise NoLongerWriter(str(self.row.upload_id))

    async def finish_stream(self) -> int:
        """The stream ended: the last part goes too if the upload is whole; a partial part of
        an unfinished upload is dropped (S3 parts but the last must be 5 MiB or more), and the
        client resumes from the committed offset."""
        if self.buffered and self.received + self.buffered == self.row.size:
            await self._send(self._cut(self.buffered))
        return await self.land_in_flight()

    async def land_in_flight(self) -> int:
        """The parts on their way land and are recorded; the bytes of a partial part are
        dropped. Answers the committed offset."""
        while self.in_flight:
            await self._land_oldest()
        self.chunks.clear()
        self.buffered = 0
        return int(self.received)

    def digest(self) -> str:
        return self.hasher.hexdigest()

    async def abandon(self) -> None:
        for task, _, _ in self.in_flight:
            task.cancel()
        await asyncio.gather(*(t for t, _, _ in self.in_flight), return_exceptions=True)
