"""What other services ask of the blob service about an account's files: moderation blocks and
unblocks links (files are blocked by their content: content_blocks.py), finds what a complaint
names and exports files as evidence; services that keep references to files (backups) describe
and delete them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cumulo_blob.adapters import nodes as tree
from cumulo_blob.adapters.tables import contents, nodes, share_links
from cumulo_blob.contents import StoredContent
from cumulo_blob.domain.errors import LegalHold
from cumulo_blob.sharing import BLOCKED_LINK, token_hash
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument, NotFound, parse_id, require_audit
from cumulo_platform.evidence import evidence_prefix
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import decode_token, encode_token, page_size
from cumulo_platform.storage import Storage

log = get_logger(__name__)

# The account's nodes of :kinds among :ids, each with where it is as its owner sees it: `path`,
# the names from the root folder down, and `in_trash`, whether it or a folder above it is in
# the trash. One walk up the tree answers both what a backup still refers to (live files) and
# what a message to the owner names (paths).
_LOCATED = sa.text(
    """
    WITH RECURSIVE chain AS (
        SELECT node_id AS start_id, parent_id, name, trashed_at, 0 AS depth FROM blob.nodes
        WHERE account_id = :account_id AND node_id = ANY(CAST(:ids AS uuid[])) AND kind = ANY(CAST(:kinds AS text[]))
        UNION ALL
        SELECT c.start_id, n.parent_id, n.name, n.trashed_at, c.depth + 1 FROM blob.nodes n
        JOIN chain c ON n.node_id = c.parent_id
        WHERE c.depth < 10000
    ), located AS (
        SELECT start_id, '/' || string_agg(name, '/' ORDER BY depth DESC) AS path, bool_or(trashed_at IS NOT NULL) AS in_trash
        FROM chain GROUP BY start_id
    )
    SELECT n.*, l.path, l.in_trash FROM blob.nodes n JOIN located l ON n.node_id = l.start_id
    """
)
MAX_FILES_PER_CALL = 1000
EXPORT_PAGE = 100


def account_id_of(value: str) -> uuid.UUID:
    return parse_id(value, "account_id", "an account id (UUID)")


class Enforcement:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        storage: Storage,
        preservation: Storage,
        contents: StoredContent,
        holds: LegalHolds,
    ) -> None:
        self.db = db
        self.clock = clock
        self.storage = storage
        self.preservation = preservation
        self.contents = contents
        self.holds = holds

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

    def _files(self, node_ids: Sequence[str]) -> list[uuid.UUID]:
        if len(node_ids) > MAX_FILES_PER_CALL:
            raise InvalidArgument("node_ids", f"at most {MAX_FILES_PER_CALL} per call")
        return [tree.node_id(value, f"node_ids[{i}]") for i, value in enumerate(node_ids)]

    async def located(self, account_id: str, node_ids: Sequence[str], *, live_files: bool = False) -> list[Any]:
        """The account's nodes among node_ids, each row with its `path` as the owner sees it and
        `in_trash`; those gone (or another account's) are left out. `live_files`: only files,
        and only those neither trashed nor under a trashed folder (what a backup refers to)."""
        account = account_id_of(account_id)
        wanted = self._files(node_ids)
        if not wanted:
            return []
        kinds = ["file"] if live_files else ["file", "folder"]
        async with self.db.read() as conn:
            rows = (await conn.execute(_LOCATED, {"account_id": account, "ids": wanted, "kinds": kinds})).all()
        return [row for row in rows if not (live_files and row.in_trash)]

    async def delete_files(self, account_id: str, node_ids: Sequence[str], *, reason: str, actor: str) -> int:
        """Deletes files of the account for good, for a service that owned them (a pruned
        backup); those already gone are skipped."""
        account = account_id_of(account_id)
        wanted = self._files(node_ids)
        require_audit(reason, actor)
        if not wanted:
            return 0
        if await self.holds.held(account):
            raise LegalHold("the account is under a legal hold; nothing is deleted")
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
                await self.contents.release(uow, account, sha256, count)
            await uow.commit()
        await self.contents.delete_doomed(account)
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
                            share_links.c.token_hash == token_hash(link_token)
                        )
                    )
                ).first()
                if link is None:
                    raise NotFound("no such share link", reason="LINK_NOT_FOUND")
                target, link_id = link.node_id, str(link.link_id)
            elif node_id:
                target = tree.node_id(node_id, "node_id")
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
        account = account_id_of(account_id)
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
