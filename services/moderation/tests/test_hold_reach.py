"""Legal holds reach the locator and sync (§3.3.1, §6.7), against the session's real servers and
services: a hold placed by a moderator (ModerationService.SetLegalHold, which sets it in the
lifecycle) is announced by the lifecycle as `account.hold_changed`, each service keeps the
held accounts in its own `legal_holds` table, and its clean-up leaves them alone:

- the locator's retention (`Devices.prune`) keeps a held account's old positions;
- sync's clean-up (`Cleanup.prune_tombstones`, `Cleanup.drop_dropped()`) keeps a held
  account's old tombstones and its deleted zones;

while other accounts' old rows go in the same run, and the held account's go once the
release has reached the service."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest
import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.testing import Member, eventually, expect_error, read_stream
from cumulo_locator.adapters.tables import devices, locations
from cumulo_platform.event_types import event_filter
from cumulo_platform.legal_holds import EVENT_TYPE
from cumulo_sdk import CumuloRpcError
from cumulo_sdk.devices import DeviceAgent
from cumulo_sync.adapters.tables import records, zones

HOLD_WAIT = 30.0  # seconds for an event to travel lifecycle outbox -> JetStream -> consumer


# --- fixtures and helpers -----------------------------------------------------------------------


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# --- locator helpers ---


async def registered_device(locator, member: Member, device_id: str) -> uuid.UUID:
    await DeviceAgent(member.client).register(device_id, name=device_id, model="Pixel", platform="android")
    async with locator.app.db.read() as conn:
        return (
            await conn.execute(
                sa.select(devices.c.device_key).where(
                    devices.c.account_id == uuid.UUID(member.account_id), devices.c.device_id == device_id
                )
            )
        ).scalar_one()


async def insert_points(locator, key: uuid.UUID, times: list[dt.datetime]) -> None:
    """Positions written straight into the table, as services/device-locator/tests do: reports refuse
    points older than the retention, which is what these stand for."""
    async with locator.app.db.read() as conn:
        account = (await conn.execute(sa.select(devices.c.account_id).where(devices.c.device_key == key))).scalar_one()
    rows = [
        {"account_id": account, "device_key": key, "measured_at": at, "latitude": 31.0, "longitude": 121.0, "accuracy": 10.0,
         "altitude": 0.0, "speed": 0.0, "battery": 50, "source": "gps", "received_at": at}
        for at in times
    ]
    async with locator.app.db.unit_of_work() as uow:
        await uow.execute(sa.insert(locations), rows)
        await uow.commit()


async def stored_times(locator, key: uuid.UUID) -> set[dt.datetime]:
    async with locator.app.db.read() as conn:
        return set((await conn.execute(sa.select(locations.c.measured_at).where(locations.c.device_key == key))).scalars())


# --- sync helpers ---


def save(record_id: str, payload: bytes = b"x") -> sync_pb2.RecordSave:
    return sync_pb2.RecordSave(record_id=record_id, record_type="contact", payload=payload)


async def zone_id(sync, account_id: str, name: str) -> uuid.UUID:
    async with sync.app.db.read() as conn:
        return (
            await conn.execute(
                sa.select(zones.c.zone_id).where(
                    zones.c.account_id == uuid.UUID(account_id), zones.c.name == name, zones.c.dropped_at.is_(None)
                )
            )
        ).scalar_one()


async def with_old_tombstone(sync, member: Member, zone: str) -> tuple[uuid.UUID, str]:
    """A zone with a live record "keep" and a tombstone "gone" older than the retention (aged in
    the table, as if deleted long ago); and a change token from before the deletion."""
    made = await member.client.sync.push(zone, [save("gone", b"evidence"), save("keep", b"k")])
    _, token_before = await member.client.sync.fetch_all(zone)
    deleted = await member.client.sync.push(
        zone, deletes=[sync_pb2.RecordDelete(record_id="gone", change_tag=made.results[0].change_tag)]
    )
    assert deleted.results[0].status == sync_pb2.PUSH_STATUS_DELETED
    zid = await zone_id(sync, member.account_id, zone)
    aged = utcnow() - sync.app.settings.tombstone_retention - dt.timedelta(days=2)
    async with sync.app.db.unit_of_work() as uow:
        changed = (
            await uow.execute(sa.update(records).where(records.c.zone_id == zid, records.c.deleted).values(modified_at=aged))
        ).rowcount
        await uow.commit()
    assert changed == 1
    return zid, token_before


async def with_dropped_zone(sync, member: Member, zone: str) -> uuid.UUID:
    """A zone with three records that was deleted and left for the clean-up (`drop_dropped()`
    without an account, the periodic tidy-up): marked dropped in the table. Deleting through
    the API also removes the records at once, for the caller's own account."""
    await member.client.sync.push(zone, [save("r1"), save("r2"), save("r3")])
    zid = await zone_id(sync, member.account_id, zone)
    async with sync.app.db.unit_of_work() as uow:
        await uow.execute(sa.update(zones).where(zones.c.zone_id == zid).values(dropped_at=utcnow() - dt.timedelta(hours=1)))
        await uow.commit()
    return zid


