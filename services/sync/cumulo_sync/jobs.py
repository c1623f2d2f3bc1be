"""Sync's periodic work, which any replica may run: old tombstones and deleted zones'
records go (a held account's stay), released backup files are deleted in the blob service,
and backups whose making stopped half-way are dropped."""

from __future__ import annotations

from cumulo_platform.runtime import Job, periodic
from cumulo_sync.backups import Backups
from cumulo_sync.cleanup import Cleanup
from cumulo_sync.config import SyncSettings


def jobs(settings: SyncSettings, cleanup: Cleanup, backups: Backups) -> list[Job]:
    async def tidy() -> None:
        await cleanup.prune_tombstones()
        await cleanup.drop_dropped()
        await backups.release_files()
        await backups.drop_abandoned()

    return [periodic(tidy, every=settings.prune_every.total_seconds())]
