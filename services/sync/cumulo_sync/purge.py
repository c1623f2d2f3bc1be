"""The sync service's part in the lifecycle's deletion saga."""

from __future__ import annotations

from cumulo.events.v1 import events_pb2
from cumulo_platform.db import UnitOfWork
from cumulo_platform.errors import parse_id
from cumulo_platform.logging import get_logger
from cumulo_sync.backups import Backups
from cumulo_sync.records import Records

log = get_logger(__name__)
SERVICE = "sync"


class Purge:
    def __init__(self, records: Records, backups: Backups) -> None:
        self.records = records
        self.backups = backups

    async def account(self, account_id: str) -> int:
        """Every zone, record, tombstone and backup of the account; safe to run again."""
        account = parse_id(account_id, "account_id", "an account id (UUID)")
        items = await self.records.purge(account)
        items += await self.backups.purge(account)
        log.info("account_purged", account_id=account_id, items=items)
        return items

    async def on_purge_requested(self, envelope: events_pb2.Envelope, uow: UnitOfWork) -> None:
        """purge.requested: purge, then report with the event's own transaction."""
        request = events_pb2.PurgeRequested()
        envelope.payload.Unpack(request)
        if request.services and SERVICE not in request.services:
            return
        items = await self.account(request.account_id)
        uow.emit(
            "purge.completed",
            events_pb2.PurgeCompleted(account_id=request.account_id, service=SERVICE, items_deleted=items),
            account_id=request.account_id,
        )
