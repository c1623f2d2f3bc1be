"""Devices, their positions and their history: registration, location reports (written in
groups: one transaction for all the reports that arrive together), the newest position,
lost mode's "found", retention in small batches, whose devices a caller sees (guardians),
and the account purge."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_locator.adapters.tables import SCHEMA, commands, devices, guardians, locations
from cumulo_locator.config import LocatorSettings
from cumulo_locator.domain import rules
from cumulo_platform.account_states import AccountDeleted, AccountStates
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, delete_in_batches
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, parse_id
from cumulo_platform.evidence import paged
from cumulo_platform.group_commit import GroupCommit
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import decode_token, encode_token, page_size, token_time
from cumulo_platform.tokens import Principal, require_recent_password
from cumulo_platform.tracing import current_traceparent

log = get_logger(__name__)

PURGE_BATCH = 5000
WRITE_SPREAD_AT = 200  # positions waiting to be written that make a second writer worth it

# A group of reports in one statement (one round trip inside BEGIN/COMMIT, after the accounts'
# write locks): refuse the accounts whose purge has begun (`refused`, answered as rows of their
# own); lock the devices named, in one order (no deadlock between groups or replicas); store each point
# once per device and measurement time; make each device's newest point its position if it
# is newer than the one it has (a late batch of old points only fills the history); count a
# report as a sign of life; mark a lost device found. Answers a row per device, and one per
# point stored (the caller counts them per report: a join here is planned badly).
def _write_reports(refusing: str) -> sa.TextClause:
    return sa.text(
        f"""
    WITH refused AS ({refusing}),
    input AS (
        SELECT * FROM unnest(
            CAST(:req AS int[]), CAST(:accounts AS uuid[]), CAST(:ids AS text[]), CAST(:at AS timestamptz[]),
            CAST(:lat AS float8[]), CAST(:lon AS float8[]), CAST(:acc AS float8[]), CAST(:alt AS float8[]),
            CAST(:speed AS float8[]), CAST(:battery AS int[]), CAST(:source AS text[]))
            AS i(req, account_id, device_id, measured_at, latitude, longitude, accuracy, altitude, speed, battery, source)
        WHERE i.account_id NOT IN (SELECT account_id FROM refused)
    ),
    dev AS (
        SELECT d.device_key, d.account_id, d.device_id FROM {SCHEMA}.devices d
        WHERE (d.account_id, d.device_id) IN (SELECT DISTINCT account_id, device_id FROM input)
        ORDER BY d.device_key FOR UPDATE
    ),
    points AS (SELECT dev.device_key, i.* FROM input i JOIN dev USING (account_id, device_id)),
    ins AS (
        INSERT INTO {SCHEMA}.locations
            (account_id, device_key, measured_at, latitude, longitude, accuracy, altitude, speed, battery, source, received_at)
        SELECT account_id, device_key, measured_at, latitude, longitude, accuracy, altitude, speed, battery, source, :now FROM points
        ON CONFLICT (account_id, device_key, measured_at) DO NOTHING
        RETURNING device_key, measured_at
    ),
    newest AS (SELECT DISTINCT ON (device_key) * FROM points ORDER BY device_key, measured_at DESC),
    upd AS (
        UPDATE {SCHEMA}.devices d SET
            last_seen_at = :now,
            battery = CASE WHEN n.battery >= 0 AND (d.measured_at IS NULL OR n.measured_at >= d.measured_at) THEN n.battery ELSE d.battery END,
            latitude = CASE WHEN d.measured_at IS NULL OR n.measured_at > d.measured_at THEN n.latitude ELSE d.latitude END,
            longitude = CASE WHEN d.measured_at IS NULL OR n.measured_at > d.measured_at THEN n.longitude ELSE d.longitude END,
            accuracy = CASE WHEN d.measured_at IS NULL OR n.measured_at > d.measured_at THEN n.accuracy ELSE d.accuracy END,
            altitude = CASE WHEN d.measured_at IS NULL OR n.measured_at > d.measured_at THEN n.altitude ELSE d.altitude END,
            speed = CASE WHEN d.measured_at IS NULL OR n.measured_at > d.measured_at THEN n.speed ELSE d.speed END,
            source = CASE WHEN d.measured_at IS NULL OR n.measured_at > d.measured_at THEN n.source ELSE d.source END,
            measured_at = GREATEST(d.measured_at, n.measured_at),
            found_at = CASE WHEN d.lost_mode AND d.found_at IS NULL THEN CAST(:now AS timestamptz) ELSE d.found_at END
        FROM newest n WHERE d.device_key = n.device_key
        RETURNING d.device_key, d.account_id, d.device_id, d.lost_mode, d.lost_message, d.lost_phone, d.lost_since, d.found_at
    )
    SELECT u.device_key, u.account_id, u.device_id, u.lost_mode, u.lost_message, u.lost_phone, u.lost_since, u.found_at,
           NULL::timestamptz AS stored_at, false AS refused
    FROM upd u
    UNION ALL
    SELECT ins.device_key, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ins.measured_at, false FROM ins
    UNION ALL
    SELECT NULL, r.account_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true FROM refused r
    """
    )


@dataclasses.dataclass(frozen=True)
class Report:
    account_id: uuid.UUID
    device_id: str
    points: list[rules.Point]
    # The reporting call's trace context: the group is written by a shared writer outside any
    # call, and what a report causes (a lost device found) continues that call's trace.
    trace: tuple[str, str] = ("", "")


@dataclasses.dataclass(frozen=True)
class Reported:
    stored: int
    lost: Any  # the device row's lost-mode columns


class Devices:
    def __init__(self, db: Database, settings: LocatorSettings, clock: Clock, holds: LegalHolds, states: AccountStates) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.holds = holds
        self.states = states
        # Small reports: one writer, since a group's cost is mostly its own (round trips,
        # statement set-up), so fewer, larger groups serve more of them (measured: two writers, or
        # two shards of the devices, served half as many single-point reports). Large ones: a
        # second writer while WRITE_SPREAD_AT positions wait, so that PostgreSQL's work on them
        # runs side by side (groups lock their devices in one order: they never deadlock).
        self.reports: GroupCommit[Report, Reported] = GroupCommit(
            self._write_reports, window=settings.write_window, concurrency=2, size=lambda report: len(report.points),
            spread_at=WRITE_SPREAD_AT,
        )
        self._write_statement = _write_reports(states.refusing("CAST(:accounts AS uuid[])"))

    # --- whose devices ----------------------------------------------------------------

    async def owner(self, principal: Principal, account_id: str) -> uuid.UUID:
        """The account whose devices the caller may see: their own, or a minor's in their care."""
        me = uuid.UUID(principal.account_id)
        if not account_id:
            return me
        minor = parse_id(account_id, "account_id", "an account id")
        if minor == me:
            return me
        # A guardian's link holds until the minor comes of age, or until the adult revoked it;
        # a link whose end is not known (recorded before ends were) holds no more.
        async with self.db.read() as conn:
            link = (
                await conn.execute(
                    sa.select(guardians.c.guardian_account_id, guardians.c.until, guardians.c.revoked_at).where(
                        guardians.c.minor_account_id == minor
                    )
                )
            ).first()
        if link is None or link.guardian_account_id != me:
            raise PermissionDenied("only the account's owner, or a minor's guardian, sees its devices", reason="NOT_YOUR_DEVICES")
        if link.revoked_at is not None or link.until is None or self.clock.now() >= link.until:
            raise PermissionDenied(
                "a guardian's access ends when the account's owner comes of age or revokes it", reason="GUARDIAN_ACCESS_ENDED"
            )
        return minor

    # --- devices ----------------------------------------------------------------------

    async def register(self, account: uuid.UUID, device_id: str, name: str, model: str, platform: str) -> Any:
        device = rules.check_device_id(device_id, new=True)
        values = {
            "name": rules.check_label(name, "name") or device,
            "model": rules.check_label(model, "model"),
            "platform": rules.check_label(platform, "platform"),
        }
        async with self.db.unit_of_work() as uow:
            await self.states.admit_write(uow, account)  # a purge that has begun gets nothing new
            row = (
                await uow.execute(
                    pg_insert(devices)
                    .values(device_key=uuid.uuid4(), account_id=account, device_id=device, registered_at=self.clock.now(), **values)
                    .on_conflict_do_update(constraint="devices_account_device", set_=values)
                    .returning(*devices.c)
                )
            ).one()
            await uow.commit()
        return row

    async def find(self, conn: Any, account: uuid.UUID, device_id: str, *, lock: bool = False) -> Any:
        query = sa.select(devices).where(devices.c.account_id == account, devices.c.device_id == rules.check_device_id(device_id))
        row = (await conn.execute(query.with_for_update() if lock else query)).first()
        if row is None:
            raise NotFound("no such device", reason="DEVICE_NOT_FOUND")
        return row

    async def get(self, account: uuid.UUID, device_id: str) -> Any:
        async with self.db.read() as conn:
            return await self.find(conn, account, device_id)

    async def of_account(self, account: uuid.UUID) -> list[Any]:
        async with self.db.read() as conn:
            return list(
                (await conn.execute(sa.select(devices).where(devices.c.account_id == account).order_by(devices.c.name, devices.c.device_id))).all()
            )

    async def remove(self, principal: Principal, device_id: str) -> None:
        """The device, its history and its commands go. Like a wipe it undoes protection (a
        thief would remove the stolen phone, and its pending wipe): the password first."""
        account = uuid.UUID(principal.account_id)
        require_recent_password(principal, now=self.clock.now(), within=self.settings.password_window, action="removing a device")
        async with self.db.unit_of_work() as uow:
            row = await self.find(uow, account, device_id, lock=True)
            if (await uow.execute(sa.select(self.holds.is_held(sa.literal(account, sa.Uuid))))).scalar():
                raise FailedPrecondition(
                    "this account's data is preserved under a legal hold; the device can be removed once it is released",
                    reason="LEGAL_HOLD",
                )
            await uow.execute(sa.delete(commands).where(commands.c.device_key == row.device_key))
            await uow.execute(sa.delete(devices).where(devices.c.device_key == row.device_key))
            await uow.commit()
        await self._delete_history(account, row.device_key)

    # --- reports ----------------------------------------------------------------------

    def points(self, items: Sequence[Any]) -> list[rules.Point]:
        if not items:
            raise InvalidArgument("locations", "a report carries at least one position")
        if len(items) > self.settings.max_batch:
            raise InvalidArgument("locations", f"a report carries at most {self.settings.max_batch} positions")
        now = self.clock.now()
        return [
            rules.check_point(item, f"locations[{i}]", now=now, skew=self.settings.clock_skew, retention=self.settings.retention)
            for i, item in enumerate(items)
        ]

    async def report(self, account: uuid.UUID, device_id: str, points: list[rules.Point]) -> Reported:
        return await self.reports.submit(Report(account, rules.check_device_id(device_id), points, current_traceparent()))

    async def _write_reports(self, group: list[Report]) -> list[Reported | BaseException]:
        now = self.clock.now()
        names = ("req", "accounts", "ids", "at", "lat", "lon", "acc", "alt", "speed", "battery", "source")
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for req, report in enumerate(group):  # packed before the transaction: no lock held meanwhile
            for p in report.points:
                for name, value in zip(
                    names,
                    (req, report.account_id, report.device_id, p.measured_at, p.latitude, p.longitude, p.accuracy,
                     p.altitude, p.speed, p.battery, p.source),
                ):
                    columns[name].append(value)
        async with self.db.unit_of_work() as uow:
            # The group's accounts whose purge has begun get nothing new: their locks here, their
            # states read by the write itself.
            await self.states.hold_writes(uow, {report.account_id for report in group})
            rows = (await uow.execute(self._write_statement, {**columns, "now": now})).all()
            found: dict[tuple[uuid.UUID, str], Any] = {}
            traces = {(report.account_id, report.device_id): report.trace for report in group}
            stored: set[tuple[uuid.UUID, dt.datetime]] = set()
            refused: set[uuid.UUID] = set()
            for row in rows:
                if row.refused:
                    refused.add(row.account_id)
                    continue
                if row.stored_at is not None:
                    stored.add((row.device_key, row.stored_at))
                    continue
                found[(row.account_id, row.device_id)] = row
                if row.lost_mode and row.found_at == now:
                    uow.emit(
                        "device.found",
                        events_pb2.DeviceFound(account_id=str(row.account_id), device_id=row.device_id, found_at=timestamp(now)),
                        account_id=str(row.account_id),
                        trace=traces.get((row.account_id, row.device_id), ("", "")),
                    )
            await uow.commit()
        answers: list[Reported | BaseException] = []
        for report in group:
            if report.account_id in refused:
                answers.append(AccountDeleted())
                continue
            device = found.get((report.account_id, report.device_id))
            if device is None:
                answers.append(NotFound("no such device: register it first", reason="DEVICE_NOT_FOUND"))
                continue
            mine = {(device.device_key, p.measured_at) for p in report.points} & stored
            stored -= mine  # a point in two reports of one group counts once
            answers.append(Reported(len(mine), device))
        return answers

    async def history(
        self, account: uuid.UUID, device_id: str, since: dt.datetime | None, until: dt.datetime | None, size: int, token: str
    ) -> tuple[list[Any], str]:
        limit = page_size(size, default=500, maximum=5000)
        async with self.db.read() as conn:
            device = await self.find(conn, account, device_id)
            query = sa.select(locations).where(locations.c.account_id == device.account_id, locations.c.device_key == device.device_key)
            if since is not None:
                query = query.where(locations.c.measured_at >= since)
            if until is not None:
                query = query.where(locations.c.measured_at <= until)
            if token:
                (before,) = decode_token(token, str)
                query = query.where(locations.c.measured_at < token_time(before))
            rows = (await conn.execute(query.order_by(locations.c.measured_at.desc()).limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return list(rows), encode_token([rows[-1].measured_at.isoformat()]) if more else ""

    # --- retention, removal, purge ----------------------------------------------------

    async def prune(self) -> int:
        """Positions older than the retention go in batches of PRUNE_BATCH rows, each its own
        short transaction: never one long DELETE holding the table. A held account's history
        stays until the hold is released."""
        cutoff = self.clock.now() - self.settings.retention
        held = f"account_id IN (SELECT h.account_id FROM {self.holds.table.fullname} h WHERE h.held)"
        deleted = await delete_in_batches(
            self.db, f"{SCHEMA}.locations", f"measured_at < :cutoff AND NOT {held}", {"cutoff": cutoff}, batch=self.settings.prune_batch
        )
        if deleted:
            log.info("locations_pruned", count=deleted)
        return deleted

    async def evidence(self, account: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
        """The account's devices, their location history and commands, for an evidence bundle."""
        async for row in paged(self.db, sa.select(devices).where(devices.c.account_id == account), [devices.c.device_key], kind="device"):
            yield row
        history = sa.select(locations).where(locations.c.account_id == account)
        async for row in paged(self.db, history, [locations.c.device_key, locations.c.measured_at], kind="location"):
            yield row
        async for row in paged(self.db, sa.select(commands).where(commands.c.account_id == account), [commands.c.command_id], kind="command"):
            yield row

    async def _delete_history(self, account: uuid.UUID, device_key: uuid.UUID | None = None) -> int:
        """The history of one device of the account, or of all its devices."""
        where = "account_id = :account"
        params: dict[str, object] = {"account": account}
        if device_key is not None:
            where += " AND device_key = :key"
            params["key"] = device_key
        return await delete_in_batches(self.db, f"{SCHEMA}.locations", where, params, batch=PURGE_BATCH)

    async def purge(self, account: uuid.UUID) -> int:
        """Every device, position and command of the account, and its guardian links;
        idempotent and resumable (history first, then the rows that point to it)."""
        items = await self._delete_history(account)
        async with self.db.unit_of_work() as uow:
            items += (await uow.execute(sa.delete(commands).where(commands.c.account_id == account))).rowcount or 0
            items += (await uow.execute(sa.delete(devices).where(devices.c.account_id == account))).rowcount or 0
            await uow.execute(
                sa.delete(guardians).where(sa.or_(guardians.c.minor_account_id == account, guardians.c.guardian_account_id == account))
            )
            await uow.commit()
        items += await self._delete_history(account)  # a report that slipped in before the devices went
        return items
