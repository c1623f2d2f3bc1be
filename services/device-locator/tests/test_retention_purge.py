"""What the locator forgets: positions older than the retention (P7D) go with prune(), in
batches, the rest stays; a held account's stay, and its devices cannot be removed, until the
hold is released; an account's purge leaves no device, position, command or
guardian link of it, can run again, spares other accounts; and end to end, an account
left frozen is purged by the lifecycle's real saga with "locator" among the participants."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import grpc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_devstack.testing import PASSWORD, Ages, eventually, expect_error
from cumulo_lifecycle.adapters.tables import accounts, purge_participants, tombstones
from cumulo_locator.adapters.tables import commands, devices, guardians, locations
from cumulo_locator.devices import Devices
from cumulo_platform.account_states import AccountStates
from cumulo_platform.db import Database, create_engine
from cumulo_platform.legal_holds import LegalHolds
from cumulo_sdk.devices import DeviceAgent

from .conftest import point


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


async def device_key(locator: Any, account_id: str, device_id: str) -> uuid.UUID:
    async with locator.app.db.read() as conn:
        return (
            await conn.execute(
                sa.select(devices.c.device_key).where(devices.c.account_id == uuid.UUID(account_id), devices.c.device_id == device_id)
            )
        ).scalar_one()


async def insert_points(locator: Any, key: uuid.UUID, times: list[dt.datetime]) -> None:
    """Positions written straight into the table: reports refuse points older than the
    retention, which is what these stand for (kept from before, the clock moved on)."""
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


async def stored_times(locator: Any, key: uuid.UUID) -> set[dt.datetime]:
    async with locator.app.db.read() as conn:
        return set((await conn.execute(sa.select(locations.c.measured_at).where(locations.c.device_key == key))).scalars())


# --- retention ----------------------------------------------------------------------------


async def test_prune_deletes_the_positions_older_than_the_retention_and_keeps_the_rest(owner, locator) -> None:
    assert locator.app.settings.retention == dt.timedelta(days=7)
    now = utcnow()
    recent = [now, now - dt.timedelta(days=1), now - dt.timedelta(days=6, hours=23)]
    reported = await owner.agent.report(owner.device_id, [point(31.2 + i / 100, 121.4, at=at) for i, at in enumerate(recent)])
    assert reported.stored == 3
    key = await device_key(locator, owner.account_id, owner.device_id)
    old = [now - dt.timedelta(days=7, minutes=5), now - dt.timedelta(days=10), now - dt.timedelta(days=90)]
    await insert_points(locator, key, old)
    assert await stored_times(locator, key) == set(recent) | set(old)

    assert await locator.app.devices.prune() >= len(old)
    assert await stored_times(locator, key) == set(recent)
    history = await owner.client.devices.history(owner.device_id)
    assert [h.measured_at.ToDatetime(dt.UTC) for h in history] == recent  # newest first
    device = await owner.client.devices.get(owner.device_id)
    assert device.last_location.measured_at.ToDatetime(dt.UTC) == now  # the device's position stays
    # Again: nothing of this device left to prune.
    await locator.app.devices.prune()
    assert await stored_times(locator, key) == set(recent)


async def test_with_the_clock_a_week_on_the_positions_reported_today_are_pruned(owner, stranger, locator) -> None:
    await owner.agent.report(owner.device_id, [point(ago=dt.timedelta(minutes=m)) for m in (1, 2, 3)])
    their_agent = DeviceAgent(stranger)
    await their_agent.register("their-phone", name="theirs")
    await their_agent.report("their-phone", [point(ago=dt.timedelta(minutes=1))])
    assert len(await owner.client.devices.history(owner.device_id)) == 3
    before = locator.clock.offset
    locator.clock.offset = before + locator.app.settings.retention + dt.timedelta(minutes=5)
    try:
        assert await locator.app.devices.prune() >= 4
    finally:
        locator.clock.offset = before
    assert await owner.client.devices.history(owner.device_id) == []
    assert await stranger.devices.history("their-phone") == []
    # A report from now on is kept.
    assert (await owner.agent.report(owner.device_id, [point()])).stored == 1
    assert len(await owner.client.devices.history(owner.device_id)) == 1


async def set_hold(locator: Any, account_id: str, *, held: bool) -> None:
    """The hold as the locator learns it from the lifecycle's `account.hold_changed`."""
    table = locator.app.holds.table
    statement = pg_insert(table).values(account_id=uuid.UUID(account_id), held=held, changed_at=dt.datetime.now(dt.UTC))
    async with locator.app.db.unit_of_work() as uow:
        await uow.execute(statement.on_conflict_do_update(index_elements=[table.c.account_id], set_={"held": held}))
        await uow.commit()


