"""The sync service's part in the lifecycle's deletion saga."""

from __future__ import annotations

from cumulo_platform.errors import parse_id
from cumulo_platform.purge import purge_participant
from cumulo_sync.backups import Backups
from cumulo_sync.records import Records

SERVICE = "sync"


class Purge:
    def __init__(self, records: Records, backups: Backups) -> None:
        self.records = records
        self.backups = backups
        self.on_purge_requested = purge_participant(SERVICE, self.account)

    async def account(self, account_id: str) -> int:
        """Every zone, record, tombstone and backup of the account; safe to run again."""
        account = parse_id(account_id, "account_id", "an account id (UUID)")
        return await self.records.purge(account) + await self.backups.purge(account)
