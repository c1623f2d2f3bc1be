"""Files no kept backup needs any more are released and deleted in blob by a job: not a file
another backup points to, not one a new backup uses again, not while the account is held
(the refused account waits, the others go on); a file the job is deleting cannot be used by a
new backup; a backup whose making stopped half-way is dropped, its files left alone."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import grpc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_devstack.testing import clock_moved, expect_error
from cumulo_sdk.files import sha256_of
from cumulo_sync.adapters.tables import backup_entries, backups, released_files

from .conftest import account_rows, entries, existing, folder_files, header, raw_create, read_tree, released_of, write_tree

PRECONDITION, NOT_FOUND = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND


async def test_the_newest_three_of_a_device_are_kept_and_unneeded_files_deleted(
    phone, laptop, sync, blob_internal, tmp_path
) -> None:
    assert sync.app.settings.backups_kept == 3
    # Another device of the account, backed up first: pruning the phone's leaves it alone.
    laptop_root = tmp_path / "laptop-files"
    laptop_files = write_tree(laptop_root, {"work.txt": b"quarterly report", "only-once.bin": os.urandom(5000)})
    laptop_backup = await laptop.client.backups.create(laptop_root, device_id="laptop-1", device_name="laptop")
    laptop_entries = await laptop.client.backups.entries(laptop_backup.backup.backup_id)

    root = tmp_path / "phone-files"
    write_tree(root, {"kept.txt": b"in every backup", "version.txt": b"v1", "first-only.bin": os.urandom(9000)})
    reports = [await phone.client.backups.create(root, device_id="phone-1", device_name="phone")]
    first_entries = {e.path: e for e in await phone.client.backups.entries(reports[0].backup.backup_id)}
    (root / "first-only.bin").unlink()
    for version in (b"v2", b"v3", b"v4"):
        (root / "version.txt").write_bytes(version)
        reports.append(await phone.client.backups.create(root, device_id="phone-1", device_name="phone"))
    ids = [r.backup.backup_id for r in reports]
    assert [r.pruned for r in reports] == [[], [], [], [ids[0]]]
    assert [b.backup_id for b in await phone.client.backups.list("phone-1")] == ids[:0:-1]
    await expect_error(phone.client.backups.get(ids[0]), NOT_FOUND, "BACKUP_NOT_FOUND")
    await expect_error(phone.client.backups.entries(ids[0]), NOT_FOUND, "BACKUP_NOT_FOUND")
    assert await account_rows(sync, backup_entries, phone.account_id) != []
    async with sync.app.db.read() as conn:
        orphans = (
            await conn.execute(sa.select(sa.func.count()).select_from(backup_entries).where(backup_entries.c.backup_id == uuid.UUID(ids[0])))
        ).scalar_one()
    assert orphans == 0

    # Released: the files only the pruned backup pointed to; deleted by the job, not before.
    only_first = {first_entries["first-only.bin"].file_id, first_entries["version.txt"].file_id}
    assert await released_of(sync, phone.account_id) == only_first
    assert await existing(blob_internal, phone.account_id, only_first) == only_first
    await sync.app.backups.release_files()
    assert await released_of(sync, phone.account_id) == set()
    assert await existing(blob_internal, phone.account_id, only_first) == set()
    kept = {e.sha256: e.file_id for r in reports[1:] for e in await phone.client.backups.entries(r.backup.backup_id)}
    assert await folder_files(phone.client, "phone") == kept
    assert first_entries["kept.txt"].file_id in kept.values()  # still needed: still there

    # The laptop's backup and its files are untouched.
    assert [b.backup_id for b in await laptop.client.backups.list("laptop-1")] == [laptop_backup.backup.backup_id]
    assert await existing(blob_internal, laptop.account_id, [e.file_id for e in laptop_entries]) == {e.file_id for e in laptop_entries}
    back = tmp_path / "laptop-back"
    await laptop.client.backups.restore(laptop_backup.backup.backup_id, back)
    assert read_tree(back) == laptop_files
    # And the oldest kept phone backup restores exactly.
    second = tmp_path / "second-back"
    await phone.client.backups.restore(ids[1], second)
    assert read_tree(second) == {"kept.txt": b"in every backup", "version.txt": b"v2"}


async def test_a_file_another_backup_points_to_is_not_released(phone, sync, blob_internal, tmp_path) -> None:
    root = tmp_path / "phone-files"
    write_tree(root, {"shared.bin": os.urandom(4000), "alone.bin": os.urandom(3000)})
    first = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    by_path = {e.path: e for e in await phone.client.backups.entries(first.backup.backup_id)}
    # A tablet's manifest points at one of the phone's files.
    shared = by_path["shared.bin"]
    tablet = await raw_create(phone.client, [header("tablet-1", "tablet"), entries(shared)])
    await phone.client.backups.delete(first.backup.backup_id)
    await expect_error(phone.client.backups.get(first.backup.backup_id), NOT_FOUND, "BACKUP_NOT_FOUND")
    assert await released_of(sync, phone.account_id) == {by_path["alone.bin"].file_id}
    await sync.app.backups.release_files()
    assert await existing(blob_internal, phone.account_id, [shared.file_id, by_path["alone.bin"].file_id]) == {shared.file_id}
    # Deleting the last backup that needs it releases it too.
    await phone.client.backups.delete(tablet.backup.backup_id)
    assert await released_of(sync, phone.account_id) == {shared.file_id}
    await sync.app.backups.release_files()
    assert await existing(blob_internal, phone.account_id, [shared.file_id]) == set()
    assert await folder_files(phone.client, "phone") == {}
    assert await phone.client.backups.list() == []


async def test_a_released_file_a_new_backup_uses_again_is_kept(phone, sync, blob_internal, tmp_path) -> None:
    root = tmp_path / "phone-files"
    write_tree(root, {"photo.jpg": os.urandom(8000)})
    first = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    (file_id,) = [e.file_id for e in await phone.client.backups.entries(first.backup.backup_id)]
    await phone.client.backups.delete(first.backup.backup_id)
    assert await released_of(sync, phone.account_id) == {file_id}
    # Before the job ran, the same content is backed up again: the file is reused, not sent.
    again = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    assert (again.uploaded_files, again.reused_files) == (0, 1)
    assert [e.file_id for e in await phone.client.backups.entries(again.backup.backup_id)] == [file_id]
    assert await released_of(sync, phone.account_id) == set()
    await sync.app.backups.release_files()
    assert await existing(blob_internal, phone.account_id, [file_id]) == {file_id}
    back = tmp_path / "back"
    await phone.client.backups.restore(again.backup.backup_id, back)
    assert read_tree(back) == read_tree(root)


async def blob_hold(blob: Any, account_id: str, *, held: bool) -> None:
    """The hold as the blob service learns it from the lifecycle's `account.hold_changed`
    (the way there: services/blob/tests/test_enforcement.py)."""
    await hold_in(blob.app.holds.table, blob.app.db, account_id, held=held)


async def test_a_legal_hold_keeps_released_files_until_it_is_lifted(phone, sync, blob, blob_internal, tmp_path) -> None:
    root = tmp_path / "evidence"
    write_tree(root, {"ledger.csv": os.urandom(6000)})
    report = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    (file_id,) = [e.file_id for e in await phone.client.backups.entries(report.backup.backup_id)]
    await blob_hold(blob, phone.account_id, held=True)
    try:
        await phone.client.backups.delete(report.backup.backup_id)
        assert await released_of(sync, phone.account_id) == {file_id}
        await sync.app.backups.release_files()
        await sync.app.backups.release_files()
        assert await released_of(sync, phone.account_id) == {file_id}
        assert await existing(blob_internal, phone.account_id, [file_id]) == {file_id}
        assert await folder_files(phone.client, "phone") == {sha256_of(root / "ledger.csv"): file_id}
    finally:
        await blob_hold(blob, phone.account_id, held=False)
    # A refused account waits (10 minutes) instead of holding up the others; then it is tried again.
    await sync.app.backups.release_files()
    assert await released_of(sync, phone.account_id) == {file_id}
    with clock_moved(sync.clock, dt.timedelta(minutes=11)):
        await sync.app.backups.release_files()
    assert await released_of(sync, phone.account_id) == set()
    assert await existing(blob_internal, phone.account_id, [file_id]) == set()
    assert await folder_files(phone.client, "phone") == {}


# --- backups made while the job runs ----------------------------------------------------------


async def store_unready(sync: Any, account_id: str, file_id: str, *, age: dt.timedelta) -> uuid.UUID:
    """A backup as CreateBackup leaves it while the blob service checks its files."""
    backup_id, account = uuid.uuid4(), uuid.UUID(account_id)
    async with sync.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(backups).values(
                backup_id=backup_id, account_id=account, device_id="phone-1", device_name="phone",
                created_at=sync.clock.now() - age, entry_count=1, total_size=1, ready=False,
            )
        )
        await uow.execute(
            sa.insert(backup_entries).values(
                backup_id=backup_id, path="a.bin", account_id=account, file_id=uuid.UUID(file_id), size=1, sha256="0" * 64
            )
        )
        await uow.commit()
    return backup_id


async def test_a_file_the_job_is_deleting_cannot_be_used_by_a_new_backup(phone, sync, tmp_path) -> None:
    root = tmp_path / "phone-files"
    write_tree(root, {"photo.jpg": os.urandom(5000)})
    first = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    (listed,) = await phone.client.backups.entries(first.backup.backup_id)
    await phone.client.backups.delete(first.backup.backup_id)
    # The job has taken the file and is waiting for the blob service's answer.
    async with sync.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.update(released_files)
            .where(released_files.c.account_id == uuid.UUID(phone.account_id))
            .values(deleting_since=sync.clock.now())
        )
        await uow.commit()
    await expect_error(
        raw_create(phone.client, [header("phone-1", "phone"), entries(listed)]),
        PRECONDITION, "BACKUP_FILE_MISSING", field="entries[0].file_id",
    )
    assert await account_rows(sync, backups, phone.account_id) == []
    assert await released_of(sync, phone.account_id) == {listed.file_id}


async def test_an_unready_backup_keeps_its_files_and_once_abandoned_goes_without_them(phone, sync, blob_internal, tmp_path) -> None:
    root = tmp_path / "phone-files"
    write_tree(root, {"photo.jpg": os.urandom(5000)})
    first = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    (listed,) = await phone.client.backups.entries(first.backup.backup_id)
    await phone.client.backups.delete(first.backup.backup_id)
    unready = await store_unready(sync, phone.account_id, listed.file_id, age=dt.timedelta(minutes=1))
    # Out of sight; its entry keeps the released file from the job.
    assert await phone.client.backups.list() == []
    await expect_error(phone.client.backups.get(str(unready)), NOT_FOUND, "BACKUP_NOT_FOUND")
    await sync.app.backups.release_files()
    assert await existing(blob_internal, phone.account_id, [listed.file_id]) == {listed.file_id}
    assert await released_of(sync, phone.account_id) == {listed.file_id}
    # Too young to be abandoned; an hour on, it is dropped, and the job deletes the file.
    await sync.app.backups.drop_abandoned()
    assert [r.backup_id for r in await account_rows(sync, backups, phone.account_id)] == [unready]
    with clock_moved(sync.clock, dt.timedelta(hours=2)):
        await sync.app.backups.drop_abandoned()
    assert await account_rows(sync, backups, phone.account_id) == []
    assert await account_rows(sync, backup_entries, phone.account_id) == []
    await sync.app.backups.release_files()
    assert await existing(blob_internal, phone.account_id, [listed.file_id]) == set()
    assert await released_of(sync, phone.account_id) == set()


async def test_a_hold_sync_knows_of_keeps_the_job_from_asking_blob_at_all(phone, sync, blob_internal, tmp_path) -> None:
    root = tmp_path / "kept"
    write_tree(root, {"minutes.txt": os.urandom(3000)})
    report = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    (file_id,) = [e.file_id for e in await phone.client.backups.entries(report.backup.backup_id)]
    await phone.client.backups.delete(report.backup.backup_id)
    await hold_in(sync.app.holds.table, sync.app.db, phone.account_id, held=True)
    try:
        assert await sync.app.backups.release_files() == 0
        rows = await account_rows(sync, released_files, phone.account_id)
        # Not taken at all: no mark of a deletion under way, no wait set after a refusal.
        assert [(row.file_id, row.deleting_since, row.retry_at) for row in rows] == [(uuid.UUID(file_id), None, None)]
        assert await existing(blob_internal, phone.account_id, [file_id]) == {file_id}
    finally:
        await hold_in(sync.app.holds.table, sync.app.db, phone.account_id, held=False)
    await sync.app.backups.release_files()
    assert await existing(blob_internal, phone.account_id, [file_id]) == set()


async def hold_in(table: Any, db: Any, account_id: str, *, held: bool) -> None:
    """A hold as a service's copy records it from the lifecycle's `account.hold_changed`."""
    statement = pg_insert(table).values(account_id=uuid.UUID(account_id), held=held, changed_at=dt.datetime.now(dt.UTC))
    async with db.unit_of_work() as uow:
        await uow.execute(statement.on_conflict_do_update(index_elements=[table.c.account_id], set_={"held": held}))
        await uow.commit()
