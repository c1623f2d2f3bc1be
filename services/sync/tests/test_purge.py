"""The sync service's part in the lifecycle's deletion saga: every zone, record, tombstone,
usage row, backup, backup entry and released file of the account goes, other accounts keep
theirs, and a second run is harmless; end to end, an account left frozen is purged by the
real saga with "sync" among its participants."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import uuid
from typing import Any

import grpc
import sqlalchemy as sa

from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.testing import Ages, eventually, expect_error
from cumulo_lifecycle.adapters.tables import accounts, purge_participants, tombstones
from cumulo_sync.adapters.tables import backup_entries, backups, records, released_files, usage, zones


def save(record_id: str, payload: bytes, tag: str = "") -> sync_pb2.RecordSave:
    return sync_pb2.RecordSave(record_id=record_id, record_type="contact", payload=payload, change_tag=tag)


async def fill(device: Any, tmp_path: pathlib.Path, label: str) -> None:
    """Zones with records and a tombstone, two backups of a device."""
    c = device.client
    made = await c.sync.push("contacts", [save("ann", b'{"name": "Ann"}'), save("bob", b'{"name": "Bob"}')], device_id=label)
    await c.sync.push("contacts", deletes=[sync_pb2.RecordDelete(record_id="bob", change_tag=made.results[1].change_tag)])
    await c.sync.push("notes", [save(f"n{i}", os.urandom(100)) for i in range(5)], device_id=label)
    root = tmp_path / f"{label}-files"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"first")
    (root / "sub" / "b.bin").write_bytes(os.urandom(3000))
    await c.backups.create(root, device_id=f"{label}-1", device_name=label)
    (root / "a.txt").write_bytes(b"second")
    await c.backups.create(root, device_id=f"{label}-1", device_name=label)


async def add_released_file(sync: Any, account_id: str) -> None:
    """What a pruned backup leaves: a file waiting for the release job (written directly: the
    purge must clear such rows whatever the job has done)."""
    async with sync.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(released_files).values(
                account_id=uuid.UUID(account_id), file_id=uuid.uuid4(), released_at=dt.datetime.now(dt.UTC)
            )
        )
        await uow.commit()


async def zone_ids(sync: Any, account_id: str) -> list[uuid.UUID]:
    async with sync.app.db.read() as conn:
        return list((await conn.execute(sa.select(zones.c.zone_id).where(zones.c.account_id == uuid.UUID(account_id)))).scalars())


async def counts(sync: Any, account_id: str, zone_list: list[uuid.UUID]) -> dict[str, int]:
    """The rows of the account in every sync table (records through the zones captured before)."""
    account = uuid.UUID(account_id)

    def count(table: sa.Table, condition: Any) -> Any:
        return sa.select(sa.func.count()).select_from(table).where(condition)

    queries = {
        "zones": count(zones, zones.c.account_id == account),
        "records": count(records, records.c.zone_id.in_(zone_list)),
        "tombstones": count(records, sa.and_(records.c.zone_id.in_(zone_list), records.c.deleted)),
        "usage": count(usage, usage.c.account_id == account),
        "backups": count(backups, backups.c.account_id == account),
        "backup_entries": count(backup_entries, backup_entries.c.account_id == account),
        "released_files": count(released_files, released_files.c.account_id == account),
    }
    async with sync.app.db.read() as conn:
        return {name: (await conn.execute(query)).scalar_one() for name, query in queries.items()}


NOTHING = {"zones": 0, "records": 0, "tombstones": 0, "usage": 0, "backups": 0, "backup_entries": 0, "released_files": 0}


async def test_purging_an_account_leaves_no_row_of_it_and_can_run_again(phone, stranger, sync, tmp_path) -> None:
    await fill(phone, tmp_path, "phone")
    await fill(stranger, tmp_path, "stranger")
    await add_released_file(sync, phone.account_id)
    await add_released_file(sync, stranger.account_id)
    mine, theirs = await zone_ids(sync, phone.account_id), await zone_ids(sync, stranger.account_id)
    assert len(mine) == 2
    before = await counts(sync, phone.account_id, mine)
    assert before == {"zones": 2, "records": 7, "tombstones": 1, "usage": 1, "backups": 2, "backup_entries": 4, "released_files": 1}
    theirs_before = await counts(sync, stranger.account_id, theirs)
    assert theirs_before == before

    items = await sync.app.purge.account(uuid.UUID(phone.account_id))
    assert items > 0
    assert await counts(sync, phone.account_id, mine) == NOTHING
    # Running it again is harmless; the other account keeps everything.
    assert await sync.app.purge.account(uuid.UUID(phone.account_id)) == 0
    assert await counts(sync, phone.account_id, mine) == NOTHING
    assert await counts(sync, stranger.account_id, theirs) == theirs_before
    assert [z.name for z in await stranger.client.sync.zones()] == ["contacts", "notes"]
    assert len(await stranger.client.backups.list()) == 2
    # What the account's devices see now (the account itself is not deleted by this alone).
    assert await phone.client.sync.zones() == []
    assert (await phone.client.sync.usage()).used == 0
    assert await phone.client.backups.list() == []
    assert await sync.app.purge.account(uuid.uuid4()) == 0  # an account sync never saw


async def test_an_account_left_frozen_is_purged_by_the_saga_with_sync_among_the_participants(
    phone, laptop, sync, auth, blob, lifecycle, infra, tmp_path
) -> None:
    await fill(phone, tmp_path, "phone")
    await laptop.client.sync.push("settings", [save("wifi", b"home")], device_id="laptop")
    await add_released_file(sync, phone.account_id)
    mine = await zone_ids(sync, phone.account_id)
    assert len(mine) == 3
    assert (await counts(sync, phone.account_id, mine))["backups"] == 2
    account = uuid.UUID(phone.account_id)

    async def known() -> Any:
        async with lifecycle.app.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.account_id == account))).first()
        return row is not None and row.contacts_wanted_at is None  # auth's answer on its contacts recorded

    await eventually(known, what="the lifecycle to know the account")
    ages = Ages(lifecycle, (auth, blob, sync), infra.nats.url)  # sync's access events land first too
    await ages.freeze(phone.account_id)
    await ages.grace_over(phone.account_id)
    await lifecycle.app.cases.sweeper.sweep()

    async def deleted() -> Any:
        async with lifecycle.app.db.read() as conn:
            return (await conn.execute(sa.select(tombstones).where(tombstones.c.account_id == account))).first()

    tomb = await eventually(deleted, timeout=30, what="the deletion saga to finish")
    assert "sync" in tomb.participants
    async with lifecycle.app.db.read() as conn:
        parts = {
            p.service: p
            for p in (await conn.execute(sa.select(purge_participants).where(purge_participants.c.account_id == account))).all()
        }
    assert "sync" in parts and parts["sync"].completed_at is not None
    assert parts["sync"].items_deleted > 0
    assert await counts(sync, phone.account_id, mine) == NOTHING
    # Its devices are refused from now on (once sync has heard of the deletion).
    await eventually(
        lambda: _async(sync.app.states.state_of(phone.account_id) in ("deleting", "deleted")),
        what="the sync service to learn that the account is deleted",
    )
    await expect_error(phone.client.sync.zones(), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")
    await expect_error(laptop.client.backups.list(), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")
    assert await counts(sync, phone.account_id, mine) == NOTHING


async def _async(value: Any) -> Any:
    return value