async def test_a_held_accounts_positions_and_devices_stay_until_the_release(owner, locator) -> None:
    key = await device_key(locator, owner.account_id, owner.device_id)
    old = [utcnow() - dt.timedelta(days=30)]
    await insert_points(locator, key, old)
    await set_hold(locator, owner.account_id, held=True)
    try:
        assert await locator.app.holds.held(uuid.UUID(owner.account_id))
        await locator.app.devices.prune()
        assert await stored_times(locator, key) == set(old)
        await expect_error(owner.client.devices.remove(owner.device_id, password=PASSWORD), grpc.StatusCode.FAILED_PRECONDITION, "LEGAL_HOLD")
    finally:
        await set_hold(locator, owner.account_id, held=False)
    await locator.app.devices.prune()
    assert await stored_times(locator, key) == set()
    await owner.client.devices.remove(owner.device_id, password=PASSWORD)
    assert await owner.client.devices.list() == []


async def test_prune_deletes_in_batches_of_prune_batch_rows(owner, locator) -> None:
    """A Devices of its own with the smallest batch the settings allow (100), on an engine of
    its own whose statements the test counts: 250 old rows go in three DELETEs of at most 100."""
    settings = dataclasses.replace(locator.app.settings, prune_batch=100)
    engine = create_engine(settings.platform.database_url, pool_size=2)
    deletes: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM LOCATOR.LOCATIONS"):
            deletes.append(cursor.rowcount)

    sa.event.listen(engine.sync_engine, "after_cursor_execute", count)
    try:
        db = Database(engine, schema="locator", producer="locator-test")
        pruner = Devices(db, settings, locator.clock, LegalHolds(db), AccountStates(db, None))
        key = await device_key(locator, owner.account_id, owner.device_id)
        now = utcnow()
        old = [now - dt.timedelta(days=8, seconds=i) for i in range(250)]
        recent = [now - dt.timedelta(days=6, seconds=i) for i in range(150)]
        await insert_points(locator, key, old + recent)
        assert len(await stored_times(locator, key)) == 400

        deleted = await pruner.prune()
    finally:
        await engine.dispose()
    assert deleted >= 250
    assert sum(deletes) == deleted
    assert len(deletes) >= 3 and all(0 <= n <= 100 for n in deletes), deletes
    assert deletes[-1] < 100  # the last, short batch ends the run
    assert await stored_times(locator, key) == set(recent)


# --- purge ------------------------------------------------------------------------------------


async def fill(locator: Any, client: Any, agent: DeviceAgent, account_id: str, device_ids: list[str]) -> None:
    """Devices with positions (recent and old) and commands in every state but expired, and
    guardian links both ways."""
    for device_id in device_ids:
        await agent.register(device_id, name=device_id)
        await agent.report(device_id, [point(31 + i / 10, 121, ago=dt.timedelta(minutes=i)) for i in range(5)])
        await insert_points(locator, await device_key(locator, account_id, device_id), [utcnow() - dt.timedelta(days=9)])
        ring = await client.devices.ring(device_id, 5)
        await client.devices.lost_mode(device_id, message="Lost", phone="+86 138 0013 8000")
        await client.devices.locate(device_id)
        await agent.poll(device_id)
        await agent.ack(device_id, ring.command_id)
    async with locator.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(guardians),
            [
                {"minor_account_id": uuid.UUID(account_id), "guardian_account_id": uuid.uuid4()},
                {"minor_account_id": uuid.uuid4(), "guardian_account_id": uuid.UUID(account_id)},
            ],
        )
        await uow.commit()


async def device_keys(locator: Any, account_id: str) -> list[uuid.UUID]:
    async with locator.app.db.read() as conn:
        return list((await conn.execute(sa.select(devices.c.device_key).where(devices.c.account_id == uuid.UUID(account_id)))).scalars())


