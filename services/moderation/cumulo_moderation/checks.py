"""Automatic checks on other services' events: uploads whose SHA-256 is on the blocklist are
blocked at once and queued for review; bursts of share-link creation (`link.created`) are
queued as spam.
Also the blocklist itself, managed by moderators (bulk import from a file through the CLI)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_moderation import audit
from cumulo_moderation.adapters.services import Services
from cumulo_moderation.adapters.tables import blocklist
from cumulo_moderation.cases import Cases, bump, notify
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.domain import notices, rules
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import InvalidArgument, NotFound
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import check_sha256, decode_token, encode_token, page_size

log = get_logger(__name__)
BLOCKLIST_ACTOR = "system:blocklist"
BURST_ACTOR = "system:link-burst"
MAX_IMPORT = 10_000
INSERT_BATCH = 2000


class Checks:
    def __init__(self, db: Database, settings: ModerationSettings, clock: Clock, services: Services, cases: Cases) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.services = services
        self.cases = cases

    async def on_file_uploaded(self, envelope: events_pb2.Envelope, uow: UnitOfWork) -> None:
        uploaded = events_pb2.FileUploaded()
        envelope.payload.Unpack(uploaded)
        listed = (await uow.execute(sa.select(blocklist).where(blocklist.c.sha256 == uploaded.sha256.lower()))).first()
        if listed is None:
            return
        try:
            await self.services.block(
                uploaded.account_id, uploaded.node_id, blocked=True, reason=f"blocklist match: {listed.reason}", actor=BLOCKLIST_ACTOR
            )
        except NotFound:
            log.info("blocklisted_file_gone", node_id=uploaded.node_id)
            return
        now = self.clock.now()
        case_id = await self.cases.open(
            uow, kind="blocklist_match", category="illegal", target_kind="file", account_id=uploaded.account_id,
            node_id=uploaded.node_id, sha256=uploaded.sha256.lower(), auto_blocked=True, actor=BLOCKLIST_ACTOR,
            reason=f"upload matches the blocklist: {listed.reason}",
        )
        await audit.record(
            uow, at=now, actor=BLOCKLIST_ACTOR, action="content.blocked", account_id=uploaded.account_id, case_id=case_id,
            target=f"file:{uploaded.node_id}", reason=f"SHA-256 on the blocklist: {listed.reason}",
        )
        notify(uow, uploaded.account_id, f"case:{case_id}:auto-blocked:{uploaded.node_id}", notices.auto_blocked(uploaded.node_id, str(case_id)))
        log.warning("blocklisted_upload_blocked", case_id=str(case_id), node_id=uploaded.node_id)

    async def on_link_created(self, envelope: events_pb2.Envelope, uow: UnitOfWork) -> None:
        created = events_pb2.ShareLinkCreated()
        envelope.payload.Unpack(created)
        count = await bump(uow, f"links:{created.account_id}", self.settings.link_burst_window, self.clock.now())
        if count == self.settings.link_burst:
            await self.cases.open(
                uow, kind="link_burst", category="spam", target_kind="account", account_id=created.account_id, actor=BURST_ACTOR,
                reason=f"{count} share links within {self.settings.link_burst_window}",
            )

    # --- the blocklist ---------------------------------------------------------------------------

    async def add(self, digests: Any, *, reason: str, actor: str) -> tuple[int, int]:
        if not digests:
            raise InvalidArgument("sha256", "give at least one SHA-256 digest")
        if len(digests) > MAX_IMPORT:
            raise InvalidArgument("sha256", f"at most {MAX_IMPORT} digests per call")
        wanted = sorted({check_sha256(value, f"sha256[{i}]") for i, value in enumerate(digests)})
        reason = rules.check_reason(reason)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            added: list[str] = []
            for start in range(0, len(wanted), INSERT_BATCH):  # a statement takes at most 32767 parameters
                added += (
                    await uow.execute(
                        pg_insert(blocklist)
                        .values([{"sha256": d, "reason": reason, "added_by": actor, "added_at": now} for d in wanted[start : start + INSERT_BATCH]])
                        .on_conflict_do_nothing()
                        .returning(blocklist.c.sha256)
                    )
                ).scalars().all()
            for digest in added:
                await audit.record(uow, at=now, actor=actor, action="blocklist.added", target=f"sha256:{digest}", reason=reason)
            await uow.commit()
        return len(added), len(wanted) - len(added)

    async def remove(self, digest: str, *, reason: str, actor: str) -> None:
        value = check_sha256(digest)
        reason = rules.check_reason(reason)
        async with self.db.unit_of_work() as uow:
            gone = (await uow.execute(sa.delete(blocklist).where(blocklist.c.sha256 == value))).rowcount
            if not gone:
                raise NotFound("this digest is not on the blocklist", reason="NOT_LISTED")
            await audit.record(uow, at=self.clock.now(), actor=actor, action="blocklist.removed", target=f"sha256:{value}", reason=reason)
            await uow.commit()

    async def listing(self, *, size: int, token: str) -> tuple[list[Any], str]:
        limit = page_size(size, default=100, maximum=1000)
        query = sa.select(blocklist).order_by(blocklist.c.sha256).limit(limit + 1)
        if token:
            (after,) = decode_token(token, str)
            query = query.where(blocklist.c.sha256 > after)
        async with self.db.read() as conn:
            rows = list((await conn.execute(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_token([rows[-1].sha256]) if more else ""
