"""Automatic checks on other services' events. An upload whose SHA-256 is on the blocklist (one
blob let through before it knew the entry; from then on blob refuses them) is blocked and
queued for review, as is every stored copy an entry reaches (blocklist.py); a burst of
share-link creation (`link.created`) is queued as spam. A handler runs inside its consumer's
unit of work, so it calls no other service: the block is recorded there as a pending effect,
carried out by `Effects.resume_due` once the event's unit of work has committed, and the case
opens when the file is blocked (none when the file is gone by then)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_moderation import audit
from cumulo_moderation.adapters.tables import blocklist
from cumulo_moderation.cases import Cases
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.counters import bump
from cumulo_moderation.domain.notices import About, Place
from cumulo_moderation.effects import GONE, Effects
from cumulo_moderation.owner_notices import OwnerNotices
from cumulo_platform.clock import Clock
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import Unavailable
from cumulo_platform.event_types import Event
from cumulo_platform.events import Nats
from cumulo_platform.logging import get_logger
from cumulo_platform.runtime import Job

log = get_logger(__name__)
BLOCKLIST_ACTOR = "system:blocklist"
BURST_ACTOR = "system:link-burst"


class Checks:
    def __init__(self, settings: ModerationSettings, clock: Clock, cases: Cases, effects: Effects, owners: OwnerNotices) -> None:
        self.settings = settings
        self.clock = clock
        self.cases = cases
        self.effects = effects
        self.owners = owners
        effects.on_done("blocklist", self._blocked)

    async def on_file_uploaded(self, event: Event[events_pb2.FileUploaded], uow: UnitOfWork) -> None:
        uploaded = event.message
        digest = uploaded.sha256.lower()
        listed = (await uow.execute(sa.select(blocklist).where(blocklist.c.sha256 == digest))).first()
        if listed is None:
            return
        if not await self.match(uow, account_id=uploaded.account_id, node_id=uploaded.node_id, sha256=digest, reason=listed.reason):
            # The event comes back later (an outage is retried, not parked).
            raise Unavailable("another effect on this file is being carried out", reason="EFFECT_PENDING")

    async def match(self, uow: UnitOfWork, *, account_id: Any, node_id: Any, sha256: str, reason: str) -> bool:
        """A file whose content is on the blocklist (an upload blob let through before it knew
        the entry, a stored copy an entry reached): its block is recorded as pending, due now,
        and its case opens once it is done. False when another effect on the file is pending."""
        subject = f"file:{node_id}"
        if not await self.effects.claim(uow, subject):
            return False
        await self.effects.record(
            uow, purpose="blocklist", subject=subject, action="block", account_id=account_id, node_id=node_id,
            sha256=sha256, actor=BLOCKLIST_ACTOR, reason=reason, call_reason=f"blocklist match: {reason}", due_now=True,
        )
        return True

    async def _blocked(self, uow: UnitOfWork, effect: Any, outcome: str, place: Place | None) -> None:
        if outcome == GONE:
            log.info("blocklisted_file_gone", node_id=str(effect.node_id))
            return
        case_id = await self.cases.open(
            uow, kind="blocklist_match", category="illegal", target_kind="file", account_id=effect.account_id,
            node_id=effect.node_id, sha256=effect.sha256, auto_blocked=True, actor=BLOCKLIST_ACTOR,
            reason=f"the file's content matches the blocklist: {effect.reason}",
        )
        await audit.record(
            uow, at=self.clock.now(), actor=BLOCKLIST_ACTOR, action="content.blocked", account_id=effect.account_id, case_id=case_id,
            target=f"file:{effect.node_id}", reason=f"SHA-256 on the blocklist: {effect.reason}",
        )
        node_id = str(effect.node_id)
        await self.owners.tell(
            uow, account_id=effect.account_id, reference=f"case:{case_id}:auto-blocked:{node_id}", kind="auto_blocked",
            args={"case_id": str(case_id)}, about=About(node_kind="file", via="upload", since=self.owners.local(effect.created_at)),
            node_id=effect.node_id, place=place,
        )
        log.warning("blocklisted_upload_blocked", case_id=str(case_id), node_id=node_id)

    async def on_link_created(self, event: Event[events_pb2.ShareLinkCreated], uow: UnitOfWork) -> None:
        created = event.message
        count = await bump(uow, f"links:{created.account_id}", self.settings.link_burst_window, self.clock.now())
        if count == self.settings.link_burst:
            await self.cases.open(
                uow, kind="link_burst", category="spam", target_kind="account", account_id=created.account_id, actor=BURST_ACTOR,
                reason=f"{count} share links within {self.settings.link_burst_window}",
            )


def consumers(db: Database, nats: Nats, checks: Checks) -> list[Job]:
    return [
        EventConsumer(db, nats, durable="moderation-uploads", event_types=["file.uploaded"], handler=checks.on_file_uploaded).run,
        EventConsumer(db, nats, durable="moderation-links", event_types=["link.created"], handler=checks.on_link_created).run,
    ]
