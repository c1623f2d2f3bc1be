"""Blocks act on content (a file's SHA-256), not on one file record: otherwise the same bytes
uploaded again under another name, instantly since the account holds them, would be a copy
nobody blocked.

- A moderator's block of a file (BlockFile) holds its content in the file's account
  (`content_blocks`); moderation's blocklist (BlockContent) holds content in every account
  (`blocklisted_contents`). Unblocking lifts the account's block; taking a digest off the
  blocklist unblocks the files no account's own block holds.
- Every stored file of blocked content, trashed ones too, has `nodes.blocked` set and its share
  links disconnected (reconnected when the block is lifted): a download, a share or a restore
  looks at the file's own row, as it did before, and costs nothing more.
- No upload brings blocked content back: StartUpload refuses it in the read it makes anyway,
  and an upload's completion (instant or not) looks again in its own transaction, after
  locking the content's row (`rule`).

Races: whoever changes a content's blocks first locks the open uploads of the content (a
blocklist entry: any account may be uploading it) and then its `contents` rows; a completing
upload holds its upload's row, then locks the content's row, then looks. So an upload that
commits first has its file blocked, and one that commits after sees the block.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_blob.adapters import nodes as tree
from cumulo_blob.adapters.tables import blocklisted_contents, content_blocks, contents, nodes, share_links, uploads
from cumulo_blob.sharing import BLOCKED_LINK
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import InvalidArgument, NotFound, PermissionDenied, parse_id, require_audit
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import check_sha256

log = get_logger(__name__)
# The rule that blocks content for an account: the account's own block, or the blocklist.
ACCOUNT, BLOCKLIST = "account", "blocklist"
MAX_DIGESTS = 1000
MAX_REPORTED = 1000  # what moderation queues for review in one transaction


def rule_of(account: uuid.UUID, sha256: Any) -> sa.ColumnElement[Any]:
    """SQL: the rule that blocks the content for the account, NULL when none does. Two
    primary-key look-ups, in whatever statement asks."""
    listed = sa.exists().where(blocklisted_contents.c.sha256 == sha256)
    held = sa.exists().where(content_blocks.c.account_id == account, content_blocks.c.sha256 == sha256)
    return sa.case((listed, BLOCKLIST), (held, ACCOUNT), else_=sa.null())


async def rule(conn: Any, account: uuid.UUID, sha256: str) -> str | None:
    return (await conn.execute(sa.select(rule_of(account, sha256)))).scalar()


class ContentBlocked(PermissionDenied):
    """Content blocked for the account, by the rule named; nothing about any other account."""

    default_reason = "CONTENT_BLOCKED"

    def __init__(self, rule: str, doing: str) -> None:
        if rule == BLOCKLIST:
            why = "this content is on the blocklist of known unlawful content"
        else:
            why = "this content has been blocked in your account by a moderator"
        super().__init__(f"{why}; it cannot be {doing}", metadata={"rule": rule})
        self.rule = rule


class ContentBlocks:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def block_file(self, account_id: str, node_id: str, *, blocked: bool, reason: str, actor: str) -> Any:
        """Blocks (or lets go) the file's content in its account; answers the file."""
        account = parse_id(account_id, "account_id", "an account id (UUID)")
        target = tree.node_id(node_id, "node_id")
        require_audit(reason, actor)
        async with self.db.unit_of_work() as uow:
            digest = await self._content_of(uow, account, target)
            await self._lock(uow, [digest], account)
            if blocked:
                await uow.execute(
                    pg_insert(content_blocks)
                    .values(account_id=account, sha256=digest, reason=reason, actor=actor, created_at=self.clock.now())
                    .on_conflict_do_nothing()
                )
            else:
                await uow.execute(sa.delete(content_blocks).where(content_blocks.c.account_id == account, content_blocks.c.sha256 == digest))
            files = await self._apply(uow, [digest], blocked=blocked, account=account)
            row = (await uow.execute(sa.select(nodes).where(nodes.c.node_id == target))).first()
            if row is None:  # deleted for good while the content was being locked
                raise NotFound("no such file", reason="NODE_NOT_FOUND")
            await uow.commit()
        log.info(
            "file_content_blocked" if blocked else "file_content_unblocked", account_id=str(account), node_id=str(target),
            files=len(files), still_blocked=row.blocked, actor=actor,
        )
        return row

    async def block_listed(self, digests: Sequence[str], *, blocked: bool, reason: str, actor: str) -> tuple[list[Any], bool]:
        """Puts content on the blocklist (or takes it off), in every account: answers the
        files blocked (or unblocked) now, at most MAX_REPORTED, and whether there were more."""
        if not digests:
            raise InvalidArgument("sha256", "give at least one SHA-256 digest")
        if len(digests) > MAX_DIGESTS:
            raise InvalidArgument("sha256", f"at most {MAX_DIGESTS} digests per call")
        wanted = sorted({check_sha256(value, f"sha256[{i}]") for i, value in enumerate(digests)})
        require_audit(reason, actor)
        async with self.db.unit_of_work() as uow:
            await self._lock(uow, wanted, None)
            if blocked:
                now = self.clock.now()
                await uow.execute(
                    pg_insert(blocklisted_contents)
                    .values([{"sha256": d, "reason": reason, "actor": actor, "created_at": now} for d in wanted])
                    .on_conflict_do_nothing()
                )
            else:
                await uow.execute(sa.delete(blocklisted_contents).where(blocklisted_contents.c.sha256.in_(wanted)))
            files = await self._apply(uow, wanted, blocked=blocked, account=None)
            await uow.commit()
        log.info(
            "content_blocklisted" if blocked else "content_unlisted", digests=len(wanted), files=len(files),
            accounts=len({f.account_id for f in files}), actor=actor,
        )
        return files[:MAX_REPORTED], len(files) > MAX_REPORTED

    async def _content_of(self, uow: UnitOfWork, account: uuid.UUID, target: uuid.UUID) -> str:
        digest = (
            await uow.execute(
                sa.select(nodes.c.sha256).where(nodes.c.node_id == target, nodes.c.account_id == account, nodes.c.kind == "file")
            )
        ).scalar()
        if digest is None:
            raise NotFound("no such file", reason="NODE_NOT_FOUND")
        return str(digest)

    async def _lock(self, uow: UnitOfWork, digests: list[str], account: uuid.UUID | None) -> None:
        """The content's open uploads (for every account) and its stored rows, in that order:
        the order in which a completing upload takes them (uploads.py)."""
        if account is None:
            await uow.execute(
                sa.select(uploads.c.upload_id)
                .where(uploads.c.sha256.in_(digests), uploads.c.state == "open")
                .order_by(uploads.c.upload_id)
                .with_for_update()
            )
        held: list[sa.ColumnElement[bool]] = [contents.c.sha256.in_(digests)]
        if account is not None:
            held.append(contents.c.account_id == account)
        await uow.execute(
            sa.select(contents.c.account_id).where(*held).order_by(contents.c.account_id, contents.c.sha256).with_for_update()
        )

    async def _apply(self, uow: UnitOfWork, digests: list[str], *, blocked: bool, account: uuid.UUID | None) -> list[Any]:
        """Sets every file of the content (in the account, or in all) to what its blocks say
        now, disconnecting or reconnecting their share links; answers the files changed to
        blocked (all of the content's, to be sure of them) or to unblocked."""
        files: list[sa.ColumnElement[bool]] = [nodes.c.sha256.in_(digests), nodes.c.kind == "file"]
        if account is not None:
            files.append(nodes.c.account_id == account)
        if blocked:
            changed = (
                await uow.execute(
                    sa.update(nodes).where(*files).values(blocked=True).returning(nodes.c.node_id, nodes.c.account_id, nodes.c.sha256)
                )
            ).all()
            await uow.execute(
                sa.update(share_links)
                .where(_among(share_links.c.node_id, changed), share_links.c.revoked_at.is_(None))
                .values(revoked_at=self.clock.now(), revoke_reason=BLOCKED_LINK)
            )
            return list(changed)
        # Unblocked only where no rule blocks the content any more.
        still = sa.or_(
            sa.exists().where(blocklisted_contents.c.sha256 == nodes.c.sha256),
            sa.exists().where(content_blocks.c.account_id == nodes.c.account_id, content_blocks.c.sha256 == nodes.c.sha256),
        )
        changed = (
            await uow.execute(
                sa.update(nodes)
                .where(*files, nodes.c.blocked, ~still)
                .values(blocked=False)
                .returning(nodes.c.node_id, nodes.c.account_id, nodes.c.sha256)
            )
        ).all()
        # The links a block disconnected reconnect; those their owner revoked stay revoked.
        await uow.execute(
            sa.update(share_links)
            .where(_among(share_links.c.node_id, changed), share_links.c.revoke_reason == BLOCKED_LINK)
            .values(revoked_at=None, revoke_reason="")
        )
        return list(changed)


def _among(column: Any, files: Sequence[Any]) -> sa.ColumnElement[bool]:
    """`column` is one of the files' node ids: one array parameter, however many files."""
    return column == sa.any_(sa.bindparam(None, [f.node_id for f in files], type_=postgresql.ARRAY(sa.Uuid)))
