"""Deleting what sync keeps: a deleted zone's records (in batches, after the zone has gone
from the user's sight), tombstones past the retention (moving the zone's horizon), and an
account's everything for its purge. A held account's deleted zones and old tombstones stay
until the hold is released."""

from __future__ import annotations

import asyncio
import time
import uuid

import sqlalchemy as sa

from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import NotFound
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger
from cumulo_platform.purge import PurgeNotYet
from cumulo_sync.adapters.tables import SCHEMA, records, usage, zones
from cumulo_sync.config import SyncSettings
from cumulo_sync.domain import rules

log = get_logger(__name__)

PRUNE_BATCH = 1000
DROP_BATCH = 5000
# How long a purge waits for zones another replica is tidying before asking to run again later.
PURGE_PATIENCE = 30.0

# Rows gone (pruned tombstones, a deleted zone's records): their account no longer pays the
# overhead a push charged for each (rules.RECORD_OVERHEAD_BYTES).
_REFUND_ROWS = sa.text(
    f"""
    UPDATE {SCHEMA}.usage SET used = GREATEST(used - :rows * CAST(:overhead AS bigint), 0)
    WHERE account_id = :account
    """
)


async def refund_rows(uow: UnitOfWork, account: uuid.UUID, rows: int) -> None:
    if rows:
        await uow.execute(_REFUND_ROWS, {"account": account, "rows": rows, "overhead": rules.RECORD_OVERHEAD_BYTES})


class Cleanup:
    def __init__(self, db: Database, settings: SyncSettings, clock: Clock, holds: LegalHolds) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.holds = holds

    async def delete_zone(self, account: uuid.UUID, zone: str) -> int:
        """The zone goes at once (its name is free again, its tokens expire); its records are
        removed in batches by `drop_dropped`."""
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.update(zones)
                    .where(zones.c.account_id == account, zones.c.name == zone, zones.c.dropped_at.is_(None))
                    .values(dropped_at=self.clock.now())
                    .returning(zones.c.record_count, zones.c.bytes)
                )
            ).first()
            if row is None:
                raise NotFound(f"no zone named {zone!r}", reason="ZONE_NOT_FOUND")
            await uow.execute(sa.update(usage).where(usage.c.account_id == account).values(used=sa.func.greatest(usage.c.used - row.bytes, 0)))
            await uow.commit()
        await self.drop_dropped(account)
        return int(row.record_count)

    async def drop_dropped(self, account: uuid.UUID | None = None, *, honour_holds: bool = True) -> int:
        """Removes deleted zones' records in batches, then the zones; any replica may run it.
        A held account's deleted zones stay (out of the user's sight) until the hold is
        released; the account's purge (`honour_holds=False`) comes only after a release."""
        removed = 0
        while True:
            async with self.db.unit_of_work() as uow:
                condition: list[sa.ColumnElement[bool]] = [zones.c.dropped_at.is_not(None)]
                if account is not None:
                    condition.append(zones.c.account_id == account)
                if honour_holds:
                    condition.append(self.holds.not_held(zones.c.account_id))
                zone = (
                    await uow.execute(
                        sa.select(zones.c.account_id, zones.c.zone_id).where(*condition).limit(1).with_for_update(skip_locked=True)
                    )
                ).first()
                if zone is None:
                    return removed
                deleted = (
                    await uow.execute(
                        sa.text(
                            f"""DELETE FROM {SCHEMA}.records WHERE ctid = ANY(ARRAY(
                                SELECT ctid FROM {SCHEMA}.records WHERE account_id = :account AND zone_id = :zone LIMIT :n))"""
                        ),
                        {"account": zone.account_id, "zone": zone.zone_id, "n": DROP_BATCH},
                    )
                ).rowcount or 0
                removed += deleted
                await refund_rows(uow, zone.account_id, deleted)
                if deleted < DROP_BATCH:
                    await uow.execute(sa.delete(zones).where(zones.c.account_id == zone.account_id, zones.c.zone_id == zone.zone_id))
                await uow.commit()

    async def prune_tombstones(self) -> int:
        """Drops tombstones older than the retention, a batch per zone, and moves the zone's
        horizon past them: tokens from before it get CHANGE_TOKEN_EXPIRED. Zone row first,
        then its records: the order pushes lock in."""
        cutoff = self.clock.now() - self.settings.tombstone_retention
        pruned = 0
        async with self.db.read() as conn:
            candidates = (
                await conn.execute(
                    sa.select(records.c.account_id, records.c.zone_id)
                    .where(records.c.deleted, records.c.modified_at < cutoff, self.holds.not_held(records.c.account_id))
                    .distinct()
                    .limit(100)
                )
            ).all()
        for account, zone_id in candidates:
            this_zone = (zones.c.account_id == account, zones.c.zone_id == zone_id)
            async with self.db.unit_of_work() as uow:
                locked = (
                    await uow.execute(
                        sa.select(zones.c.zone_id).where(*this_zone, zones.c.dropped_at.is_(None)).with_for_update(skip_locked=True)
                    )
                ).scalar()
                if locked is None:
                    continue
                gone = (
                    await uow.execute(
                        sa.text(
                            f"""DELETE FROM {SCHEMA}.records WHERE account_id = :account AND zone_id = :zone AND record_id IN (
                                SELECT record_id FROM {SCHEMA}.records
                                WHERE account_id = :account AND zone_id = :zone AND deleted AND modified_at < :cutoff LIMIT :n)
                                RETURNING seq"""
                        ),
                        {"account": account, "zone": zone_id, "cutoff": cutoff, "n": PRUNE_BATCH},
                    )
                ).scalars().all()
                if gone:
                    await uow.execute(sa.update(zones).where(*this_zone).values(horizon_seq=sa.func.greatest(zones.c.horizon_seq, max(gone))))
                    await refund_rows(uow, account, len(gone))
                await uow.commit()
                pruned += len(gone)
        if pruned:
            log.info("tombstones_pruned", count=pruned)
        return pruned

    async def purge(self, account: uuid.UUID) -> int:
        """Every zone and record of the account; idempotent, resumable (zones are marked
        first, records go in batches)."""
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(zones).where(zones.c.account_id == account, zones.c.dropped_at.is_(None)).values(dropped_at=self.clock.now())
            )
            await uow.execute(sa.delete(usage).where(usage.c.account_id == account))
            await uow.commit()
        removed = await self.drop_dropped(account, honour_holds=False)
        # Another replica's tidy-up may hold one of these zones: done only when none is left
        # (a zone's row goes after its last record). Bounded: a zone still there after a while
        # asks for the purge again later (which marks anything new too), never a loop forever
        # inside the event's transaction.
        deadline = time.monotonic() + PURGE_PATIENCE
        while await self._zones_left(account):
            if time.monotonic() > deadline:
                raise PurgeNotYet("some of the account's zones are still being removed; the purge goes on later", reason="ZONES_LEFT")
            await asyncio.sleep(0.2)
            removed += await self.drop_dropped(account, honour_holds=False)
        return removed

    async def _zones_left(self, account: uuid.UUID) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(zones).where(zones.c.account_id == account))).scalar_one())