async def tombstones_of(sync, zid: uuid.UUID) -> list[str]:
    async with sync.app.db.read() as conn:
        return sorted((await conn.execute(sa.select(records.c.record_id).where(records.c.zone_id == zid, records.c.deleted))).scalars())


async def zone_left(sync, zid: uuid.UUID) -> tuple[bool, int]:
    """Whether the zone's row is still there, and how many records it has."""
    async with sync.app.db.read() as conn:
        row = (await conn.execute(sa.select(zones.c.zone_id).where(zones.c.zone_id == zid))).first()
        count = (await conn.execute(sa.select(sa.func.count()).select_from(records).where(records.c.zone_id == zid))).scalar_one()
    return row is not None, int(count)


# --- 1. the event reaches the services ------------------------------------------------------------


async def test_a_hold_and_its_release_reach_the_locators_and_syncs_legal_holds_tables(
    desk, held, bystander, locator, sync, lifecycle
):
    await desk.known_to_lifecycle(held.account_id)
    account = uuid.UUID(held.account_id)
    assert account not in await desk.held_in(locator)
    assert account not in await desk.held_in(sync)

    await desk.place(held.account_id, "preservation request, ref 2025/301")
    assert await desk.lifecycle_held(held.account_id)
    await desk.reaches(locator, held.account_id, held=True, service="the locator")
    await desk.reaches(sync, held.account_id, held=True, service="sync")
    for running in (locator, sync):
        rows = await desk.rows_in(running, held.account_id)
        assert len(rows) == 1 and rows[0].held and rows[0].changed_at is not None
    # Only the held account: the other one is in neither table.
    assert uuid.UUID(bystander.account_id) not in await desk.held_in(locator)
    assert uuid.UUID(bystander.account_id) not in await desk.held_in(sync)

    # Placed again (a new reason), then released once: the hold is lifted everywhere.
    await desk.place(held.account_id, "preservation request, ref 2025/301, extended")
    await desk.release(held.account_id, "preservation period over")
    assert not await desk.lifecycle_held(held.account_id)
    await desk.reaches(locator, held.account_id, held=False, service="the locator")
    await desk.reaches(sync, held.account_id, held=False, service="sync")
    for running in (locator, sync):
        (row,) = await desk.rows_in(running, held.account_id)
        assert not row.held  # kept as released, so that a late "held" event cannot bring it back


async def test_a_member_cannot_place_a_hold_and_nothing_reaches_the_services(
    desk, held, bystander, locator, sync
):
    """Only moderators hold accounts: a member's call is refused and no service learns of a hold."""
    await desk.known_to_lifecycle(bystander.account_id)
    await expect_error(
        held.client.moderation.hold(bystander.account_id, held=True, reason="I want to keep their data"),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="NOT_A_MODERATOR",
    )
    assert not await desk.lifecycle_held(bystander.account_id)
    assert uuid.UUID(bystander.account_id) not in await desk.held_in(locator)
    assert uuid.UUID(bystander.account_id) not in await desk.held_in(sync)


