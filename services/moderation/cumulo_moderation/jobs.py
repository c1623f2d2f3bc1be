"""Moderation's periodic work: restoring counter-noticed takedowns whose waiting period ended,
finishing effects that were interrupted (or are carried out by no caller: blocklist matches),
sending owners' notices that waited for their file's path, and forgetting old rate-limit windows. Each is safe with several replicas (SKIP LOCKED)."""

from __future__ import annotations

from cumulo_moderation.cases import Cases
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.counters import prune_counters
from cumulo_moderation.effects import Effects
from cumulo_moderation.owner_notices import OwnerNotices
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.runtime import Job, periodic

PRUNE_EVERY = 600.0


def jobs(db: Database, settings: ModerationSettings, clock: Clock, cases: Cases, effects: Effects, owners: OwnerNotices) -> list[Job]:
    async def prune() -> None:
        longest = max(settings.complaint_window, settings.link_burst_window)
        await prune_counters(db, clock.now() - 2 * longest)

    return [
        periodic(cases.restore_due, every=settings.restore_every.total_seconds()),
        periodic(effects.resume_due, every=settings.effects_every.total_seconds()),
        periodic(owners.send_due, every=settings.effects_every.total_seconds()),
        periodic(prune, every=PRUNE_EVERY),
    ]
