"""Record sync: zones, pushes with change tags and conflicts, changes after a token,
tombstones and their horizon, the sync quota, and the account purge."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa

from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from cumulo_platform.evidence import paged
from cumulo_platform.legal_holds import not_held
from cumulo_platform.logging import get_logger
from cumulo_sync.adapters.tables import SCHEMA, legal_holds, records, usage, zones
from cumulo_sync.config import SyncSettings
from cumulo_sync.domain import rules

log = get_logger(__name__)

MAX_FETCH = 1000
DEFAULT_FETCH = 200
MAX_GET = 400
PRUNE_BATCH = 1000
DROP_BATCH = 5000

SAVED, DELETED, CONFLICT, NOT_APPLIED = "saved", "deleted", "conflict", "not_applied"

# The zone, created by its first push, and locked: pushes to one zone take their change
# numbers one after another, in commit order.
_LOCK_ZONE = sa.text(
    f"""
    INSERT INTO {SCHEMA}.zones (zone_id, account_id, name, created_at, modified_at)
    VALUES (:zone_id, :account_id, :name, :now, :now)
    ON CONFLICT (account_id, name) WHERE dropped_at IS NULL
    DO UPDATE SET modified_at = {SCHEMA}.zones.modified_at
    RETURNING zone_id, last_seq
    """
)

# Every change of a push in one statement, whatever its size (no per-row SQL to compile).
_UPSERT = sa.text(
    f"""
    INSERT INTO {SCHEMA}.records (zone_id, record_id, record_type, payload, seq, deleted, modified_at, modified_by)
    SELECT :zone_id, r.record_id, r.record_type, r.payload, r.seq, r.deleted, :now, :device
    FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[]), CAST(:payloads AS bytea[]),
                CAST(:seqs AS bigint[]), CAST(:deleted AS boolean[]))
         AS r(record_id, record_type, payload, seq, deleted)
    ON CONFLICT (zone_id, record_id) DO UPDATE SET
        record_type = excluded.record_type, payload = excluded.payload, seq = excluded.seq,
        deleted = excluded.deleted, modified_at = excluded.modified_at, modified_by = excluded.modified_by
    """
)

_CURRENT = sa.text(
    f"""
    SELECT record_id, record_type, seq, deleted, octet_length(payload) AS size
    FROM {SCHEMA}.records WHERE zone_id = :zone_id AND record_id = ANY(CAST(:ids AS text[]))
    """
)


@dataclasses.dataclass(frozen=True)
class Operation:
    record_id: str
    tag: int | None
    delete: bool
    record_type: str = ""
    payload: bytes = b""


@dataclasses.dataclass
class Result:
    record_id: str
    status: str
    seq: int = 0
    server: Any = None  # the record as stored (a row, or a tombstone made up for a record long gone)


@dataclasses.dataclass(frozen=True)
class Gone:
    """The server's side of a conflict over a record whose tombstone has been dropped."""

    record_id: str
    record_type: str = ""
    payload: bytes = b""
    seq: int = 0
    deleted: bool = True
    modified_at: dt.datetime | None = None
    modified_by: str = ""


@dataclasses.dataclass(frozen=True)
class Pushed:
    results: list[Result]
    zone_id: uuid.UUID | None
    last_seq: int
    changed: bool


