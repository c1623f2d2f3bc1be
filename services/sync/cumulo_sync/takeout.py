"""Sync's part of a take-out: the zones, each zone's records as JSON lines of its own, the
backups and each backup's manifest (its entries)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from cumulo_platform.db import Database
from cumulo_platform.evidence import paged
from cumulo_platform.takeout import Part, exported_columns
from cumulo_sync.adapters.tables import backup_entries, backups, records, zones


class SyncTakeout:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def parts(self, account: uuid.UUID) -> AsyncIterator[Part]:
        live = sa.and_(zones.c.account_id == account, zones.c.dropped_at.is_(None))
        zone_columns = [zones.c.zone_id, zones.c.name, zones.c.record_count, zones.c.bytes, zones.c.created_at, zones.c.modified_at]
        yield "sync/zones.jsonl", paged(self.db, sa.select(*zone_columns).where(live), [zones.c.zone_id], kind="zone")
        async with self.db.read() as conn:
            ids = (await conn.execute(sa.select(zones.c.zone_id).where(live).order_by(zones.c.zone_id))).scalars().all()
        for zone in ids:
            yield f"sync/zones/{zone}.jsonl", self._records(account, zone)
        yield "backups/backups.jsonl", paged(
            self.db, sa.select(*exported_columns(backups)).where(backups.c.account_id == account, backups.c.ready),
            [backups.c.backup_id], kind="backup",
        )
        async with self.db.read() as conn:
            made = (
                await conn.execute(sa.select(backups.c.backup_id).where(backups.c.account_id == account, backups.c.ready).order_by(backups.c.backup_id))
            ).scalars().all()
        for backup in made:
            entries = sa.select(backup_entries.c.path, backup_entries.c.file_id, backup_entries.c.size, backup_entries.c.sha256).where(
                backup_entries.c.account_id == account, backup_entries.c.backup_id == backup
            )
            yield f"backups/{backup}.jsonl", paged(self.db, entries, [backup_entries.c.path], kind="entry")

    def _records(self, account: uuid.UUID, zone: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
        """The zone's live records (not the tombstones of deleted ones), payloads as base64."""
        columns = [records.c.record_id, records.c.record_type, records.c.payload, records.c.modified_at, records.c.modified_by]
        query = sa.select(*columns).where(records.c.account_id == account, records.c.zone_id == zone, records.c.deleted.is_(False))
        return paged(self.db, query, [records.c.record_id], kind="record")