async def hold_events(infra, account_id: str, at_least: int) -> list[tuple[uuid.UUID, events_pb2.LegalHoldChanged]]:
    """The account's `account.hold_changed` events in the stream, in the stream's order."""
    delivered = await read_stream(
        infra.nats.url, event_filter(EVENT_TYPE), lambda envelope: envelope.account_id == account_id,
        at_least=at_least, timeout=HOLD_WAIT, what=f"{at_least} hold events of the account",
    )
    found: list[tuple[uuid.UUID, events_pb2.LegalHoldChanged]] = []
    for item in delivered:
        changed = events_pb2.LegalHoldChanged()
        item.envelope.payload.Unpack(changed)
        assert changed.account_id == account_id
        found.append((uuid.UUID(item.envelope.event_id), changed))
    return found


async def all_applied(running, consumer: str, event_ids: set[uuid.UUID]) -> None:
    """Waits until the service's consumer has applied every one of these events."""
    table = running.app.db.processed_events

    async def done() -> bool:
        async with running.app.db.read() as conn:
            applied = set(
                (
                    await conn.execute(sa.select(table.c.event_id).where(table.c.consumer == consumer, table.c.event_id.in_(event_ids)))
                ).scalars()
            )
        return applied == event_ids

    await eventually(done, timeout=HOLD_WAIT, what=f"{consumer} to apply {len(event_ids)} hold events")


async def test_quick_holds_and_releases_settle_on_the_last_one_in_every_service(
    desk, held, locator, sync, lifecycle, infra
):
    """Placed, released, placed, released, placed in quick succession: once every one of the
    five events has been applied, both services hold the account; one more release, applied,
    and neither does. The lifecycle announces them in the order they were made."""
    await desk.known_to_lifecycle(held.account_id)
    wanted = [True, False, True, False, True]
    for i, state in enumerate(wanted):
        if state:
            await desk.place(held.account_id, f"court order 9/2025, step {i}")
        else:
            await desk.release(held.account_id, f"court order 9/2025 suspended, step {i}")
    assert await desk.lifecycle_held(held.account_id)
    events = await hold_events(infra, held.account_id, len(wanted))
    assert [changed.held for _, changed in events] == wanted
    ids = {event_id for event_id, _ in events}
    await all_applied(locator, "locator-legal-holds", ids)
    await all_applied(sync, "sync-legal-holds", ids)
    assert uuid.UUID(held.account_id) in await desk.held_in(locator)
    assert uuid.UUID(held.account_id) in await desk.held_in(sync)

    await desk.release(held.account_id, "court order 9/2025 lifted")
    events = await hold_events(infra, held.account_id, len(wanted) + 1)
    assert [changed.held for _, changed in events] == [*wanted, False]
    ids = {event_id for event_id, _ in events}
    await all_applied(locator, "locator-legal-holds", ids)
    await all_applied(sync, "sync-legal-holds", ids)
    assert uuid.UUID(held.account_id) not in await desk.held_in(locator)
    assert uuid.UUID(held.account_id) not in await desk.held_in(sync)


# --- 2. the locator's retention --------------------------------------------------------------------


