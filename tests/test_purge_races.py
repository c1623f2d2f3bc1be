"""Purge races: once an account's purge has begun, sync and the device locator write nothing new
of it, and what was being written at that moment is purged with the rest.

Every write of an account holds the account's lock shared until it commits, and reads the
account's state from the table (not a replica's memory, which learns of a purge up to a second
late); the purge's mark takes the lock exclusively (cumulo_platform.account_states). So:
- a write in flight when the purge begins finishes first, and the purge deletes it too;
- a write that passed a replica's gate before the replica heard of the purge is refused in its
  own transaction (ACCOUNT_DELETED);
- the sync purge's wait for zones another replica is tidying is bounded: it asks to run again
  later (PurgeNotYet) instead of looping inside the event's transaction.
The tests hold real row locks to put the writes where the races are; nothing waits on time."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2

from cumulo.locator.v1 import locator_pb2
from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.testing import eventually
from cumulo_locator.adapters.tables import devices, locations
from cumulo_platform.account_states import AccountDeleted
from cumulo_platform.purge import PurgeNotYet, refuse
from cumulo_sdk.devices import DeviceAgent
from cumulo_sync import cleanup
from cumulo_sync.adapters.tables import records, usage, zones
from cumulo_sync.pushes import Operation


def save(record_id: str, payload: bytes = b"{}") -> sync_pb2.RecordSave:
    return sync_pb2.RecordSave(record_id=record_id, record_type="contact", payload=payload)


async def waiting(db: Any, query_part: str) -> int:
    """How many sessions of the database wait for a lock in a statement containing `query_part`."""
    async with db.read() as conn:
        return int(
            (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND position(:part in query) > 0"
                    ),
                    {"part": query_part},
                )
            ).scalar_one()
        )


async def until_waiting(db: Any, query_part: str, what: str) -> None:
    async def there() -> bool:
        return await waiting(db, query_part) > 0

    await eventually(there, timeout=30, what=what)


async def sync_rows(sync: Any, account: uuid.UUID) -> dict[str, int]:
    async with sync.app.db.read() as conn:
        zone_list = list((await conn.execute(sa.select(zones.c.zone_id).where(zones.c.account_id == account))).scalars())
        count = sa.select(sa.func.count()).select_from(records).where(records.c.zone_id.in_(zone_list))
        return {"zones": len(zone_list), "records": (await conn.execute(count)).scalar_one()}


async def test_a_push_in_flight_when_the_purge_begins_is_purged_with_the_rest(people, sync):
    person = await people.new("phone")
    bystander = await people.new("someone else")
    account = uuid.UUID(person.account_id)
    await person.client.sync.push("contacts", [save("ann")])
    db = sync.app.db
    async with db.unit_of_work() as blocker:
        # The push gets past the gate, takes the account's write lock and the zone, then waits
        # for its usage row, which this transaction holds.
        await blocker.execute(sa.select(usage).where(usage.c.account_id == account).with_for_update())
        push = asyncio.create_task(person.client.sync.push("notes", [save(f"n{i}") for i in range(3)]))
        await until_waiting(db, "sync.usage", "the push to wait for its usage row")
        # The purge begins: its mark waits for the push in flight.
        purge = asyncio.create_task(refuse(sync.app.states, account))
        await until_waiting(db, "pg_advisory_xact_lock(", "the purge's mark to wait for the write in flight")
        assert not purge.done()
        # Someone else is served meanwhile.
        assert (await bystander.client.sync.push("contacts", [save("bob")])).results[0].status == sync_pb2.PUSH_STATUS_SAVED
    # The blocker is gone (rolled back): the push commits, then the mark.
    assert len((await push).results) == 3  # acknowledged: it committed before the mark
    await purge
    assert await sync_rows(sync, account) != {"zones": 0, "records": 0}  # the push's records are there to purge
    await sync.app.purge.account(account, "cancellation")
    assert await sync_rows(sync, account) == {"zones": 0, "records": 0}
    with pytest.raises(AccountDeleted):
        await sync.app.pushes.push(account, "notes", [Operation("late", None, False, "contact", b"{}")], atomic=False, device="")
    assert await sync_rows(sync, account) == {"zones": 0, "records": 0}
    assert (await sync_rows(sync, uuid.UUID(bystander.account_id)))["records"] == 1


async def test_a_replica_that_has_not_heard_of_the_purge_refuses_the_write_in_its_transaction(people, sync, locator):
    """The in-memory gate is a replica's fast path; the table decides: a write reaching the
    stores after the mark (as on a replica whose memory lags) is refused, nothing written."""
    person = await people.new("phone")
    account = uuid.UUID(person.account_id)
    agent = DeviceAgent(person.client)
    await agent.register("phone-1", name="phone")
    await person.client.sync.push("contacts", [save("ann")])
    await refuse(sync.app.states, account)
    await refuse(locator.app.states, account)
    # Forget the purge in memory, as a replica that has not refreshed yet.
    sync.app.states._states.pop(str(account), None)
    locator.app.states._states.pop(str(account), None)

    with pytest.raises(AccountDeleted):
        await sync.app.pushes.push(account, "contacts", [Operation("bob", None, False, "contact", b"{}")], atomic=False, device="")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC))
    points = locator.app.devices.points([locator_pb2.Location(latitude=31.2, longitude=121.4, accuracy=10, measured_at=stamp, source=locator_pb2.LOCATION_SOURCE_GPS)])
    with pytest.raises(AccountDeleted):
        await locator.app.devices.report(account, "phone-1", points)
    with pytest.raises(AccountDeleted):
        await locator.app.devices.register(account, "phone-2", "new phone", "", "")
    async with locator.app.db.read() as conn:
        keys = list((await conn.execute(sa.select(devices.c.device_key).where(devices.c.account_id == account))).scalars())
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(locations).where(locations.c.device_key.in_(keys)))).scalar_one()
    assert (len(keys), stored) == (1, 0)  # the first phone (purged next), no position, no second phone
    assert (await sync_rows(sync, account))["records"] == 1  # bob never arrived


async def test_the_sync_purge_waiting_for_a_zone_held_elsewhere_asks_again_instead_of_looping(people, sync, monkeypatch):
    person = await people.new("phone")
    account = uuid.UUID(person.account_id)
    await person.client.sync.push("contacts", [save("ann"), save("bob")])
    monkeypatch.setattr(cleanup, "PURGE_PATIENCE", 0.5)
    await refuse(sync.app.states, account)
    async with sync.app.db.unit_of_work() as dropping:  # the user dropped the zone a moment ago
        await dropping.execute(sa.update(zones).where(zones.c.account_id == account).values(dropped_at=sa.func.now()))
        await dropping.commit()
    async with sync.app.db.unit_of_work() as other_replica:
        # Another replica's tidy-up of dropped zones holds it (the purge skips what is locked).
        await other_replica.execute(sa.select(zones).where(zones.c.account_id == account).with_for_update())
        with pytest.raises(PurgeNotYet):
            await sync.app.purge.account(account, "cancellation")
    await sync.app.purge.account(account, "cancellation")  # asked again later: it finishes
    assert await sync_rows(sync, account) == {"zones": 0, "records": 0}
