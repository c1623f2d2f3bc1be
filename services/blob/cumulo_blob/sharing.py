"""Share links (R1.3): an unguessable token opens one file or folder, read-only, for anyone
with a registered client and no account, until the link expires or its owner revokes it.
Only the token's SHA-256 is stored. Link passwords are Argon2id hashes, and guesses are
counted before they are checked, so parallel guessing gets no further than serial."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_blob.adapters import nodes as tree
from cumulo_blob.adapters.tables import nodes, share_links, user_shares
from cumulo_blob.config import BlobSettings
from cumulo_blob.downloads import Downloads, Served, byte_range
from cumulo_platform.call_limit import CallLimit, spend
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    parse_id,
)
from cumulo_platform.passwords import Passwords
from cumulo_platform.tokens import Principal

FREE_PASSWORD_FAILURES = 5
MAX_LINK_PASSWORD = 128
# The revoke reason of links a content block disconnected (an unblock reconnects them).
BLOCKED_LINK = "content blocked"


def new_link_token() -> str:
    """192 random bits, URL-safe; never starting with "-", which a command line (the CLI's
    `share get TOKEN`, any tool's argument parser) would take for an option."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Sharing:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        settings: BlobSettings,
        downloads: Downloads,
        passwords: Passwords,
        find_account: Callable[[str], Awaitable[str]],
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.downloads = downloads
        self.passwords = passwords
        self.find_account = find_account
        self.recipient_lookups = CallLimit(calls=settings.recipients_per_hour, window=dt.timedelta(hours=1))

    async def create(
        self, principal: Principal, node_id: str, *, expires_at: dt.datetime | None, password: str
    ) -> tuple[Any, str, str]:
        """(link row, the shared item's name, the token — shown this once)."""
        account = uuid.UUID(principal.account_id)
        target = tree.node_id(node_id, "node_id")
        if principal.minor and not self.settings.minors_may_share_publicly:
            raise PermissionDenied("accounts of minors cannot create public links", reason="MINOR_CANNOT_SHARE_PUBLICLY")
        now = self.clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidArgument("expires_at", "must be in the future")
        if len(password) > MAX_LINK_PASSWORD:
            raise InvalidArgument("password", f"must be at most {MAX_LINK_PASSWORD} characters")
        password_hash = await self.passwords.hash(password) if password else None
        token = new_link_token()
        async with self.db.unit_of_work() as uow:
            node = await tree.load(uow, account, target, lock=True)
            await tree.check_folder(uow, account, node.parent_id, "node_id")
            if node.blocked:
                raise FailedPrecondition("a blocked file cannot be shared", reason="CONTENT_BLOCKED")
            recent = (
                await uow.execute(
                    sa.select(sa.func.count(), sa.func.min(share_links.c.created_at)).where(
                        share_links.c.account_id == account, share_links.c.created_at > now - dt.timedelta(minutes=1)
                    )
                )
            ).one()
            if recent[0] >= self.settings.links_per_minute:
                raise ResourceExhausted(
                    "too many links created in the last minute; try again shortly",
                    reason="LINK_RATE_LIMITED",
                    retry_after=recent[1] + dt.timedelta(minutes=1) - now,
                )
            row = (
                await uow.execute(
                    sa.insert(share_links)
                    .values(link_id=uuid.uuid4(), account_id=account, node_id=target, token_hash=token_hash(token),
                            password_hash=password_hash, created_at=now, expires_at=expires_at)
                    .returning(*share_links.c)
                )
            ).one()
            uow.emit(
                "link.created",
                events_pb2.ShareLinkCreated(account_id=str(account), link_id=str(row.link_id), node_id=str(target)),
                account_id=str(account),
            )
            await uow.commit()
        return row, node.name, token

    async def links(self, account: uuid.UUID) -> list[Any]:
        now = self.clock.now()
        async with self.db.read() as conn:
            return list(
                await conn.execute(
                    sa.select(share_links, nodes.c.name)
                    .join(nodes, nodes.c.node_id == share_links.c.node_id)
                    .where(
                        share_links.c.account_id == account,
                        share_links.c.revoked_at.is_(None),
                        sa.or_(share_links.c.expires_at.is_(None), share_links.c.expires_at > now),
                    )
                    .order_by(share_links.c.created_at.desc())
                )
            )

    async def revoke(self, account: uuid.UUID, link_id: str) -> None:
        target = parse_id(link_id, "link_id", "a link id from ListShareLinks")
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.update(share_links)
                    .where(share_links.c.link_id == target, share_links.c.account_id == account)
                    .values(revoked_at=sa.func.coalesce(share_links.c.revoked_at, self.clock.now()), revoke_reason="revoked by owner")
                    .returning(share_links.c.link_id)
                )
            ).first()
            if row is None:
                raise NotFound("no such link", reason="LINK_NOT_FOUND")
            uow.emit(
                "link.revoked",
                events_pb2.ShareLinkRevoked(account_id=str(account), link_id=str(target), reason="revoked by owner"),
                account_id=str(account),
            )
            await uow.commit()

    async def disconnect_account(self, uow: UnitOfWork, account: uuid.UUID, *, reason: str) -> None:
        """Every live share link of the account turned off, and its shares with other people
        ended (a terminated account shares nothing while it waits for its deletion)."""
        gone = (
            await uow.execute(
                sa.update(share_links)
                .where(share_links.c.account_id == account, share_links.c.revoked_at.is_(None))
                .values(revoked_at=self.clock.now(), revoke_reason=reason)
                .returning(share_links.c.link_id)
            )
        ).scalars().all()
        for link_id in gone:
            uow.emit(
                "link.revoked", events_pb2.ShareLinkRevoked(account_id=str(account), link_id=str(link_id), reason=reason),
                account_id=str(account),
            )
        await uow.execute(sa.delete(user_shares).where(user_shares.c.owner_id == account))

    # --- opening a link (no account) ------------------------------------------------------

    async def open(self, token: str, password: str) -> tuple[Any, list[Any]]:
        if not token:
            raise InvalidArgument("token", "must be the token of a share link")
        now = self.clock.now()
        async with self.db.read() as conn:
            link = (await conn.execute(sa.select(share_links).where(share_links.c.token_hash == token_hash(token)))).first()
            if link is None:
                raise NotFound("no such link", reason="LINK_NOT_FOUND")
            if link.revoked_at is not None:
                if link.revoke_reason == BLOCKED_LINK:
                    raise NotFound("this link has been disconnected: its content was taken down", reason="LINK_TAKEN_DOWN")
                raise NotFound("this link has been turned off by its owner", reason="LINK_REVOKED")
            if link.expires_at is not None and link.expires_at <= now:
                raise NotFound("this link has expired", reason="LINK_EXPIRED")
            root = (await conn.execute(sa.select(nodes).where(nodes.c.node_id == link.node_id))).first()
            if root is None or not await tree.is_live(conn, link.account_id, link.node_id):
                raise NotFound("what this link shared is gone", reason="LINK_NOT_FOUND")
        if root.blocked:
            raise PermissionDenied("this file has been blocked", reason="CONTENT_BLOCKED")
        if link.password_hash is not None:
            await self._check_password(link, password)
        return root, await self._live_children(root)

    async def _check_password(self, link: Any, password: str) -> None:
        if not password:
            raise PermissionDenied("this link needs its password", reason="LINK_PASSWORD_REQUIRED")

        async def count_the_attempt() -> None:
            """Once a hashing worker is ours, before the hash: an attempt is a failure until it
            is right, so parallel guesses cannot outrun the lock-out, and one refused as busy
            (never checked) is never counted."""
            now = self.clock.now()
            async with self.db.unit_of_work() as uow:
                claimed = (
                    await uow.execute(
                        sa.update(share_links)
                        .where(
                            share_links.c.link_id == link.link_id,
                            sa.or_(share_links.c.locked_until.is_(None), share_links.c.locked_until <= now),
                        )
                        .values(failed_passwords=share_links.c.failed_passwords + 1)
                        .returning(share_links.c.failed_passwords, share_links.c.locked_until)
                    )
                ).first()
                if claimed is None:
                    locked_until = (
                        await uow.execute(sa.select(share_links.c.locked_until).where(share_links.c.link_id == link.link_id))
                    ).scalar_one()
                    raise ResourceExhausted("too many wrong passwords; try again later", reason="LINK_PASSWORD_THROTTLED",
                                            retry_after=locked_until - now)
                over = claimed.failed_passwords - FREE_PASSWORD_FAILURES
                if over >= 0:
                    delay = min(dt.timedelta(seconds=30) * (2 ** min(over, 10)), dt.timedelta(hours=1))
                    await uow.execute(
                        sa.update(share_links).where(share_links.c.link_id == link.link_id).values(locked_until=now + delay)
                    )
                await uow.commit()

        if not await self.passwords.verify(link.password_hash, password, admitted=count_the_attempt):
            raise PermissionDenied("wrong password for this link", reason="LINK_PASSWORD_WRONG")
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(share_links).where(share_links.c.link_id == link.link_id).values(failed_passwords=0, locked_until=None)
            )
            await uow.commit()

    async def open_download(
        self, token: str, password: str, node_id: str, offset: int, length: int
    ) -> Served:
        root, children = await self.open(token, password)
        return await self.serve(root, children, node_id, offset, length)

    async def serve(self, root: Any, children: list[Any], node_id: str, offset: int, length: int) -> Served:
        """A file of a share: the shared file itself, or one directly in the shared folder."""
        if node_id:
            target = tree.node_id(node_id, "node_id")
            node = next((c for c in children if c.node_id == target), None)
            if node is None:
                raise NotFound("no such file in this share", reason="NODE_NOT_FOUND")
        else:
            node = root
        if node.kind != "file":
            raise FailedPrecondition("node_id: is a folder; download its files one by one", reason="NOT_A_FILE")
        if node.blocked:
            raise PermissionDenied("this file has been blocked", reason="CONTENT_BLOCKED")
        start, size = byte_range(node, offset, length)
        async with self.db.read() as conn:
            key = await self.downloads.key_of(conn, node)
        return node, key, start, size

    async def _live_children(self, root: Any) -> list[Any]:
        if root.kind != "folder":
            return []
        async with self.db.read() as conn:
            return list(
                await conn.execute(
                    sa.select(nodes)
                    .where(nodes.c.parent_id == root.node_id, nodes.c.trashed_at.is_(None))
                    .order_by(nodes.c.kind == "file", nodes.c.name)
                    .limit(1000)
                )
            )

    # --- sharing with another user ---------------------------------------------------------

    async def share_with_user(self, owner: uuid.UUID, node_id: str, recipient: str) -> tuple[Any, str]:
        target = tree.node_id(node_id, "node_id")
        if not recipient.strip():
            raise InvalidArgument("recipient", "must be the e-mail address or phone number of a cumulo user")
        # Counted before the look-up, found or not: the answers cannot be used to go through
        # a list of addresses to learn who has an account.
        spend(
            self.recipient_lookups, str(owner), self.clock.now(), 1,
            what="recipients looked up by this account this hour", reason="SHARE_RATE_LIMITED",
        )
        recipient_id = uuid.UUID(await self.find_account(recipient.strip()))
        if recipient_id == owner:
            raise InvalidArgument("recipient", "is you; share with someone else")
        async with self.db.unit_of_work() as uow:
            node = await tree.load(uow, owner, target, lock=True)
            await tree.check_folder(uow, owner, node.parent_id, "node_id")
            if node.blocked:
                raise FailedPrecondition("a blocked file cannot be shared", reason="CONTENT_BLOCKED")
            row = (
                await uow.execute(
                    pg_insert(user_shares)
                    .values(share_id=uuid.uuid4(), owner_id=owner, node_id=target, recipient_id=recipient_id,
                            recipient=recipient.strip(), created_at=self.clock.now())
                    .on_conflict_do_update(index_elements=["owner_id", "node_id", "recipient_id"], set_={"recipient": recipient.strip()})
                    .returning(*user_shares.c)
                )
            ).one()
            # The recipient is told, once per share (the lifecycle words it in their language).
            uow.emit(
                "notice.requested",
                events_pb2.NoticeRequested(
                    account_id=str(recipient_id), reference=f"share:{row.share_id}", kind="shared_with_you",
                    values={"owner_account_id": str(owner), "name": node.name, "what": node.kind, "at": row.created_at.isoformat()},
                ),
                account_id=str(recipient_id),
            )
            await uow.commit()
        return row, node.name

    async def user_shares(self, owner: uuid.UUID) -> list[Any]:
        async with self.db.read() as conn:
            return list(
                await conn.execute(
                    sa.select(user_shares, nodes.c.name)
                    .join(nodes, nodes.c.node_id == user_shares.c.node_id)
                    .where(user_shares.c.owner_id == owner)
                    .order_by(user_shares.c.created_at.desc())
                )
            )

    async def revoke_user_share(self, owner: uuid.UUID, share_id: str) -> None:
        target = _share_uuid(share_id)
        async with self.db.unit_of_work() as uow:
            deleted = (
                await uow.execute(
                    sa.delete(user_shares).where(user_shares.c.share_id == target, user_shares.c.owner_id == owner)
                )
            ).rowcount
            if not deleted:
                raise NotFound("no such share", reason="SHARE_NOT_FOUND")
            await uow.commit()

    async def shared_with_me(self, recipient: uuid.UUID) -> list[Any]:
        """Live items shared with the caller (a trashed one is not shown)."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(user_shares, nodes.c.name, nodes.c.trashed_at)
                    .join(nodes, nodes.c.node_id == user_shares.c.node_id)
                    .where(user_shares.c.recipient_id == recipient)
                    .order_by(user_shares.c.created_at.desc())
                )
            ).all()
            live = []
            for row in rows:
                if await tree.is_live(conn, row.owner_id, row.node_id):
                    live.append(row)
        return live

    async def open_shared_with_me(self, recipient: uuid.UUID, share_id: str) -> tuple[Any, list[Any]]:
        target = _share_uuid(share_id)
        async with self.db.read() as conn:
            share = (
                await conn.execute(
                    sa.select(user_shares).where(user_shares.c.share_id == target, user_shares.c.recipient_id == recipient)
                )
            ).first()
            if share is None:
                raise NotFound("no such share", reason="SHARE_NOT_FOUND")
            live = await tree.is_live(conn, share.owner_id, share.node_id)
            root = (await conn.execute(sa.select(nodes).where(nodes.c.node_id == share.node_id))).first()
        if root is None or not live:
            raise NotFound("what was shared is gone", reason="SHARE_NOT_FOUND")
        if root.blocked:
            raise PermissionDenied("this file has been blocked", reason="CONTENT_BLOCKED")
        return root, await self._live_children(root)


def _share_uuid(value: str) -> uuid.UUID:
    return parse_id(value, "share_id", "a share id")
