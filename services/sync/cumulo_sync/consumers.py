"""The events sync acts on: `purge.requested`, its part in the lifecycle's deletion saga
(through the platform's purge participant, which reports the completion)."""

from __future__ import annotations

import uuid

from cumulo_platform.runtime import Job
from cumulo_platform.service import Foundation
from cumulo_sync.backups import Backups
from cumulo_sync.cleanup import Cleanup


class Purge:
    def __init__(self, cleanup: Cleanup, backups: Backups) -> None:
        self.cleanup = cleanup
        self.backups = backups

    async def account(self, account: uuid.UUID, reason: str = "") -> int:
        """Every zone, record, tombstone and backup of the account; safe to run again. The
        blob files of its backups are the blob service's to purge."""
        return await self.cleanup.purge(account) + await self.backups.purge(account)


def consumers(base: Foundation, purge: Purge) -> list[Job]:
    return [base.purge_consumer(purge.account)]
