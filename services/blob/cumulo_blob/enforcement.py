"""Enforcement and deletion for other services: block and unblock a file, legal holds, and
the account purge of the lifecycle's deletion saga."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_blob.adapters.storage import object_key
from cumulo_blob.adapters.tables import (
    contents,
    doomed_objects,
    holds,
    nodes,
    purged_accounts,
    share_links,
    uploads,
    usage,
)
from cumulo_blob.handlers import BlobHandlers, node_uuid
from cumulo_blob.sharing import BLOCKED_LINK
from cumulo_blob.uploads import upload_lock_key
from cumulo_platform.db import UnitOfWork
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, parse_id, require_audit
from cumulo_platform.evidence import evidence_prefix
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import decode_token, encode_token, page_size
from cumulo_platform.storage import Storage

log = get_logger(__name__)
PURGE_BATCH = 500

# The account's files among :ids that are live: neither they nor a folder above them trashed.
_LIVE_FILES = sa.text(
    """
    WITH RECURSIVE chain AS (
        SELECT node_id AS file_id, parent_id, trashed_at, 0 AS depth FROM blob.nodes
        WHERE account_id = :account_id AND node_id = ANY(CAST(:ids AS uuid[])) AND kind = 'file'
        UNION ALL
        SELECT c.file_id, n.parent_id, n.trashed_at, c.depth + 1 FROM blob.nodes n
        JOIN chain c ON n.node_id = c.parent_id
        WHERE c.depth < 10000
    )
    SELECT * FROM blob.nodes WHERE node_id IN (
        SELECT file_id FROM chain GROUP BY file_id HAVING bool_and(trashed_at IS NULL))
    """
)
MAX_FILES_PER_CALL = 1000
EXPORT_PAGE = 100


def _account(value: str) -> uuid.UUID:
    return parse_id(value, "account_id", "an account id (UUID)")


class Enforcement:
    def __init__(self, files: BlobHandlers, preservation: Storage) -> None:
        self.files = files
        self.preservation = preservation
        self.db = files.db
        self.storage = files.storage
        self.clock = files.clock

    async def set_blocked(self, account_id: str, node_id: str, *, blocked: bool, reason: str, actor: str) -> Any:
        account = _account(account_id)
        target = node_uuid(node_id, "node_id")
        require_audit(reason, actor)
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.update(nodes)
                    .where(nodes.c.node_id == target, nodes.c.account_id == account, nodes.c.kind == "file")
                    .values(blocked=blocked)
                    .returning(*nodes.c)
                )
            ).first()
            if row is None:
                raise NotFound("no such file", reason="NODE_NOT_FOUND")
            if blocked:
                # A blocked file's links are disconnected; unblocking (a takedown found wrong,
                # a counter-notice) reconnects the ones the block disconnected, not others.
                await uow.execute(
                    sa.update(share_links)
                    .where(share_links.c.node_id == target, share_links.c.revoked_at.is_(None))
                    .values(revoked_at=self.clock.now(), revoke_reason=BLOCKED_LINK)
                )
            else:
                await uow.execute(
                    sa.update(share_links)
                    .where(share_links.c.node_id == target, share_links.c.revoke_reason == BLOCKED_LINK)
                    .values(revoked_at=None, revoke_reason="")
                )
            await uow.commit()
        log.info("file_blocked" if blocked else "file_unblocked", node_id=str(target), actor=actor)
        return row

    async def set_link_blocked(self, link_id: str, *, blocked: bool, reason: str, actor: str) -> None:
        target = parse_id(link_id, "link_id", "a share link id (UUID)")
        require_audit(reason, actor)
        async with self.db.unit_of_work() as uow:
            found = (await uow.execute(sa.select(share_links.c.link_id).where(share_links.c.link_id == target).with_for_update())).first()
            if found is None:
                raise NotFound("no such share link", reason="LINK_NOT_FOUND")
            if blocked:
                await uow.execute(
                    sa.update(share_links)
                    .where(share_links.c.link_id == target, share_links.c.revoked_at.is_(None))
                    .values(revoked_at=self.clock.now(), revoke_reason=BLOCKED_LINK)
                )
            else:
                await uow.execute(
                    sa.update(share_links)
                    .where(share_links.c.link_id == target, share_links.c.revoke_reason == BLOCKED_LINK)
                    .values(revoked_at=None, revoke_reason="")
                )
            await uow.commit()
        log.info("link_blocked" if blocked else "link_unblocked", link_id=str(target), actor=actor)

    async def set_hold(self, account_id: str, *, held: bool, reason: str, actor: str) -> None:
        account = _account(account_id)
        require_audit(reason, actor)
        async with self.db.unit_of_work() as uow:
            if held:
                await uow.execute(
                    pg_insert(holds)
                    .values(account_id=account, reason=reason, actor=actor, since=self.clock.now())
                    .on_conflict_do_update(index_elements=["account_id"], set_={"reason": reason, "actor": actor})
                )
            else:
                await uow.execute(sa.delete(holds).where(holds.c.account_id == account))
            await uow.commit()
        log.info("legal_hold_set" if held else "legal_hold_released", account_id=str(account), actor=actor)

    def _files(self, node_ids: Any) -> list[uuid.UUID]:
        if len(node_ids) > MAX_FILES_PER_CALL:
            raise InvalidArgument("node_ids", f"at most {MAX_FILES_PER_CALL} per call")
        return [node_uuid(value, f"node_ids[{i}]") for i, value in enumerate(node_ids)]  # type: ignore[misc]

    async def describe_files(self, account_id: str, node_ids: Any) -> list[Any]:
        account = _account(account_id)
        wanted = self._files(node_ids)
        if not wanted:
            return []
        async with self.db.read() as conn:
            return list((await conn.execute(_LIVE_FILES, {"account_id": account, "ids": wanted})).all())

    async def delete_files(self, account_id: str, node_ids: Any, *, reason: str, actor: str) -> int:
        """Deletes files of the account for good, for a service that owned them (a pruned
        backup); those already gone are skipped."""
        account = _account(account_id)
        wanted = self._files(node_ids)
        require_audit(reason, actor)
        if not wanted:
            return 0
        if await self.files.held(account):
            raise FailedPrecondition("the account is under a legal hold; nothing is deleted", reason="LEGAL_HOLD")
        async with self.db.unit_of_work() as uow:
            gone = (
                await uow.execute(
                    sa.delete(nodes)
                    .where(nodes.c.account_id == account, nodes.c.node_id.in_(wanted), nodes.c.kind == "file")
                    .returning(nodes.c.sha256)
                )
            ).scalars().all()
            refs: dict[str, int] = {}
            for sha256 in gone:
                refs[sha256] = refs.get(sha256, 0) + 1
            for sha256, count in refs.items():
                await self.files.release_content(uow, account, sha256, count)
            await uow.commit()
        await self.files.delete_doomed(account)
        log.info("files_deleted", account_id=str(account), count=len(gone), actor=actor)
        return len(gone)

    async def find_content(self, *, link_token: str = "", node_id: str = "") -> tuple[str, Any, str]:
        """(owner account id, file row, link id or "") of what a complaint names."""
        async with self.db.read() as conn:
            link_id = ""
            if link_token:
                link = (
                    await conn.execute(
                        sa.select(share_links.c.link_id, share_links.c.node_id).where(
                            share_links.c.token_hash == hashlib.sha256(link_token.encode()).digest()
                        )
                    )
                ).first()
                if link is None:
                    raise NotFound("no such share link", reason="LINK_NOT_FOUND")
                target, link_id = link.node_id, str(link.link_id)
            elif node_id:
                target = node_uuid(node_id, "node_id")
            else:
                raise InvalidArgument("target", "give a link token or a node id")
            row = (await conn.execute(sa.select(nodes).where(nodes.c.node_id == target))).first()
        if row is None:
            raise NotFound("no such file", reason="NODE_NOT_FOUND")
        return str(row.account_id), row, link_id

    async def export_files(self, account_id: str, export_id: str, *, size: int, token: str) -> tuple[list[tuple[Any, str]], str]:
        """Copies a page of the account's files (trashed ones too) into the preservation
        bucket, one object per distinct content; answers (file row, key) pairs and the next
        page token. Copying again is harmless, so a page can be asked for twice."""
        account = _account(account_id)
        export = parse_id(export_id, "export_id", "an export id (UUID)")
        limit = page_size(size, default=EXPORT_PAGE, maximum=EXPORT_PAGE)
        after = parse_id(decode_token(token, str)[0], "page_token", "a token from a previous page") if token else None
        query = (
            sa.select(nodes, contents.c.s3_key)
            .join(contents, sa.and_(contents.c.account_id == nodes.c.account_id, contents.c.sha256 == nodes.c.sha256))
            .where(nodes.c.account_id == account, nodes.c.kind == "file")
            .order_by(nodes.c.node_id)
            .limit(limit + 1)
        )
        if after is not None:
            query = query.where(nodes.c.node_id > after)
        async with self.db.read() as conn:
            rows = list((await conn.execute(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        copied: dict[str, str] = {}
        out = []
        for row in rows:
            key = evidence_prefix(account, export) + f"files/{row.sha256}"
            if row.sha256 not in copied:
                await self.preservation.copy_from(self.storage.bucket, row.s3_key, key)
                copied[row.sha256] = key
            out.append((row, key))
        next_token = encode_token([str(rows[-1].node_id)]) if more else ""
        log.info("files_exported", account_id=str(account), export_id=str(export), count=len(out))
        return out, next_token

    async def on_purge_requested(self, envelope: events_pb2.Envelope, uow: UnitOfWork) -> None:
        """The `purge.requested` handler of the lifecycle's deletion saga. A held account is
        left alone (the lifecycle asks again later); an unfinished purge fails the event,
        which comes back."""
        request = events_pb2.PurgeRequested()
        envelope.payload.Unpack(request)
        if request.services and "blob" not in request.services:
            return
        try:
            await self.purge(request.account_id)
        except FailedPrecondition as err:
            if err.reason != "LEGAL_HOLD":
                raise
            log.warning("purge_refused_held", account_id=request.account_id)

    async def purge(self, account_id: str) -> tuple[int, int]:
        """Deletes the account's data in batches; safe to run again after a crash at any point.
        Returns (items deleted, stored objects deleted)."""
        account = _account(account_id)
        if await self.files.held(account):
            raise FailedPrecondition("the account is under a legal hold; nothing is deleted", reason="LEGAL_HOLD")
        items = 0
        # First the gate: from here on the account's calls are refused, so nothing new arrives.
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                pg_insert(purged_accounts).values(account_id=account, purged_at=self.clock.now()).on_conflict_do_nothing()
            )
            await uow.commit()
        self.files.purged.add(account)
        # Open uploads: abort their S3 parts, then forget them.
        async with self.db.read() as conn:
            open_uploads = (
                await conn.execute(
                    sa.select(uploads.c.upload_id, uploads.c.s3_upload_id)
                    .where(uploads.c.account_id == account, uploads.c.state == "open")
                )
            ).all()
        async with self.db.unit_of_work() as uow:
            # A stream that never ends must not stall the purge for good: give up, retry later.
            await uow.execute(sa.text("SET LOCAL lock_timeout = '30s'"))
            for upload in open_uploads:
                # Wait for a stream still writing it: it ends as UPLOAD_CLOSED, not as a new file.
                await uow.execute(sa.select(sa.func.pg_advisory_xact_lock(upload_lock_key(upload.upload_id))))
                if upload.s3_upload_id:
                    await self.storage.abort_multipart(object_key(str(account), str(upload.upload_id)), upload.s3_upload_id)
            items += (await uow.execute(sa.delete(uploads).where(uploads.c.account_id == account))).rowcount or 0
            await uow.commit()
        # Nodes: leaves first, in batches, so no statement grows with the account's size.
        while True:
            async with self.db.unit_of_work() as uow:
                batch = (
                    await uow.execute(
                        sa.select(nodes.c.node_id)
                        .where(
                            nodes.c.account_id == account,
                            ~sa.exists().where(nodes.alias("child").c.parent_id == nodes.c.node_id),
                        )
                        .limit(PURGE_BATCH)
                    )
                ).scalars().all()
                if not batch:
                    break
                items += (await uow.execute(sa.delete(nodes).where(nodes.c.node_id.in_(batch)))).rowcount or 0
                await uow.commit()
        # Contents: every stored object is doomed; then the account's usage goes.
        async with self.db.unit_of_work() as uow:
            keys = (
                await uow.execute(sa.delete(contents).where(contents.c.account_id == account).returning(contents.c.s3_key))
            ).scalars().all()
            for key in keys:
                await self.files.doom(uow, account, key)
            await uow.execute(sa.delete(usage).where(usage.c.account_id == account))
            await uow.commit()
        objects = 0
        while True:
            deleted = await self.files.delete_doomed(account)
            objects += deleted
            if deleted == 0:
                break
        async with self.db.read() as conn:
            left = (
                await conn.execute(sa.select(sa.func.count()).select_from(doomed_objects).where(doomed_objects.c.account_id == account))
            ).scalar_one()
        if left:
            raise FailedPrecondition(f"{left} stored objects could not be deleted yet; purge again", reason="PURGE_INCOMPLETE")
        async with self.db.unit_of_work() as uow:
            uow.emit(
                "purge.completed",
                events_pb2.PurgeCompleted(account_id=str(account), service="blob", items_deleted=items),
                account_id=str(account),
            )
            await uow.commit()
        return items, objects