async def test_the_locators_retention_keeps_a_held_accounts_history_until_the_release(
    desk, held, bystander, locator, lifecycle
):
    assert locator.app.settings.retention == dt.timedelta(days=7)
    await desk.known_to_lifecycle(held.account_id)
    held_key = await registered_device(locator, held, f"phone-{uuid.uuid4().hex[:6]}")
    other_key = await registered_device(locator, bystander, f"phone-{uuid.uuid4().hex[:6]}")
    now = utcnow()
    recent = [now - dt.timedelta(hours=1), now - dt.timedelta(days=6)]
    old = [now - dt.timedelta(days=7, minutes=10), now - dt.timedelta(days=20), now - dt.timedelta(days=120)]
    await insert_points(locator, held_key, recent + old)
    await insert_points(locator, other_key, recent + old)

    await desk.place(held.account_id, "stalking case: police request 77/2025 for the location history")
    await desk.reaches(locator, held.account_id, held=True, service="the locator")

    # One run: the other account's old positions go, the held account's all stay.
    assert await locator.app.devices.prune() >= len(old)
    assert await stored_times(locator, other_key) == set(recent)
    assert await stored_times(locator, held_key) == set(recent) | set(old)
    # Again: still nothing of the held account goes.
    await locator.app.devices.prune()
    assert await stored_times(locator, held_key) == set(recent) | set(old)

    await desk.release(held.account_id, "police request answered")
    await desk.reaches(locator, held.account_id, held=False, service="the locator")
    assert await locator.app.devices.prune() >= len(old)
    assert await stored_times(locator, held_key) == set(recent)
    assert await stored_times(locator, other_key) == set(recent)


# --- 3. sync's clean-up ----------------------------------------------------------------------------


async def test_syncs_clean_up_keeps_a_held_accounts_tombstones_and_deleted_zones_until_the_release(
    desk, held, bystander, sync, lifecycle
):
    await desk.known_to_lifecycle(held.account_id)
    held_zone, held_token = await with_old_tombstone(sync, held, "contacts")
    other_zone, other_token = await with_old_tombstone(sync, bystander, "contacts")
    held_dropped = await with_dropped_zone(sync, held, "old-notes")
    other_dropped = await with_dropped_zone(sync, bystander, "old-notes")
    assert await tombstones_of(sync, held_zone) == ["gone"] == await tombstones_of(sync, other_zone)
    assert await zone_left(sync, held_dropped) == (True, 3) == await zone_left(sync, other_dropped)

    await desk.place(held.account_id, "fraud inquiry 12/2025: preserve the synced contacts")
    await desk.reaches(sync, held.account_id, held=True, service="sync")

    # One run of each: the other account's tombstone and deleted zone go, the held account's stay.
    assert await sync.app.cleanup.prune_tombstones() >= 1
    assert await tombstones_of(sync, other_zone) == []
    assert await tombstones_of(sync, held_zone) == ["gone"]
    assert await sync.app.cleanup.drop_dropped() >= 3
    assert await zone_left(sync, other_dropped) == (False, 0)
    assert await zone_left(sync, held_dropped) == (True, 3)
    # What the devices see: the other account's token from before the deletion has expired, the
    # held account's still shows the deletion (its horizon did not move).
    await expect_error(
        bystander.client.sync.fetch("contacts", other_token), grpc.StatusCode.FAILED_PRECONDITION, reason="CHANGE_TOKEN_EXPIRED"
    )
    changes, _ = await held.client.sync.fetch_all("contacts", held_token)
    assert [(r.record_id, r.deleted) for r in changes] == [("gone", True)]
    # The live records of both are untouched.
    assert [r.record_id for r in await held.client.sync.get("contacts", ["keep"])] == ["keep"]
    assert [r.record_id for r in await bystander.client.sync.get("contacts", ["keep"])] == ["keep"]

    await desk.release(held.account_id, "fraud inquiry closed")
    await desk.reaches(sync, held.account_id, held=False, service="sync")
    assert await sync.app.cleanup.prune_tombstones() >= 1
    assert await tombstones_of(sync, held_zone) == []
    assert await sync.app.cleanup.drop_dropped() >= 3
    assert await zone_left(sync, held_dropped) == (False, 0)
    await expect_error(
        held.client.sync.fetch("contacts", held_token), grpc.StatusCode.FAILED_PRECONDITION, reason="CHANGE_TOKEN_EXPIRED"
    )
    assert [r.record_id for r in await held.client.sync.get("contacts", ["keep"])] == ["keep"]


