"""Resumable uploads.

Start: name, folder, size and SHA-256. Content a block holds (the account's own, or the
blocklist: content_blocks) is refused, there and again as the upload completes. Content the
account already holds completes at once (no bytes). Otherwise the size is reserved against
the quota (QUOTA_EXCEEDED before any byte flows) and an S3 multipart upload begins. Chunks stream in from the committed offset; every
full part goes to S3 as it is received (a few in flight), hashing as it goes, and the
committed offset, part ETags and the SHA-256 state are saved with each part — so a resumed
upload, in this process or any other, goes on from there. When the last byte arrives the
size and SHA-256 are checked, the object completed, and file record, content reference,
quota and event commit in one transaction.

No client can stall the service through its uploads: a stream holds no database connection
while it waits for its client (one writer per upload is a lease, see writer_lock; each record
takes a pooled connection for one statement), an account has a few streams at once at most
(one more is refused at once), and a stream that sends nothing for the idle timeout ends with
DEADLINE_EXCEEDED, its landed parts kept, to be resumed from the committed offset.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from cumulo.blob.v1 import blob_pb2
from cumulo.events.v1 import events_pb2
from cumulo_blob import content_blocks
from cumulo_blob.adapters import nodes as tree
from cumulo_blob.adapters.sha256 import ResumableSha256
from cumulo_blob.adapters.storage import object_key
from cumulo_blob.adapters.tables import contents, nodes, upload_writers, uploads
from cumulo_blob.config import BlobSettings
from cumulo_blob.content_blocks import ContentBlocked
from cumulo_blob.contents import StoredContent
from cumulo_blob.domain import names
from cumulo_blob.quota import Quota
from cumulo_blob.stream_limits import StreamSlots
from cumulo_blob.upload_parts import NoLongerWriter, PartWriter
from cumulo_blob.writer_lock import WriterLease, claim, held, renewed
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound, parse_id
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import check_sha256
from cumulo_platform.storage import Storage, UploadGone

log = get_logger(__name__)

MAX_FILE_SIZE = 5 * 1024**4  # S3's limit for one object
S3_MAX_PARTS = 10_000
RENAME_ATTEMPTS = 100
_SET_ON_COMPLETION = frozenset({"state", "node_id", "committed_offset"})


class Uploads:
    def __init__(
        self, *, db: Database, storage: Storage, settings: BlobSettings, clock: Clock, quota: Quota, contents: StoredContent
    ) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.clock = clock
        self.quota = quota
        self.contents = contents
        # Per account and replica: each stream holds part buffers and S3 parts in flight.
        self.streams = StreamSlots(
            limit=settings.uploads_per_account, what="upload streams of this account", reason="TOO_MANY_UPLOADS"
        )
        # Told the size of each piece of a file received from a client (metrics: bytes in).
        self.on_received: Callable[[int], None] | None = None

    # --- start ------------------------------------------------------------------------

    async def start(
        self, account: uuid.UUID, *, parent_id: str, name: str, size: int, sha256: str, content_type: str
    ) -> tuple[Any, Any | None]:
        """(upload row, file node if it completed at once)."""
        parent = tree.folder_id(parent_id, "parent_id")
        clean = names.check_name(name)
        digest = check_sha256(sha256)
        media = names.check_content_type(content_type)
        largest = min(MAX_FILE_SIZE, S3_MAX_PARTS * self.settings.part_size)
        if size < 0 or size > largest:
            raise InvalidArgument("size", f"must be between 0 and {largest} bytes")
        if size == 0 and digest != names.EMPTY_SHA256:
            raise InvalidArgument("sha256", "an empty file's SHA-256 is that of no bytes", reason="SHA256_MISMATCH")
        async with self.db.read() as conn:
            await tree.check_folder(conn, account, parent, "parent_id")
            taken = (await conn.execute(_live_name(account, parent, clean))).first()
            if taken is not None:
                raise tree.name_taken(clean)
            # What the account holds of this content, and whether a block refuses it: no
            # bytes are taken for content that could never be stored.
            held, blocked_by = (
                await conn.execute(
                    sa.select(
                        sa.select(contents.c.size).where(contents.c.account_id == account, contents.c.sha256 == digest).scalar_subquery(),
                        content_blocks.rule_of(account, digest),
                    )
                )
            ).one()
        if blocked_by is not None:
            raise ContentBlocked(blocked_by, "uploaded")
        upload_id = uuid.uuid4()
        now = self.clock.now()
        row_values = dict(
            upload_id=upload_id, account_id=account, parent_id=parent, name=clean, size=size, sha256=digest,
            content_type=media, created_at=now, expires_at=now + self.settings.upload_ttl,
        )
        if held is not None and held != size:
            raise InvalidArgument("size", "differs from the size of the content with this SHA-256")
        if held is not None or size == 0:
            key = object_key(str(account), str(upload_id))
            if held is None:  # the first empty file of this account
                await self.storage.put(key, b"")
            async with self.db.unit_of_work() as uow:
                await self.quota.lock(uow, account)
                still_held = (
                    await uow.execute(
                        sa.select(contents.c.size)
                        .where(contents.c.account_id == account, contents.c.sha256 == digest)
                        .with_for_update()
                    )
                ).first()
                # The content may have gone (trash emptied) since it was seen: then the bytes
                # must come after all — never a file pointing at an object nobody wrote.
                if still_held is not None or size == 0:
                    node = await self._store(uow, account, row_values, key=key)
                    await uow.commit()
                    return (await self.get(account, str(upload_id))), node
        await self.quota.check(account, size)
        key = object_key(str(account), str(upload_id))
        s3_upload_id = await self.storage.start_multipart(key)
        try:
            async with self.db.unit_of_work() as uow:
                await self.quota.lock(uow, account)
                await self.quota.check(account, size, uow=uow)
                await self.quota.reserve(uow, account, size)
                await uow.execute(
                    sa.insert(uploads).values(**row_values, s3_upload_id=s3_upload_id, hash_state=ResumableSha256().state())
                )
                await uow.commit()
        except BaseException:
            await asyncio.shield(self.storage.abort_multipart(key, s3_upload_id))
            raise
        return await self.get(account, str(upload_id)), None

    async def _store(self, uow: UnitOfWork, account: uuid.UUID, upload: dict[str, Any], *, key: str) -> Any:
        """The file record, its content reference and the quota, in the caller's transaction.
        A name taken meanwhile gets a free variant ("photo (1).jpg"): the bytes are safe.
        ContentBlocked, before anything is written, when a block holds the content."""
        content = (
            await uow.execute(
                sa.select(contents).where(contents.c.account_id == account, contents.c.sha256 == upload["sha256"]).with_for_update()
            )
        ).first()
        # Looked at with the content's row locked (and, completing, the upload's): a block
        # that commits from now on finds this file and blocks it (content_blocks).
        blocked_by = await content_blocks.rule(uow, account, upload["sha256"])
        if blocked_by is not None:
            raise ContentBlocked(blocked_by, "uploaded")
        if content is None:
            await uow.execute(
                sa.insert(contents).values(
                    account_id=account, sha256=upload["sha256"], size=upload["size"], refcount=1, s3_key=key,
                    created_at=self.clock.now(),
                )
            )
            await self.quota.use(uow, account, upload["size"])
        else:
            await uow.execute(
                sa.update(contents)
                .where(contents.c.account_id == account, contents.c.sha256 == upload["sha256"])
                .values(refcount=contents.c.refcount + 1)
            )
            if content.s3_key != key and upload.get("s3_upload_id"):
                await self.contents.doom(uow, account, key)  # an identical upload finished first
        node = await self._insert_file(uow, account, upload)
        await uow.execute(
            pg_insert(uploads)
            .values(
                **{k: v for k, v in upload.items() if k in uploads.c and k not in _SET_ON_COMPLETION},
                state="completed", node_id=node.node_id, committed_offset=upload["size"],
            )
            .on_conflict_do_update(index_elements=["upload_id"], set_={"state": "completed", "node_id": node.node_id,
                                                                      "committed_offset": upload["size"]})
        )
        uow.emit(
            "file.uploaded",
            events_pb2.FileUploaded(
                account_id=str(account), node_id=str(node.node_id), sha256=upload["sha256"], size=upload["size"],
                content_type=upload["content_type"],
            ),
            account_id=str(account),
        )
        return node

    async def _insert_file(self, uow: UnitOfWork, account: uuid.UUID, upload: dict[str, Any]) -> Any:
        now = self.clock.now()
        stem, dot, extension = upload["name"].rpartition(".")
        if not stem:
            stem, dot, extension = upload["name"], "", ""
        parent = upload["parent_id"]
        if parent is not None:
            if not await tree.is_live(uow, account, parent):
                parent = None  # its folder went while the bytes were on their way: keep them in the root
        attempt = 0
        while attempt < RENAME_ATTEMPTS:
            name = upload["name"] if attempt == 0 else f"{stem} ({attempt}){dot}{extension}"
            try:
                async with uow.session.begin_nested():
                    return (
                        await uow.execute(
                            sa.insert(nodes)
                            .values(
                                node_id=uuid.uuid4(), account_id=account, parent_id=parent, name=name,
                                kind="file", size=upload["size"], sha256=upload["sha256"],
                                content_type=upload["content_type"], created_at=now, modified_at=now,
                            )
                            .returning(*nodes.c)
                        )
                    ).one()
            except IntegrityError as exc:
                if "nodes_parent_id_fkey" in str(exc.orig) and parent is not None:
                    parent = None  # the folder was deleted for good just now
                    continue
                if "nodes_live_name" not in str(exc.orig):
                    raise
            attempt += 1
        raise tree.name_taken(upload["name"])

    # --- status -----------------------------------------------------------------------

    async def get(self, account: uuid.UUID, upload_id: str) -> Any:
        target = _upload_uuid(upload_id)
        async with self.db.read() as conn:
            row = (
                await conn.execute(sa.select(uploads).where(uploads.c.upload_id == target, uploads.c.account_id == account))
            ).first()
            if row is None:
                raise NotFound("no such upload", reason="UPLOAD_NOT_FOUND")
            node = None
            if row.node_id is not None:
                node = (await conn.execute(sa.select(nodes).where(nodes.c.node_id == row.node_id))).first()
        return row, node

    async def cancel(self, account: uuid.UUID, upload_id: str) -> None:
        target = _upload_uuid(upload_id)
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.select(uploads).where(uploads.c.upload_id == target, uploads.c.account_id == account).with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound("no such upload", reason="UPLOAD_NOT_FOUND")
            if row.state != "open":
                return
            if await uow.session.scalar(sa.select(held(target))):
                raise FailedPrecondition("this upload is being written; stop that stream first", reason="UPLOAD_BUSY")
            await self._end(uow, row, "cancelled")
            await uow.commit()
        await self.storage.abort_multipart(object_key(str(account), str(target)), row.s3_upload_id)

    async def _end(self, uow: UnitOfWork, row: Any, state: str) -> None:
        """Closes an open upload that will not complete, releasing its reservation."""
        await uow.execute(sa.update(uploads).where(uploads.c.upload_id == row.upload_id).values(state=state))
        await self.quota.release(uow, row.account_id, row.size)
        # A lapsed lease of a writer that died goes with it (a live one is its writer's to let go).
        await uow.execute(
            sa.delete(upload_writers).where(upload_writers.c.upload_id == row.upload_id, upload_writers.c.held_until <= sa.func.now())
        )

    async def expire_abandoned(self, batch_size: int = 100) -> int:
        """Open uploads past their expiry: S3 parts aborted, reservation released. Replicas
        share the work (SKIP LOCKED); an upload being written (its writer's lease is live) is
        skipped."""
        async with self.db.unit_of_work() as uow:
            rows = (
                await uow.execute(
                    sa.select(uploads)
                    .where(uploads.c.state == "open", uploads.c.expires_at < self.clock.now(), ~held(uploads.c.upload_id))
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            expired = 0
            for row in rows:
                await self.storage.abort_multipart(object_key(str(row.account_id), str(row.upload_id)), row.s3_upload_id)
                await self._end(uow, row, "expired")
                expired += 1
            await uow.commit()
        return expired

    # --- bytes ------------------------------------------------------------------------

    async def receive(self, account: uuid.UUID, requests: AsyncIterator[blob_pb2.UploadChunksRequest]) -> tuple[int, Any | None]:
        """Takes the chunk stream; returns (committed offset, file node when complete)."""
        with self.streams.take(account):  # refused at once past the account's limit
            try:
                first = await self._next(requests)
            except _ClientIdle:
                raise self._idle("no message came") from None
            if first is None:
                raise InvalidArgument("upload_id", "the first message must name the upload")
            target = _upload_uuid(first.upload_id)
            lease, row = await self._claim(account, target)
            if lease is None:  # completed already: nothing to write
                _, node = await self.get(account, str(target))
                return row.size, node
            async with renewed(lease):
                return await self._receive_held(lease, row, account, target, first, requests)

    async def put_part(self, account: uuid.UUID, upload_id: str, offset: int, data: bytes) -> tuple[int, Any | None]:
        """One piece at an offset, as a stream of one message (the same lease, parts, SHA-256
        state and quota); a piece that landed already answers the upload's state again."""
        if offset < 0:
            raise InvalidArgument("offset", "must not be negative")
        upload, node = await self.get(account, upload_id)
        if node is not None:
            return upload.size, node
        if offset + len(data) <= upload.committed_offset and offset < upload.committed_offset:
            return upload.committed_offset, None  # sent again after it landed: idempotent

        async def one() -> AsyncIterator[blob_pb2.UploadChunksRequest]:
            yield blob_pb2.UploadChunksRequest(upload_id=upload_id, offset=offset, data=data)

        return await self.receive(account, one())

    async def _next(self, requests: AsyncIterator[blob_pb2.UploadChunksRequest]) -> blob_pb2.UploadChunksRequest | None:
        """The stream's next message (None at its end); _ClientIdle when none comes in time."""
        try:
            async with asyncio.timeout(self.settings.upload_idle_timeout.total_seconds()):
                message = await anext(requests)
            if self.on_received is not None:
                self.on_received(len(message.data))
            return message
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise _ClientIdle() from None

    def _idle(self, what: str, committed: int | None = None) -> DeadlineExceeded:
        """The end of a stream whose client went quiet; its upload stays open, to be resumed."""
        seconds = f"{self.settings.upload_idle_timeout.total_seconds():g}"
        if committed is None:
            return DeadlineExceeded(f"{what} for {seconds} s, so this stream was ended", reason="UPLOAD_IDLE")
        return DeadlineExceeded(
            f"{what} for {seconds} s, so this stream was ended; the upload goes on from byte {committed}",
            reason="UPLOAD_IDLE",
            metadata={"committed_offset": str(committed)},
        )

    async def _claim(self, account: uuid.UUID, target: uuid.UUID) -> tuple[WriterLease | None, Any]:
        """The upload taken for this stream, and its row as of then; no lease for an upload
        that completed already. UPLOAD_BUSY while another stream holds it."""
        writer_id = uuid.uuid4()
        async with self.db.unit_of_work() as uow:
            taken = (await uow.execute(claim(target, account, writer_id))).first()
            # Read after the claim: a writer before this one recorded its parts before it let go.
            row = (
                await uow.execute(sa.select(uploads).where(uploads.c.upload_id == target, uploads.c.account_id == account))
            ).first()
            if row is None:
                raise NotFound("no such upload", reason="UPLOAD_NOT_FOUND")  # the claim is rolled back
            if row.state == "completed":
                return None, row
            if row.state != "open":
                raise FailedPrecondition(f"this upload is {row.state}; start a new one", reason="UPLOAD_CLOSED")
            if row.expires_at < self.clock.now():
                raise FailedPrecondition("this upload has expired; start a new one", reason="UPLOAD_CLOSED")
            if taken is None:
                raise FailedPrecondition("this upload is being written by another stream", reason="UPLOAD_BUSY")
            await uow.commit()
        return WriterLease(self.db, target, writer_id), row

    async def _receive_held(
        self,
        lease: WriterLease,
        row: Any,
        account: uuid.UUID,
        target: uuid.UUID,
        first: blob_pb2.UploadChunksRequest,
        requests: AsyncIterator[blob_pb2.UploadChunksRequest],
    ) -> tuple[int, Any | None]:
        if first.offset != row.committed_offset:
            raise FailedPrecondition(
                f"offset: the upload goes on from byte {row.committed_offset}",
                reason="OFFSET_MISMATCH",
                metadata={"committed_offset": str(row.committed_offset), "field": "offset"},
            )
        writer = PartWriter(
            self.storage, self.db, lease, row, part_size=self.settings.part_size, parts_in_flight=self.settings.parts_in_flight
        )
        try:
            try:
                await writer.take(first.data)
                while (request := await self._next(requests)) is not None:
                    if lease.lost:
                        raise NoLongerWriter(str(target))
                    if request.upload_id and request.upload_id != first.upload_id:
                        raise InvalidArgument("upload_id", "only the first message names the upload")
                    await writer.take(request.data)
                committed = await writer.finish_stream()
            except _ClientIdle:
                committed = await writer.land_in_flight()
                raise self._idle("no bytes came", committed) from None
        except UploadGone:
            await writer.abandon()
            await self._lost(row)
            raise FailedPrecondition("the stored parts of this upload are gone; start again", reason="UPLOAD_LOST") from None
        except NoLongerWriter:
            await writer.abandon()
            raise await self._displaced(target) from None
        except BaseException:
            await writer.abandon()
            raise
        if committed < row.size:
            return committed, None
        return row.size, await self._complete(account, target, writer.digest())

    async def _displaced(self, target: uuid.UUID) -> FailedPrecondition:
        """Why a stream may write no more: its upload was closed meanwhile, or taken over."""
        async with self.db.read() as conn:
            state = (await conn.execute(sa.select(uploads.c.state).where(uploads.c.upload_id == target))).scalar()
        if state != "open":
            return FailedPrecondition("this upload was closed while it was being written", reason="UPLOAD_CLOSED")
        return FailedPrecondition("another stream took this upload over", reason="UPLOAD_BUSY")

    async def _lost(self, row: Any) -> None:
        """The upload cannot go on: closed as failed, its reservation released at once."""
        async with self.db.unit_of_work() as uow:
            locked = (await uow.execute(sa.select(uploads).where(uploads.c.upload_id == row.upload_id).with_for_update())).first()
            if locked is not None and locked.state == "open":  # (a purge takes the row away)
                await self._end(uow, locked, "failed")
            await uow.commit()

    async def _complete(self, account: uuid.UUID, target: uuid.UUID, digest: str) -> Any:
        row, _ = await self.get(account, str(target))
        key = object_key(str(account), str(target))
        if digest != row.sha256:
            await self._lost(row)
            await self.storage.abort_multipart(key, row.s3_upload_id)
            raise InvalidArgument(
                "sha256", "the bytes received do not have the SHA-256 given at the start; nothing was stored",
                reason="SHA256_MISMATCH",
            )
        if not await self.storage.complete_multipart(key, row.s3_upload_id, list(row.part_etags)):
            # Completed before a crash, or lost: only an object of the right size will do.
            if await self.storage.size_of(key) != row.size:
                await self._lost(row)
                raise FailedPrecondition("the stored parts of this upload are gone; start again", reason="UPLOAD_LOST")
        async with self.db.unit_of_work() as uow:
            await self.quota.lock(uow, account)
            locked = (await uow.execute(sa.select(uploads).where(uploads.c.upload_id == target).with_for_update())).first()
            if locked is not None and locked.state == "completed":
                node = (await uow.execute(sa.select(nodes).where(nodes.c.node_id == locked.node_id))).first()
                return node
            if locked is None or locked.state != "open":
                # Cancelled, expired or purged while its last bytes landed: the object goes.
                await self.contents.doom(uow, account, key)
                await uow.commit()
                await self.contents.delete_doomed(account)
                raise FailedPrecondition("this upload was closed before it completed", reason="UPLOAD_CLOSED")
            blocked: ContentBlocked | None = None
            try:
                node = await self._store(uow, account, dict(row._mapping), key=key)
            except ContentBlocked as refused:
                # Blocked while its bytes came: the upload fails and its object goes.
                await self._end(uow, locked, "failed")
                await self.contents.doom(uow, account, key)
                await uow.commit()
                blocked = refused
            else:
                await self.quota.release(uow, account, row.size)
                await uow.commit()
        await self.contents.delete_doomed(account)  # a copy that lost a race with identical bytes
        if blocked is not None:
            log.info("upload_refused_content_blocked", upload_id=str(target), rule=blocked.rule)
            raise blocked
        return node


class _ClientIdle(Exception):
    """No message came from the client within the idle timeout."""


def _upload_uuid(value: str) -> uuid.UUID:
    return parse_id(value, "upload_id", "an upload id from StartUpload")


def _live_name(account: uuid.UUID, parent: uuid.UUID | None, name: str) -> sa.Select:
    return sa.select(sa.literal(1)).where(
        nodes.c.account_id == account,
        nodes.c.parent_id.is_(None) if parent is None else nodes.c.parent_id == parent,
        nodes.c.name == name,
        nodes.c.trashed_at.is_(None),
    )