async def counts(locator: Any, account_id: str, keys: list[uuid.UUID]) -> dict[str, int]:
    """The rows of the account in every locator table (positions through the device keys
    captured before, commands by account and by device)."""
    account = uuid.UUID(account_id)

    def count(table: sa.Table, condition: Any) -> Any:
        return sa.select(sa.func.count()).select_from(table).where(condition)

    queries = {
        "devices": count(devices, devices.c.account_id == account),
        "locations": count(locations, locations.c.device_key.in_(keys)),
        "commands": count(commands, sa.or_(commands.c.account_id == account, commands.c.device_key.in_(keys))),
        "guardians": count(guardians, sa.or_(guardians.c.minor_account_id == account, guardians.c.guardian_account_id == account)),
    }
    async with locator.app.db.read() as conn:
        return {name: (await conn.execute(query)).scalar_one() for name, query in queries.items()}


NOTHING = {"devices": 0, "locations": 0, "commands": 0, "guardians": 0}


async def test_purging_an_account_leaves_no_row_of_it_and_can_run_again(owner, stranger, locator) -> None:
    await fill(locator, owner.client, owner.agent, owner.account_id, [owner.device_id, "tablet"])
    stranger_id = stranger.store.tokens.account_id
    await fill(locator, stranger, DeviceAgent(stranger), stranger_id, ["their-phone"])
    mine, theirs = await device_keys(locator, owner.account_id), await device_keys(locator, stranger_id)
    assert len(mine) == 2 and len(theirs) == 1
    before = await counts(locator, owner.account_id, mine)
    assert before == {"devices": 2, "locations": 12, "commands": 6, "guardians": 2}
    theirs_before = await counts(locator, stranger_id, theirs)
    assert theirs_before == {"devices": 1, "locations": 6, "commands": 3, "guardians": 2}

    items = await locator.app.devices.purge(uuid.UUID(owner.account_id))
    assert items == before["devices"] + before["locations"] + before["commands"]
    assert await counts(locator, owner.account_id, mine) == NOTHING
    # Running it again is harmless; the other account keeps everything.
    assert await locator.app.devices.purge(uuid.UUID(owner.account_id)) == 0
    assert await counts(locator, owner.account_id, mine) == NOTHING
    assert await counts(locator, stranger_id, theirs) == theirs_before
    assert [d.device_id for d in await stranger.devices.list()] == ["their-phone"]
    assert len(await stranger.devices.history("their-phone")) == 6
    assert len(await stranger.devices.commands("their-phone")) == 3
    # What the account's own apps see now (the account itself is not deleted by this alone).
    assert await owner.client.devices.list() == []
    await expect_error(owner.client.devices.history(owner.device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
    assert await locator.app.devices.purge(uuid.uuid4()) == 0  # an account the locator never saw


async def test_an_account_left_frozen_is_purged_by_the_saga_with_locator_among_the_participants(
    owner, locator, auth, blob, sync, lifecycle, infra
) -> None:
    await fill(locator, owner.client, owner.agent, owner.account_id, [owner.device_id])
    mine = await device_keys(locator, owner.account_id)
    assert (await counts(locator, owner.account_id, mine))["locations"] == 6
    account = uuid.UUID(owner.account_id)

    async def known() -> Any:
        async with lifecycle.app.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.account_id == account))).first()
        return row is not None and row.contacts_wanted_at is None  # auth's answer on its contacts recorded

    await eventually(known, what="the lifecycle to know the account")
    ages = Ages(lifecycle, (auth, blob, sync, locator), infra.nats.url)  # the locator's access events land first too
    await ages.freeze(owner.account_id)
    await ages.grace_over(owner.account_id)
    await lifecycle.app.cases.sweeper.sweep()

    async def deleted() -> Any:
        async with lifecycle.app.db.read() as conn:
            return (await conn.execute(sa.select(tombstones).where(tombstones.c.account_id == account))).first()

    tomb = await eventually(deleted, timeout=30, what="the deletion saga to finish")
    assert "locator" in tomb.participants
    async with lifecycle.app.db.read() as conn:
        parts = {
            p.service: p
            for p in (await conn.execute(sa.select(purge_participants).where(purge_participants.c.account_id == account))).all()
        }
    assert "locator" in parts and parts["locator"].completed_at is not None
    assert parts["locator"].items_deleted == 1 + 6 + 3  # the device, its positions, its commands
    assert await counts(locator, owner.account_id, mine) == NOTHING

    async def told() -> bool:
        return locator.app.states.state_of(owner.account_id) in ("deleting", "deleted")

    await eventually(told, what="the locator to learn that the account is deleted")
    await expect_error(owner.client.devices.list(), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")
    await expect_error(owner.agent.report(owner.device_id, [point()]), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")
    assert await counts(locator, owner.account_id, mine) == NOTHING
