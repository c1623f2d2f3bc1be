"""Pushes: a device's saves and deletes, each checked, applied under the zone's lock with
change tags (a stale tag is a conflict answered with the server's record), numbered in
commit order, and charged against the account's sync storage: payload bytes, and a fixed
overhead per record row (rules.RECORD_OVERHEAD_BYTES), so that neither big records nor many
small ones go past the quota. An account has at most `max_zones` zones."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cumulo_platform.account_states import AccountDeleted, AccountStates
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import InvalidArgument, ResourceExhausted
from cumulo_sync.adapters.tables import SCHEMA, records_by_id
from cumulo_sync.config import SyncSettings
from cumulo_sync.domain import rules

SAVED, DELETED, CONFLICT, NOT_APPLIED = "saved", "deleted", "conflict", "not_applied"


def _statements(refusing: str) -> tuple[sa.TextClause, sa.TextClause, sa.TextClause]:
    """A push's statements, with `refusing` (AccountStates.refusing) naming the account if its
    purge has begun: read by the zone's lock, after the account's write lock (hold_writes)."""
    refused = f"EXISTS ({refusing})"
    # The zone, locked: pushes to one zone take their change numbers one after another, in
    # commit order.
    lock_zone = sa.text(
        f"""
        UPDATE {SCHEMA}.zones SET modified_at = modified_at
        WHERE account_id = :account_id AND name = :name AND dropped_at IS NULL
        RETURNING zone_id, last_seq, {refused} AS refused
        """
    )
    # A zone created by its first push (and locked), unless the account has its fill of zones.
    create_zone = sa.text(
        f"""
        INSERT INTO {SCHEMA}.zones (zone_id, account_id, name, created_at, modified_at)
        SELECT :zone_id, :account_id, :name, :now, :now
        WHERE (SELECT count(*) FROM {SCHEMA}.zones WHERE account_id = :account_id AND dropped_at IS NULL) < :max_zones
        ON CONFLICT (account_id, name) WHERE dropped_at IS NULL
        DO UPDATE SET modified_at = {SCHEMA}.zones.modified_at
        RETURNING zone_id, last_seq, {refused} AS refused
        """
    )
    # Every change of a push in one statement, whatever its size (no per-row SQL to compile):
    # the account charged (no row when the quota would be passed: nothing else happens then),
    # the records written, the zone's numbers moved on.
    apply = sa.text(
        f"""
        WITH charged AS (
            INSERT INTO {SCHEMA}.usage AS u (account_id, used) VALUES (:account_id, GREATEST(CAST(:charge AS bigint), 0))
            ON CONFLICT (account_id) DO UPDATE SET used = GREATEST(u.used + CAST(:charge AS bigint), 0)
            WHERE CAST(:charge AS bigint) <= 0 OR u.used + CAST(:charge AS bigint) <= :quota
            RETURNING used
        ),
        written AS (
            INSERT INTO {SCHEMA}.records (account_id, zone_id, record_id, record_type, payload, seq, deleted, modified_at, modified_by)
            SELECT :account_id, :zone_id, r.record_id, r.record_type, r.payload, r.seq, r.deleted, :now, :device
            FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[]), CAST(:payloads AS bytea[]),
                        CAST(:seqs AS bigint[]), CAST(:deleted AS boolean[]))
                 AS r(record_id, record_type, payload, seq, deleted)
            WHERE EXISTS (SELECT 1 FROM charged)
            ON CONFLICT (account_id, zone_id, record_id) DO UPDATE SET
                record_type = excluded.record_type, payload = excluded.payload, seq = excluded.seq,
                deleted = excluded.deleted, modified_at = excluded.modified_at, modified_by = excluded.modified_by
        ),
        numbered AS (
            UPDATE {SCHEMA}.zones SET last_seq = :last_seq, record_count = record_count + :count_delta,
                bytes = bytes + :bytes_delta, modified_at = :now
            WHERE account_id = :account_id AND zone_id = :zone_id AND EXISTS (SELECT 1 FROM charged)
        )
        SELECT used FROM charged
        """
    )
    return lock_zone, create_zone, apply


_CURRENT = records_by_id("r.record_id, r.record_type, r.seq, r.deleted, octet_length(r.payload) AS size")
_SERVER_RECORDS = records_by_id()


@dataclasses.dataclass(slots=True)
class Operation:
    record_id: str
    tag: int | None
    delete: bool
    record_type: str = ""
    payload: bytes = b""


@dataclasses.dataclass(slots=True)
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


class Pushes:
    def __init__(self, db: Database, settings: SyncSettings, clock: Clock, states: AccountStates) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.states = states
        self._lock_zone_sql, self._create_zone_sql, self._apply_sql = _statements(states.refusing("ARRAY[CAST(:account_id AS uuid)]"))

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
        types: set[str] = set()  # record types already checked: a push mostly repeats one or two
        ops: list[Operation] = []
        limit = self.settings.max_payload_bytes
        for kind, items in (("saves", saves), ("deletes", deletes)):
            for i, item in enumerate(items):
                # Each field read once: every read of a message's field makes a new object.
                record_id = rules.check_record_id(item.record_id, f"{kind}[{i}].record_id")
                if record_id in seen:
                    raise InvalidArgument(f"{kind}[{i}].record_id", "appears more than once in this push")
                seen.add(record_id)
                change_tag = item.change_tag
                tag = rules.parse_change_tag(change_tag, f"{kind}[{i}].change_tag") if change_tag else None
                if kind == "deletes":
                    ops.append(Operation(record_id, tag, True))
                    continue
                payload = item.payload
                if len(payload) > limit:
                    raise InvalidArgument(
                        f"{kind}[{i}].payload", f"is {len(payload)} bytes; at most {limit}", reason="PAYLOAD_TOO_LARGE"
                    )
                record_type = item.record_type
                if record_type not in types:
                    types.add(rules.check_record_type(record_type, f"{kind}[{i}].record_type"))
                ops.append(Operation(record_id, tag, False, record_type, payload))
        return ops

    # --- push -------------------------------------------------------------------------

    async def push(self, account: uuid.UUID, zone: str, ops: list[Operation], *, atomic: bool, device: str) -> Pushed:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            await self.states.hold_writes(uow, (account,))  # a purge that has begun gets nothing new:
            row = await self._lock_zone(uow, account, zone, now)
            if row.refused:  # ... its mark, read by the zone's lock
                raise AccountDeleted()
            zone_id, last_seq = row.zone_id, row.last_seq
            current = {
                r.record_id: r
                for r in (
                    await uow.execute(_CURRENT, {"account_id": account, "zone_id": zone_id, "ids": [op.record_id for op in ops]})
                ).all()
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
                await self._attach_server_records(uow, account, zone_id, conflicts)
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
            bytes_delta, count_delta, new_rows = 0, 0, 0
            for op in applied:
                before = current.get(op.record_id)
                if before is None:
                    new_rows += 1  # a row from now on; deleted, it stays as a tombstone
                elif not before.deleted:
                    bytes_delta -= before.size
                    count_delta -= 1
                if not op.delete:
                    bytes_delta += len(op.payload)
                    count_delta += 1
            first = last_seq + 1
            seqs = list(range(first, first + len(applied)))
            charge = bytes_delta + new_rows * rules.RECORD_OVERHEAD_BYTES
            charged = (
                await uow.execute(
                    self._apply_sql,
                    {
                        "account_id": account,
                        "charge": charge,
                        "quota": self.settings.quota_bytes,
                        "zone_id": zone_id,
                        "now": now,
                        "device": device,
                        "ids": [op.record_id for op in applied],
                        "types": [op.record_type for op in applied],
                        "payloads": [b"" if op.delete else op.payload for op in applied],
                        "seqs": seqs,
                        "deleted": [op.delete for op in applied],
                        "last_seq": seqs[-1],
                        "count_delta": count_delta,
                        "bytes_delta": bytes_delta,
                    },
                )
            ).first()
            self._refuse_over_quota(charged, charge)
            last_seq = seqs[-1]
            assigned = dict(zip((op.record_id for op in applied), seqs))
            for result in results:
                if result.seq == -1:
                    result.seq = assigned[result.record_id]
            await uow.commit()
        return Pushed(results, zone_id, last_seq, changed=True)

    async def _lock_zone(self, uow: UnitOfWork, account: uuid.UUID, zone: str, now: dt.datetime) -> Any:
        names = {"account_id": account, "name": zone}
        row = (await uow.execute(self._lock_zone_sql, names)).first()
        if row is None:
            row = (
                await uow.execute(self._create_zone_sql, {**names, "zone_id": uuid.uuid4(), "now": now, "max_zones": self.settings.max_zones})
            ).first()
        if row is None:
            await self.states.admit_write(uow, account)  # an account being purged hears that first
            raise ResourceExhausted(
                f"an account has at most {self.settings.max_zones} zones; delete one to make another",
                reason="ZONE_LIMIT_REACHED", metadata={"max_zones": str(self.settings.max_zones)},
            )
        return row

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

    async def _attach_server_records(self, uow: UnitOfWork, account: uuid.UUID, zone_id: uuid.UUID, conflicts: list[Result]) -> None:
        ids = [c.record_id for c in conflicts]
        found = {
            r.record_id: r
            for r in (await uow.execute(_SERVER_RECORDS, {"account_id": account, "zone_id": zone_id, "ids": ids})).all()
        }
        for conflict in conflicts:
            conflict.server = found.get(conflict.record_id) or Gone(conflict.record_id)

    def _refuse_over_quota(self, row: Any, delta: int) -> None:
        """The push's charge (`row`: the account's use after it, None when it was refused)."""
        quota = self.settings.quota_bytes
        if row is None or row.used > quota and delta > 0:
            raise ResourceExhausted(
                f"this push needs {delta} more bytes (payloads, and {rules.RECORD_OVERHEAD_BYTES} for each new record) "
                f"than the account's sync storage of {quota} bytes allows",
                reason="QUOTA_EXCEEDED",
                metadata={"quota": str(quota)},
            )