class Records:
    def __init__(self, db: Database, settings: SyncSettings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    # --- checking a push --------------------------------------------------------------

    def operations(self, saves: Sequence[Any], deletes: Sequence[Any]) -> list[Operation]:
        """The push's operations, each checked; the whole push is refused naming the first
        bad field, before anything is written."""
        if len(saves) + len(deletes) > self.settings.max_batch:
            field = "saves" if len(saves) > self.settings.max_batch else "deletes"
            raise InvalidArgument(field, f"a push carries at most {self.settings.max_batch} saves and deletes together")
        if not saves and not deletes:
            raise InvalidArgument("saves", "a push needs at least one save or delete")
        seen: set[str] = set()
        ops: list[Operation] = []
        for kind, items in (("saves", saves), ("deletes", deletes)):
            for i, item in enumerate(items):
                field = f"{kind}[{i}]"
                record_id = rules.check_record_id(item.record_id, f"{field}.record_id")
                if record_id in seen:
                    raise InvalidArgument(f"{field}.record_id", "appears more than once in this push")
                seen.add(record_id)
                tag = rules.parse_change_tag(item.change_tag, f"{field}.change_tag")
                if kind == "deletes":
                    ops.append(Operation(record_id, tag, True))
                    continue
                if len(item.payload) > self.settings.max_payload_bytes:
                    raise InvalidArgument(
                        f"{field}.payload", f"is {len(item.payload)} bytes; at most {self.settings.max_payload_bytes}",
                        reason="PAYLOAD_TOO_LARGE",
                    )
                ops.append(Operation(record_id, tag, False, rules.check_record_type(item.record_type, f"{field}.record_type"), item.payload))
        return ops

    # --- push -------------------------------------------------------------------------

    async def push(self, account: uuid.UUID, zone: str, ops: list[Operation], *, atomic: bool, device: str) -> Pushed:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(_LOCK_ZONE, {"zone_id": uuid.uuid4(), "account_id": account, "name": zone, "now": now})
            ).one()
            zone_id, last_seq = row.zone_id, row.last_seq
            current = {
                r.record_id: r
                for r in (await uow.execute(_CURRENT, {"zone_id": zone_id, "ids": [op.record_id for op in ops]})).all()
            }
            results: list[Result] = []
            applied: list[Operation] = []
            for op in ops:
                result = self._decide(op, current.get(op.record_id))
                results.append(result)
                if result.status in (SAVED, DELETED) and result.seq == -1:
                    applied.append(op)
            conflicts = [r for r in results if r.status == CONFLICT]
            if conflicts:
                await self._attach_server_records(uow, zone_id, conflicts)
            if atomic and conflicts:
                for result in results:
                    if result.status != CONFLICT:
                        result.status, result.seq = NOT_APPLIED, 0
                return Pushed(results, zone_id, last_seq, changed=False)
            if not applied:
                for result in results:
                    result.seq = max(result.seq, 0)
                await uow.commit()  # the zone exists from now on, even if nothing changed
                return Pushed(results, zone_id, last_seq, changed=False)
            bytes_delta, count_delta = 0, 0
            for op in applied:
                before = current.get(op.record_id)
                if before is not None and not before.deleted:
                    bytes_delta -= before.size
                    count_delta -= 1
                if not op.delete:
                    bytes_delta += len(op.payload)
                    count_delta += 1
            await self._charge(uow, account, bytes_delta)
            first = last_seq + 1
            seqs = list(range(first, first + len(applied)))
            await uow.execute(
                _UPSERT,
                {
                    "zone_id": zone_id,
                    "now": now,
                    "device": device,
                    "ids": [op.record_id for op in applied],
                    "types": [op.record_type for op in applied],
                    "payloads": [b"" if op.delete else op.payload for op in applied],
                    "seqs": seqs,
                    "deleted": [op.delete for op in applied],
                },
            )
            last_seq = seqs[-1]
            await uow.execute(
                sa.update(zones)
                .where(zones.c.zone_id == zone_id)
                .values(
                    last_seq=last_seq,
                    record_count=zones.c.record_count + count_delta,
                    bytes=zones.c.bytes + bytes_delta,
                    modified_at=now,
                )
            )
            assigned = dict(zip((op.record_id for op in applied), seqs))
            for result in results:
                if result.seq == -1:
                    result.seq = assigned[result.record_id]
            await uow.commit()
        return Pushed(results, zone_id, last_seq, changed=True)

    @staticmethod
    def _decide(op: Operation, current: Any) -> Result:
        """seq -1 marks an operation to apply (it gets its change number later)."""
        live = current is not None and not current.deleted
        if op.delete:
            if not live:
                # Already gone: the device's wish holds; nothing changes.
                return Result(op.record_id, DELETED, current.seq if current is not None else 0)
            if op.tag is None or op.tag == current.seq:
                return Result(op.record_id, DELETED, -1)
            return Result(op.record_id, CONFLICT)
        if op.tag is None:
            return Result(op.record_id, CONFLICT) if live else Result(op.record_id, SAVED, -1)
        if current is not None and op.tag == current.seq:
            return Result(op.record_id, SAVED, -1)
        return Result(op.record_id, CONFLICT)

    async def _attach_server_records(self, uow: UnitOfWork, zone_id: uuid.UUID, conflicts: list[Result]) -> None:
        found = {
            r.record_id: r
            for r in (
                await uow.execute(
                    sa.select(records).where(records.c.zone_id == zone_id, records.c.record_id.in_([c.record_id for c in conflicts]))
                )
            ).all()
        }
        for conflict in conflicts:
            conflict.server = found.get(conflict.record_id) or Gone(conflict.record_id)

    async def _charge(self, uow: UnitOfWork, account: uuid.UUID, delta: int) -> None:
        quota = self.settings.quota_bytes
        row = (
            await uow.execute(
                sa.text(
                    f"""
                    INSERT INTO {SCHEMA}.usage AS u (account_id, used) VALUES (:account, GREATEST(:delta, 0))
                    ON CONFLICT (account_id) DO UPDATE SET used = GREATEST(u.used + :delta, 0)
                    WHERE :delta <= 0 OR u.used + :delta <= :quota
                    RETURNING used
                    """
                ),
                {"account": account, "delta": delta, "quota": quota},
            )
        ).first()
        if row is None or row.used > quota and delta > 0:
            raise ResourceExhausted(
                f"this push needs {delta} more bytes than the account's sync storage of {quota} bytes allows",
                reason="QUOTA_EXCEEDED",
                metadata={"quota": str(quota)},
            )

    # --- reading ----------------------------------------------------------------------

    async def zone_row(self, conn: Any, account: uuid.UUID, name: str) -> Any:
        return (
            await conn.execute(
                sa.select(zones).where(zones.c.account_id == account, zones.c.name == name, zones.c.dropped_at.is_(None))
            )
        ).first()

    async def fetch_changes(self, account: uuid.UUID, zone: str, token: str, limit: int) -> tuple[list[Any], str, bool]:
        if limit < 0 or limit > MAX_FETCH:
            raise InvalidArgument("limit", f"must be between 0 and {MAX_FETCH}")
        limit = limit or DEFAULT_FETCH
        async with self.db.read() as conn:
            found = await self.zone_row(conn, account, zone)
            after = rules.parse_change_token(token, found.zone_id if found is not None else None)
            if found is None:
                return [], "", False  # no such zone yet: nothing to fetch, start from "" later
            if after > found.last_seq:
                raise InvalidArgument("change_token", "is not a change token this service gave out")
            if 0 < after < found.horizon_seq:
                raise FailedPrecondition(
                    "this change token is older than the zone's deleted-record history: fetch the zone again from an empty token",
                    reason="CHANGE_TOKEN_EXPIRED",
                )
            rows = (
                await conn.execute(
                    sa.select(records)
                    .where(records.c.zone_id == found.zone_id, records.c.seq > after)
                    .order_by(records.c.seq)
                    .limit(limit + 1)
                )
            ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        # Every change up to last_seq had committed when the zone row was read.
        last = rows[-1].seq if more else max(found.last_seq, rows[-1].seq if rows else 0, after)
        return list(rows), rules.change_token(found.zone_id, last), more

    async def get_records(self, account: uuid.UUID, zone: str, record_ids: Sequence[str]) -> list[Any]:
        if len(record_ids) > MAX_GET:
            raise InvalidArgument("record_ids", f"at most {MAX_GET} per call")
        ids = [rules.check_record_id(r, f"record_ids[{i}]") for i, r in enumerate(record_ids)]
        async with self.db.read() as conn:
            found = await self.zone_row(conn, account, zone)
            if found is None or not ids:
                return []
            return list(
                (await conn.execute(sa.select(records).where(records.c.zone_id == found.zone_id, records.c.record_id.in_(ids)))).all()
            )

    async def list_zones(self, account: uuid.UUID) -> list[Any]:
        async with self.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        sa.select(zones).where(zones.c.account_id == account, zones.c.dropped_at.is_(None)).order_by(zones.c.name)
                    )
                ).all()
            )

    async def usage(self, account: uuid.UUID) -> int:
        async with self.db.read() as conn:
            used = (await conn.execute(sa.select(usage.c.used).where(usage.c.account_id == account))).scalar()
        return used or 0

    # --- deleting ---------------------------------------------------------------------

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
                condition = [zones.c.dropped_at.is_not(None)]
                if account is not None:
                    condition.append(zones.c.account_id == account)
                if honour_holds:
                    condition.append(not_held(legal_holds, zones.c.account_id))
                zone = (
                    await uow.execute(sa.select(zones.c.zone_id).where(*condition).limit(1).with_for_update(skip_locked=True))
                ).scalar()
                if zone is None:
                    return removed
                deleted = (
                    await uow.execute(
                        sa.text(
                            f"""DELETE FROM {SCHEMA}.records WHERE ctid = ANY(ARRAY(
                                SELECT ctid FROM {SCHEMA}.records WHERE zone_id = :zone LIMIT :n))"""
                        ),
                        {"zone": zone, "n": DROP_BATCH},
                    )
                ).rowcount or 0
                removed += deleted
                if deleted < DROP_BATCH:
                    await uow.execute(sa.delete(zones).where(zones.c.zone_id == zone))
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
                    sa.select(records.c.zone_id)
                    .join(zones, zones.c.zone_id == records.c.zone_id)
                    .where(records.c.deleted, records.c.modified_at < cutoff, not_held(legal_holds, zones.c.account_id))
                    .distinct()
                    .limit(100)
                )
            ).scalars().all()
        for zone_id in candidates:
            async with self.db.unit_of_work() as uow:
                locked = (
                    await uow.execute(
                        sa.select(zones.c.zone_id).where(zones.c.zone_id == zone_id, zones.c.dropped_at.is_(None))
                        .with_for_update(skip_locked=True)
                    )
                ).scalar()
                if locked is None:
                    continue
                gone = (
                    await uow.execute(
                        sa.text(
                            f"""DELETE FROM {SCHEMA}.records WHERE zone_id = :zone AND record_id IN (
                                SELECT record_id FROM {SCHEMA}.records
                                WHERE zone_id = :zone AND deleted AND modified_at < :cutoff LIMIT :n)
                                RETURNING seq"""
                        ),
                        {"zone": zone_id, "cutoff": cutoff, "n": PRUNE_BATCH},
                    )
                ).scalars().all()
                if gone:
                    await uow.execute(
                        sa.update(zones).where(zones.c.zone_id == zone_id).values(horizon_seq=sa.func.greatest(zones.c.horizon_seq, max(gone)))
                    )
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
        # (a zone's row goes after its last record).
        while await self._zones_left(account):
            await asyncio.sleep(0.2)
            removed += await self.drop_dropped(account, honour_holds=False)
        return removed

    async def _zones_left(self, account: uuid.UUID) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(zones).where(zones.c.account_id == account))).scalar_one())

    async def evidence(self, account: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
        """The account's zones (deleted ones kept for a hold too) and every record with its
        payload, for an evidence bundle."""
        async for row in paged(self.db, sa.select(zones).where(zones.c.account_id == account), [zones.c.zone_id], kind="zone"):
            yield row
        mine = sa.select(zones.c.zone_id).where(zones.c.account_id == account).scalar_subquery()
        async for row in paged(self.db, sa.select(records).where(records.c.zone_id.in_(mine)), [records.c.zone_id, records.c.record_id], kind="record"):
            yield row
