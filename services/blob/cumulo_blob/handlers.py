"""Files and folders, trash, usage and downloads of the caller's own account. Every query
is scoped by the caller's account id: another account's node looks exactly like a missing one."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from cumulo.events.v1 import events_pb2
from cumulo_blob.adapters.tables import contents, doomed_objects, holds, nodes, purged_accounts, usage
from cumulo_blob.config import BlobSettings
from cumulo_blob.domain import names
from cumulo_blob.plans import Plans
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    parse_id,
)
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import decode_token, encode_token, page_size
from cumulo_platform.storage import Storage

log = get_logger(__name__)
MAX_PAGE = 1000
DEFAULT_PAGE = 100


def node_uuid(value: str, field: str, *, root_allowed: bool = False) -> uuid.UUID | None:
    if value == "" and root_allowed:
        return None
    return parse_id(value, field, "a node id" + (" or empty for the root folder" if root_allowed else ""))


def _page_size(value: int, field: str = "page_size") -> int:
    return page_size(value, default=DEFAULT_PAGE, maximum=MAX_PAGE, field=field)


def name_clash(exc: IntegrityError, name: str, field: str = "name") -> AlreadyExists | None:
    if "nodes_live_name" in str(exc.orig):
        return AlreadyExists(f"{field}: {name!r} already exists in this folder", reason="NAME_TAKEN", metadata={"field": field})
    return None


class BlobHandlers:
    def __init__(self, *, db: Database, storage: Storage, settings: BlobSettings, clock: Clock, plans: Plans) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.clock = clock
        self.plans = plans
        self.purged: set[uuid.UUID] = set()  # filled at start-up and by purges

    async def load_purged(self) -> None:
        async with self.db.read() as conn:
            self.purged = set((await conn.execute(sa.select(purged_accounts.c.account_id))).scalars().all())

    async def refuse_purged(self, principal: Any) -> None:
        """The account gate: an account whose data was purged gets ACCOUNT_DELETED.
        (Other replicas learn of a purge at their next start; the lifecycle's account-state
        events will tell them at once.)"""
        if self.purged and uuid.UUID(principal.account_id) in self.purged:
            raise FailedPrecondition("this account has been deleted", reason="ACCOUNT_DELETED")

    # --- nodes ------------------------------------------------------------------------

    async def load_node(self, conn: Any, account: uuid.UUID, node_id: uuid.UUID, *, lock: bool = False) -> Any:
        query = sa.select(nodes).where(nodes.c.node_id == node_id, nodes.c.account_id == account, nodes.c.trashed_at.is_(None))
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound("no such file or folder", reason="NODE_NOT_FOUND")
        return row

    async def load_live_node(self, uow: UnitOfWork, account: uuid.UUID, node_id: uuid.UUID) -> Any:
        """A node to change: locked, and not inside a trashed folder (there it is gone from
        the caller's view; Restore brings the folder back first)."""
        node = await self.load_node(uow, account, node_id, lock=True)
        try:
            await self.check_folder(uow, account, node.parent_id, "node_id")
        except (NotFound, FailedPrecondition):
            raise NotFound("no such file or folder", reason="NODE_NOT_FOUND") from None
        return node

    async def check_folder(self, conn: Any, account: uuid.UUID, folder_id: uuid.UUID | None, field: str) -> None:
        """A live folder of the account (or the root); a trashed ancestor makes it not live."""
        if folder_id is None:
            return
        row = (await conn.execute(LIVE_CHAIN, {"node_id": folder_id, "account_id": account})).first()
        if row is None:
            raise NotFound(f"{field}: no such folder", reason="FOLDER_NOT_FOUND", metadata={"field": field})
        if row.kind != "folder":
            raise FailedPrecondition(f"{field}: is a file, not a folder", reason="NOT_A_FOLDER", metadata={"field": field})
        if not row.live:
            raise NotFound(f"{field}: no such folder", reason="FOLDER_NOT_FOUND", metadata={"field": field})

    async def create_folder(self, account: uuid.UUID, parent_id: str, name: str) -> Any:
        parent = node_uuid(parent_id, "parent_id", root_allowed=True)
        clean = names.check_name(name)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            await self.check_folder(uow, account, parent, "parent_id")
            try:
                row = (
                    await uow.execute(
                        sa.insert(nodes)
                        .values(node_id=uuid.uuid4(), account_id=account, parent_id=parent, name=clean, kind="folder",
                                created_at=now, modified_at=now)
                        .returning(*nodes.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise name_clash(exc, clean) or exc from None
            await uow.commit()
        return row

    async def list_folder(self, account: uuid.UUID, folder_id: str, page_size: int, page_token: str) -> tuple[list[Any], str]:
        folder = node_uuid(folder_id, "folder_id", root_allowed=True)
        size = _page_size(page_size)
        async with self.db.read() as conn:
            await self.check_folder(conn, account, folder, "folder_id")
            is_file = (nodes.c.kind == "file")
            query = (
                sa.select(nodes)
                .where(
                    nodes.c.account_id == account,
                    nodes.c.parent_id.is_(None) if folder is None else nodes.c.parent_id == folder,
                    nodes.c.trashed_at.is_(None),
                )
                .order_by(is_file, nodes.c.name)
                .limit(size + 1)
            )
            if page_token:
                after_is_file, after_name = decode_token(page_token, bool, str)
                query = query.where(sa.tuple_(is_file, nodes.c.name) > sa.tuple_(sa.literal(bool(after_is_file)), sa.literal(str(after_name))))
            rows = (await conn.execute(query)).all()
        more = len(rows) > size
        rows = rows[:size]
        token = encode_token([rows[-1].kind == "file", rows[-1].name]) if more else ""
        return rows, token

    async def stat(self, account: uuid.UUID, node_id: str) -> Any:
        target = node_uuid(node_id, "node_id")
        async with self.db.read() as conn:
            row = await self.load_node(conn, account, target)
            await self.check_folder(conn, account, row.parent_id, "node_id")
        return row

    async def rename(self, account: uuid.UUID, node_id: str, new_name: str) -> Any:
        target = node_uuid(node_id, "node_id")
        clean = names.check_name(new_name, "new_name")
        async with self.db.unit_of_work() as uow:
            await self.load_live_node(uow, account, target)
            try:
                row = (
                    await uow.execute(
                        sa.update(nodes).where(nodes.c.node_id == target)
                        .values(name=clean, modified_at=self.clock.now()).returning(*nodes.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise name_clash(exc, clean, "new_name") or exc from None
            await uow.commit()
        return row

    async def move(self, account: uuid.UUID, node_id: str, new_parent_id: str) -> Any:
        target = node_uuid(node_id, "node_id")
        parent = node_uuid(new_parent_id, "new_parent_id", root_allowed=True)
        async with self.db.unit_of_work() as uow:
            # Folder moves of one account, one at a time: two crossing moves cannot make a cycle.
            await uow.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"move:{account}"})
            node = await self.load_live_node(uow, account, target)
            await self.check_folder(uow, account, parent, "new_parent_id")
            if parent is not None and node.kind == "folder":
                ancestors = (await uow.execute(_ANCESTORS, {"node_id": parent})).scalars().all()
                if target in ancestors:
                    raise FailedPrecondition("new_parent_id: a folder cannot move into itself", reason="MOVE_INTO_ITSELF",
                                             metadata={"field": "new_parent_id"})
            try:
                row = (
                    await uow.execute(
                        sa.update(nodes).where(nodes.c.node_id == target)
                        .values(parent_id=parent, modified_at=self.clock.now()).returning(*nodes.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise name_clash(exc, node.name) or exc from None
            await uow.commit()
        return row

    # --- trash ------------------------------------------------------------------------

    async def delete(self, account: uuid.UUID, node_id: str) -> None:
        target = node_uuid(node_id, "node_id")
        async with self.db.unit_of_work() as uow:
            await self.load_live_node(uow, account, target)
            await uow.execute(sa.update(nodes).where(nodes.c.node_id == target).values(trashed_at=self.clock.now()))
            uow.emit("file.deleted", events_pb2.FileDeleted(account_id=str(account), node_id=str(target)), account_id=str(account))
            await uow.commit()

    async def list_trash(self, account: uuid.UUID, page_size: int, page_token: str) -> tuple[list[Any], str]:
        size = _page_size(page_size)
        query = (
            sa.select(nodes)
            .where(nodes.c.account_id == account, nodes.c.trashed_at.is_not(None))
            .order_by(nodes.c.trashed_at.desc(), nodes.c.node_id)
            .limit(size + 1)
        )
        if page_token:
            after_at, after_id = decode_token(page_token, str, str)
            try:
                at, node = dt.datetime.fromisoformat(after_at), uuid.UUID(after_id)
            except (TypeError, ValueError):
                raise InvalidArgument("page_token", "is not a token from a previous page") from None
            query = query.where(
                sa.or_(nodes.c.trashed_at < at, sa.and_(nodes.c.trashed_at == at, nodes.c.node_id > node))
            )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > size
        rows = rows[:size]
        token = encode_token([rows[-1].trashed_at.isoformat(), str(rows[-1].node_id)]) if more else ""
        return rows, token

    async def restore(self, account: uuid.UUID, node_id: str) -> Any:
        target = node_uuid(node_id, "node_id")
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.select(nodes)
                    .where(nodes.c.node_id == target, nodes.c.account_id == account, nodes.c.trashed_at.is_not(None))
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound("no such item in the trash", reason="NODE_NOT_FOUND")
            parent = row.parent_id
            if parent is not None:
                found = (await uow.execute(LIVE_CHAIN, {"node_id": parent, "account_id": account})).first()
                if found is None or not found.live:
                    parent = None  # its folder is gone: it comes back in the root folder
            try:
                restored = (
                    await uow.execute(
                        sa.update(nodes).where(nodes.c.node_id == target)
                        .values(trashed_at=None, parent_id=parent).returning(*nodes.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise name_clash(exc, row.name) or exc from None
            await uow.commit()
        return restored

    async def empty_trash(self, account: uuid.UUID, *, older_than: dt.datetime | None = None) -> int:
        """Deletes trashed items (and everything in trashed folders) for good; releases their
        content, whose stored objects go as soon as nothing references them."""
        condition = [nodes.c.account_id == account, nodes.c.trashed_at.is_not(None)]
        if older_than is not None:
            condition.append(nodes.c.trashed_at < older_than)
        if await self.held(account):
            raise FailedPrecondition("the account is under a legal hold; nothing is deleted for now", reason="LEGAL_HOLD")
        async with self.db.unit_of_work() as uow:
            # Locked: a restore that commits first takes its item out of this emptying.
            root_ids = (await uow.execute(sa.select(nodes.c.node_id).where(*condition).with_for_update())).scalars().all()
            if not root_ids:
                return 0
            roots = sa.select(nodes.c.node_id).where(nodes.c.node_id.in_(root_ids)).cte("roots", recursive=True)
            subtree = roots.union_all(sa.select(nodes.c.node_id).where(nodes.c.parent_id == roots.c.node_id))
            doomed_ids = (await uow.execute(sa.select(subtree.c.node_id))).scalars().all()
            released = (
                await uow.execute(
                    sa.select(nodes.c.sha256, sa.func.count().label("refs"))
                    .where(nodes.c.node_id.in_(doomed_ids), nodes.c.kind == "file")
                    .group_by(nodes.c.sha256)
                )
            ).all()
            await uow.execute(sa.delete(nodes).where(nodes.c.node_id.in_(doomed_ids)))
            for sha256, refs in released:
                await self.release_content(uow, account, sha256, refs)
            await uow.commit()
        await self.delete_doomed(account)
        return len(doomed_ids)

    async def release_content(self, uow: UnitOfWork, account: uuid.UUID, sha256: str, refs: int = 1) -> None:
        """Drops references; the last one frees the space and dooms the stored object."""
        row = (
            await uow.execute(
                sa.update(contents)
                .where(contents.c.account_id == account, contents.c.sha256 == sha256)
                .values(refcount=contents.c.refcount - refs)
                .returning(contents.c.refcount, contents.c.size, contents.c.s3_key)
            )
        ).one()
        if row.refcount > 0:
            return
        await uow.execute(sa.delete(contents).where(contents.c.account_id == account, contents.c.sha256 == sha256))
        await uow.execute(sa.update(usage).where(usage.c.account_id == account).values(used=usage.c.used - row.size))
        await self.doom(uow, account, row.s3_key)

    async def doom(self, uow: UnitOfWork, account: uuid.UUID, key: str) -> None:
        await uow.execute(
            pg_insert(doomed_objects).values(key=key, account_id=account, created_at=self.clock.now()).on_conflict_do_nothing()
        )

    async def held(self, account: uuid.UUID) -> bool:
        async with self.db.read() as conn:
            return (await conn.execute(sa.select(holds.c.account_id).where(holds.c.account_id == account))).first() is not None

    async def delete_doomed(self, account: uuid.UUID | None = None, batch_size: int = 100) -> int:
        """Deletes stored objects nothing references any more; replicas share the work. Objects
        of accounts under a legal hold stay, whatever happened to their files."""
        deleted = 0
        async with self.db.unit_of_work() as uow:
            query = (
                sa.select(doomed_objects.c.key)
                .where(~sa.exists().where(holds.c.account_id == doomed_objects.c.account_id))
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
            if account is not None:
                query = query.where(doomed_objects.c.account_id == account)
            keys = (await uow.execute(query)).scalars().all()
            for key in keys:
                try:
                    await self.storage.delete(key)
                except Exception as exc:  # S3 away: the sweeper tries again later
                    log.warning("doomed_object_kept", error=type(exc).__name__)
                    break
                await uow.execute(sa.delete(doomed_objects).where(doomed_objects.c.key == key))
                deleted += 1
            await uow.commit()
        return deleted

    async def purge_old_trash(self) -> int:
        horizon = self.clock.now() - self.settings.trash_retention
        async with self.db.read() as conn:
            accounts = (
                await conn.execute(
                    sa.select(nodes.c.account_id).where(nodes.c.trashed_at < horizon).distinct().limit(100)
                )
            ).scalars().all()
        total = 0
        for account in accounts:
            if not await self.held(account):  # a held account's trash waits for the release
                total += await self.empty_trash(account, older_than=horizon)
        return total

    # --- usage and download --------------------------------------------------------------

    async def usage(self, account: uuid.UUID) -> tuple[int, int, int]:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(usage).where(usage.c.account_id == account))).first()
            quota = await self.plans.quota_of(conn, account)
        used, reserved = (row.used, row.reserved) if row else (0, 0)
        return used, reserved, quota

    async def open_download(self, account: uuid.UUID, node_id: str, offset: int, length: int) -> tuple[Any, str, int, int]:
        target = node_uuid(node_id, "node_id")
        async with self.db.read() as conn:
            node = await self.load_node(conn, account, target)
            await self.check_folder(conn, account, node.parent_id, "node_id")
            if node.kind != "file":
                raise FailedPrecondition("node_id: is a folder; download its files one by one", reason="NOT_A_FILE",
                                         metadata={"field": "node_id"})
            if node.blocked:
                raise PermissionDenied("this file has been blocked and cannot be downloaded", reason="CONTENT_BLOCKED")
            key = (
                await conn.execute(
                    sa.select(contents.c.s3_key).where(contents.c.account_id == account, contents.c.sha256 == node.sha256)
                )
            ).scalar_one()
        if offset < 0 or offset > node.size:
            raise InvalidArgument("offset", f"must be between 0 and the file's size ({node.size})")
        if length < 0:
            raise InvalidArgument("length", "must not be negative (0 means to the end)")
        length = node.size - offset if length == 0 else min(length, node.size - offset)
        return node, key, offset, length

    async def read(self, key: str, offset: int, length: int, *, ahead: int = 4) -> AsyncIterator[bytes]:
        """The stored bytes, read from S3 up to `ahead` chunks before the caller takes them,
        so the S3 read and the gRPC send overlap (memory stays bounded by `ahead` MiB)."""
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


# A node with whether it and all its ancestors are live (not trashed).
LIVE_CHAIN = sa.text(
    """
    WITH RECURSIVE chain AS (
        SELECT node_id, parent_id, kind, trashed_at, 0 AS depth FROM blob.nodes
        WHERE node_id = :node_id AND account_id = :account_id
        UNION ALL
        SELECT n.node_id, n.parent_id, n.kind, n.trashed_at, c.depth + 1 FROM blob.nodes n
        JOIN chain c ON n.node_id = c.parent_id
        WHERE c.depth < 10000
    )
    SELECT (SELECT kind FROM chain WHERE depth = 0) AS kind,
           bool_and(trashed_at IS NULL) AS live
    FROM chain HAVING count(*) > 0
    """
)

_ANCESTORS = sa.text(
    """
    WITH RECURSIVE chain AS (
        SELECT node_id, parent_id FROM blob.nodes WHERE node_id = :node_id
        UNION
        SELECT n.node_id, n.parent_id FROM blob.nodes n JOIN chain c ON n.node_id = c.parent_id
    )
    SELECT node_id FROM chain
    """
)
