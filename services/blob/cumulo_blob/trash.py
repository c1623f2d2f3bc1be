"""The trash: deleting moves a file or folder (with everything in it) there; it can be listed
and restored, and is emptied by the user or, after the retention period, by a job. Emptying is
refused while the account is under a legal hold (§3.3.1): nothing of it leaves storage."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cumulo.events.v1 import events_pb2
from cumulo_blob.adapters import nodes as tree
from cumulo_blob.adapters.tables import nodes
from cumulo_blob.config import BlobSettings
from cumulo_blob.contents import StoredContent
from cumulo_blob.domain.errors import LegalHold
from cumulo_blob.folders import listing_size
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, NotFound, parse_id
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import decode_token, encode_token, token_time

log = get_logger(__name__)


class Trash:
    def __init__(
        self, *, db: Database, clock: Clock, settings: BlobSettings, contents: StoredContent, holds: LegalHolds
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.contents = contents
        self.holds = holds

    async def delete(self, account: uuid.UUID, node_id: str) -> None:
        target = tree.node_id(node_id, "node_id")
        async with self.db.unit_of_work() as uow:
            await tree.load_visible(uow, account, target, lock=True)
            await uow.execute(sa.update(nodes).where(nodes.c.node_id == target).values(trashed_at=self.clock.now()))
            uow.emit("file.deleted", events_pb2.FileDeleted(account_id=str(account), node_id=str(target)), account_id=str(account))
            await uow.commit()

    async def list_trash(self, account: uuid.UUID, size: int, page_token: str) -> tuple[list[Any], str]:
        limit = listing_size(size)
        query = (
            sa.select(nodes)
            .where(nodes.c.account_id == account, nodes.c.trashed_at.is_not(None))
            .order_by(nodes.c.trashed_at.desc(), nodes.c.node_id)
            .limit(limit + 1)
        )
        if page_token:
            after_at, after_id = decode_token(page_token, str, str)
            at, node = token_time(after_at), parse_id(after_id, "page_token", "a token from a previous page")
            query = query.where(
                sa.or_(nodes.c.trashed_at < at, sa.and_(nodes.c.trashed_at == at, nodes.c.node_id > node))
            )
        async with self.db.read() as conn:
            rows = list((await conn.execute(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_token([rows[-1].trashed_at.isoformat(), str(rows[-1].node_id)]) if more else ""
        return rows, token

    async def restore(self, account: uuid.UUID, node_id: str) -> Any:
        target = tree.node_id(node_id, "node_id")
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
            if row.blocked:  # its content is blocked (content_blocks): it does not come back
                raise FailedPrecondition("this file's content has been blocked; it cannot be restored", reason="CONTENT_BLOCKED")
            parent = row.parent_id
            if parent is not None and not await tree.is_live(uow, account, parent):
                parent = None  # its folder is gone: it comes back in the root folder
            try:
                restored = (
                    await uow.execute(
                        sa.update(nodes).where(nodes.c.node_id == target)
                        .values(trashed_at=None, parent_id=parent).returning(*nodes.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise tree.name_clash(exc, row.name) or exc from None
            await uow.commit()
        return restored

    async def empty_trash(self, account: uuid.UUID, *, older_than: dt.datetime | None = None) -> int:
        """Deletes trashed items (and everything in trashed folders) for good; releases their
        content, whose stored objects go as soon as nothing references them."""
        condition = [nodes.c.account_id == account, nodes.c.trashed_at.is_not(None)]
        if older_than is not None:
            condition.append(nodes.c.trashed_at < older_than)
        if await self.holds.held(account):
            raise LegalHold("the account is under a legal hold; nothing is deleted for now")
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
                await self.contents.release(uow, account, sha256, refs)
            await uow.commit()
        await self.contents.delete_doomed(account)
        return len(doomed_ids)

    async def purge_old_trash(self) -> int:
        """The retention job: trash older than the retention period goes; a held account's
        trash waits for the release."""
        horizon = self.clock.now() - self.settings.trash_retention
        async with self.db.read() as conn:
            accounts = (
                await conn.execute(
                    sa.select(nodes.c.account_id)
                    .where(nodes.c.trashed_at < horizon, self.holds.not_held(nodes.c.account_id))
                    .distinct()
                    .limit(100)
                )
            ).scalars().all()
        total = 0
        for account in accounts:
            try:
                total += await self.empty_trash(account, older_than=horizon)
            except LegalHold:
                log.info("old_trash_kept_for_hold", account_id=str(account))  # held since the look above
        return total