# --- 4. the user's own deletions while held -------------------------------------------------------


async def test_while_held_a_device_cannot_be_removed_and_a_deleted_zone_keeps_its_records(
    desk, held, locator, sync, tmp_path
):
    await desk.known_to_lifecycle(held.account_id)
    agent = DeviceAgent(held.client)
    await agent.register("held-phone", name="phone", model="Pixel", platform="android")
    await held.client.sync.push("notes", [save("n1", b"note one")])
    zid = await zone_id(sync, held.account_id, "notes")
    await desk.place(held.account_id, "preservation request, ref 2025/302")
    await desk.reaches(locator, held.account_id, held=True, service="the locator")
    await desk.reaches(sync, held.account_id, held=True, service="sync")
    try:
        with pytest.raises(CumuloRpcError) as refused:
            await held.client.devices.remove("held-phone")
        assert refused.value.reason == "LEGAL_HOLD"
        await held.client.sync.delete_zone("notes")  # the user sees it gone ...
        assert "notes" not in [z.name for z in await held.client.sync.zones()]
        assert await zone_left(sync, zid) == (True, 1)  # ... and it is kept for the hold
        await sync.app.cleanup.drop_dropped()
        assert await zone_left(sync, zid) == (True, 1)
    finally:
        await desk.release(held.account_id, "preservation period over")
    await desk.reaches(sync, held.account_id, held=False, service="sync")
    await sync.app.cleanup.drop_dropped()
    assert await zone_left(sync, zid) == (False, 0)
    await desk.reaches(locator, held.account_id, held=False, service="the locator")
    await held.client.devices.remove("held-phone")


# --- 5. the evidence bundle carries sync's and the locator's data -------------------------------


async def test_the_evidence_bundle_has_the_held_accounts_records_devices_and_location_history(
    desk, moderator, held, locator, sync, moderation
):
    import base64
    import hashlib
    import json

    from cumulo_platform.storage import Storage

    await desk.known_to_lifecycle(held.account_id)
    key = await registered_device(locator, held, f"phone-{uuid.uuid4().hex[:6]}")
    now = utcnow()
    await insert_points(locator, key, [now - dt.timedelta(hours=h) for h in (1, 2, 3)])
    await held.client.sync.push("contacts", [save("c1", b"Ann +86 138 0000 0000"), save("c2", b"Bo")])
    await desk.place(held.account_id, "police request 81/2025: preserve everything")
    evidence = await moderator.moderation.export(held.account_id, "police request 81/2025")

    platform = moderation.app.settings.platform
    storage = Storage.of(platform, platform.preservation_bucket)
    await storage.open()
    try:
        manifest = json.loads(await storage.read_small(evidence.manifest_key, 1 << 24) or b"{}")
        parts = {part["key"]: part for part in manifest["parts"]}
        lines: dict[str, list[dict]] = {}
        for name in ("sync.jsonl", "locator.jsonl"):
            data = await storage.read_small(evidence.prefix + name, 1 << 24)
            assert data is not None
            part = parts[evidence.prefix + name]
            assert (len(data), hashlib.sha256(data).hexdigest()) == (part["size"], part["sha256"])
            lines[name] = [json.loads(line) for line in data.decode().splitlines()]
            assert part["items"] == len(lines[name])
    finally:
        await storage.close()
    synced = {row["record_id"]: base64.b64decode(row["payload"]) for row in lines["sync.jsonl"] if row["kind"] == "record"}
    assert synced == {"c1": b"Ann +86 138 0000 0000", "c2": b"Bo"}
    assert [row["name"] for row in lines["sync.jsonl"] if row["kind"] == "zone"] == ["contacts"]
    kinds = [row["kind"] for row in lines["locator.jsonl"]]
    assert kinds.count("device") == 1 and kinds.count("location") == 3
    assert all(row["device_key"] == str(key) for row in lines["locator.jsonl"] if row["kind"] == "location")
    assert (await moderator.moderation.verify(evidence.export_id)).intact
