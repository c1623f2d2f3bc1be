"""Device backups end to end through the gateway: a folder's files go to the user's blob
folder "Backups/<device>", the manifest to the sync service; a second backup sends only what
changed; a restore gives back the exact bytes; the newest 3 of a device are kept; malformed
manifests are refused naming the field, and nothing is stored (released files:
test_backup_releases.py)."""

from __future__ import annotations

import os
import pathlib
import unicodedata
import uuid
from typing import Any

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo.sync.v1 import sync_pb2, sync_pb2_grpc
from cumulo_devstack.testing import expect_error
from cumulo_sdk.files import sha256_of
from cumulo_sync.adapters.tables import backup_entries, backups

from .conftest import account_rows, entries, entry, folder_files, header, raw_create, read_tree, write_tree

INVALID, PRECONDITION, NOT_FOUND = (
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
)
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# --- create, list, get, entries, a second backup, restore -----------------------------------


NON_ASCII = "文档/Résumé – 履歴書 ü.txt"


async def test_a_folder_is_backed_up_and_a_second_backup_sends_only_what_changed(phone, laptop, tmp_path) -> None:
    root = tmp_path / "phone-files"
    original = write_tree(
        root,
        {
            "notes.txt": b"shopping: milk, eggs\n",
            "photos/2026/beach.jpg": os.urandom(300_000),
            "photos/2026/empty.dat": b"",
            NON_ASCII: "Grüße, 你好\n".encode(),
            "deep/a/b/c/d/data.bin": os.urandom(70_000),
        },
    )
    first = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    assert (first.files, first.uploaded_files, first.reused_files, first.pruned) == (5, 5, 0, [])
    assert first.uploaded_bytes == sum(len(c) for c in original.values())
    backup = first.backup
    assert (backup.device_id, backup.device_name, backup.entry_count, backup.total_size) == (
        "phone-1", "phone", 5, first.uploaded_bytes,
    )
    uuid.UUID(backup.backup_id)

    # Every device of the account sees it: list (all, or one device's), get, entries.
    assert [b.backup_id for b in await laptop.client.backups.list()] == [backup.backup_id]
    assert [b.backup_id for b in await laptop.client.backups.list("phone-1")] == [backup.backup_id]
    assert await laptop.client.backups.list("laptop-1") == []
    assert await laptop.client.backups.get(backup.backup_id) == backup
    listed = await laptop.client.backups.entries(backup.backup_id)
    assert [e.path for e in listed] == sorted(original)
    by_path = {e.path: e for e in listed}
    for path, content in original.items():
        assert by_path[path].size == len(content)
        assert by_path[path].sha256 == sha256_of(root / path)
    assert by_path["photos/2026/empty.dat"].sha256 == EMPTY_SHA256
    assert len({e.file_id for e in listed}) == 5
    # The bytes are files of the account, one per content, named by their SHA-256.
    stored = await folder_files(phone.client, "phone")
    assert stored == {e.sha256: e.file_id for e in listed}

    # One file changed, one added: only those two are sent.
    changed = b"shopping: milk, eggs, bread\n"
    (root / "notes.txt").write_bytes(changed)
    (root / "photos/new.png").write_bytes(os.urandom(40_000))
    second = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    assert (second.files, second.uploaded_files, second.reused_files, second.pruned) == (6, 2, 4, [])
    assert second.uploaded_bytes == len(changed) + 40_000
    again = {e.path: e for e in await phone.client.backups.entries(second.backup.backup_id)}
    assert set(again) == set(original) | {"photos/new.png"}
    for path in set(original) - {"notes.txt"}:
        assert again[path].file_id == by_path[path].file_id, path  # unchanged: the same blob file
    assert again["notes.txt"].file_id != by_path["notes.txt"].file_id
    assert again["notes.txt"].sha256 == sha256_of(root / "notes.txt")
    assert [b.backup_id for b in await phone.client.backups.list()] == [second.backup.backup_id, backup.backup_id]

    # The FIRST backup comes back exactly, into an empty folder.
    target = tmp_path / "restored"
    target.mkdir()
    assert await laptop.client.backups.restore(backup.backup_id, target) == 5
    assert read_tree(target) == original
    assert (target / "photos/2026/empty.dat").stat().st_size == 0


async def test_restore_refuses_a_folder_with_a_clashing_file_and_writes_nothing(phone, tmp_path) -> None:
    root = tmp_path / "src"
    write_tree(root, {"a.txt": b"backed up a", "sub/b.txt": b"backed up b"})
    report = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    target = tmp_path / "busy"
    write_tree(target, {"sub/b.txt": b"mine, not the backup's"})
    with pytest.raises(FileExistsError):
        await phone.client.backups.restore(report.backup.backup_id, target)
    assert read_tree(target) == {"sub/b.txt": b"mine, not the backup's"}


async def test_entries_come_page_by_page_in_path_order(phone, tmp_path) -> None:
    root = tmp_path / "many"
    files = write_tree(root, {f"d{i % 3}/f{i:02}.txt": f"file {i}".encode() for i in range(11)})
    report = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    stub = sync_pb2_grpc.BackupServiceStub(phone.client.channel)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await phone.client.call(
            stub.ListBackupEntries,
            sync_pb2.ListBackupEntriesRequest(backup_id=report.backup.backup_id, page_size=4, page_token=token),
        )
        seen.extend(e.path for e in page.entries)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3 and seen == sorted(files)
    await expect_error(
        phone.client.call(stub.ListBackupEntries, sync_pb2.ListBackupEntriesRequest(backup_id=report.backup.backup_id, page_size=5001)),
        INVALID, field="page_size",
    )


async def test_another_account_cannot_see_or_delete_a_backup(phone, stranger, tmp_path) -> None:
    root = tmp_path / "private"
    write_tree(root, {"secret.txt": b"diary"})
    report = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    backup_id = report.backup.backup_id
    assert await stranger.client.backups.list() == []
    await expect_error(stranger.client.backups.get(backup_id), NOT_FOUND, "BACKUP_NOT_FOUND")
    await expect_error(stranger.client.backups.entries(backup_id), NOT_FOUND, "BACKUP_NOT_FOUND")
    await expect_error(stranger.client.backups.delete(backup_id), NOT_FOUND, "BACKUP_NOT_FOUND")
    await expect_error(stranger.client.backups.restore(backup_id, tmp_path / "stolen"), NOT_FOUND, "BACKUP_NOT_FOUND")
    assert (await phone.client.backups.get(backup_id)).backup_id == backup_id
    await expect_error(phone.client.backups.get("not-an-id"), INVALID, field="backup_id")
    await expect_error(phone.client.backups.get(str(uuid.uuid4())), NOT_FOUND, "BACKUP_NOT_FOUND")


# --- keeping the newest 3 --------------------------------------------------------------------


async def test_up_to_three_backups_per_device_are_kept_whatever_other_devices_have(phone, laptop, tmp_path) -> None:
    root = tmp_path / "files"
    write_tree(root, {"a.txt": b"a"})
    made = []
    for device, client in (("phone-1", phone.client), ("laptop-1", laptop.client), ("phone-1", phone.client), ("laptop-1", laptop.client)):
        made.append(await client.backups.create(root, device_id=device, device_name=device.split("-")[0]))
    third = await phone.client.backups.create(root, device_id="phone-1", device_name="phone")
    assert [r.pruned for r in made] == [[], [], [], []] and third.pruned == []
    assert len(await phone.client.backups.list("phone-1")) == 3
    assert len(await phone.client.backups.list("laptop-1")) == 2
    assert [b.backup_id for b in await laptop.client.backups.list()] == [third.backup.backup_id] + [r.backup.backup_id for r in made[::-1]]


# --- malformed manifests ----------------------------------------------------------------------


@pytest.fixture
async def uploaded(phone: Any, tmp_path: pathlib.Path) -> blob_pb2.Node:
    """A file of the phone's account to point manifests at."""
    path = tmp_path / "real.bin"
    path.write_bytes(os.urandom(2048))
    return await phone.client.files.upload(path)


async def test_malformed_manifests_are_refused_naming_the_field(phone, sync, uploaded) -> None:
    good = entry(uploaded)
    cases: list[tuple[list[sync_pb2.CreateBackupRequest], str]] = [
        ([header(), entries(entry(uploaded, "a/../b.txt"))], "entries[0].path"),
        ([header(), entries(entry(uploaded, "../b.txt"))], "entries[0].path"),
        ([header(), entries(entry(uploaded, "/etc/passwd"))], "entries[0].path"),
        ([header(), entries(entry(uploaded, "a/./b.txt"))], "entries[0].path"),
        ([header(), entries(entry(uploaded, "a//b.txt"))], "entries[0].path"),
        ([header(), entries(entry(uploaded, ""))], "entries[0].path"),
        ([header(), entries(entry(uploaded, "tab\there"))], "entries[0].path"),
        ([header(), entries(good, entry(uploaded, "a.txt"))], "entries[1].path"),
        # The same name, once composed and once decomposed, is one path.
        (
            [header(), entries(entry(uploaded, unicodedata.normalize("NFC", "café.txt")), entry(uploaded, unicodedata.normalize("NFD", "café.txt")))],
            "entries[1].path",
        ),
        # Entries are counted across messages.
        ([header(), entries(good), entries(entry(uploaded, "x/../y"))], "entries[1].path"),
        ([header(), entries(entry(uploaded, sha256="abc"))], "entries[0].sha256"),
        ([header(), entries(entry(uploaded, sha256="g" * 64))], "entries[0].sha256"),
        ([header(), entries(entry(uploaded, size=-1))], "entries[0].size"),
        ([header(), entries(entry(uploaded, file_id="not-a-file-id"))], "entries[0].file_id"),
        ([header(), entries(entry(uploaded, file_id=""))], "entries[0].file_id"),
        ([entries(good), header()], "header"),
        ([entries(good)], "header"),
        ([], "header"),
        ([header(), header()], "header"),
        ([header(), entries(good), header()], "header"),
        ([header(device_id="")], "header.device_id"),
        ([header(device_id="   ")], "header.device_id"),
        ([header(device_id="x" * 129)], "header.device_id"),
        ([header(device_name="bad\x00name")], "header.device_name"),
    ]
    for messages, field in cases:
        await expect_error(raw_create(phone.client, messages), INVALID, field=field)
    # A message with neither a header nor entries.
    await expect_error(raw_create(phone.client, [header(), sync_pb2.CreateBackupRequest()]), INVALID, field="item")
    # Nothing of it was stored.
    assert await phone.client.backups.list() == []
    assert await account_rows(sync, backups, phone.account_id) == []
    assert await account_rows(sync, backup_entries, phone.account_id) == []
    # The good manifest is fine.
    made = await raw_create(phone.client, [header(), entries(good)])
    assert (made.backup.entry_count, made.backup.total_size) == (1, uploaded.size)


async def test_an_entry_must_match_a_live_file_of_the_account(phone, stranger, sync, uploaded, tmp_path) -> None:
    c = phone.client
    mismatch = [
        entry(uploaded, size=uploaded.size + 1),
        entry(uploaded, sha256=EMPTY_SHA256),
        entry(uploaded, sha256=uploaded.sha256.upper(), size=uploaded.size - 1),
    ]
    for bad in mismatch:
        await expect_error(raw_create(c, [header(), entries(bad)]), PRECONDITION, "BACKUP_FILE_MISMATCH", field="entries[0]")
    await expect_error(
        raw_create(c, [header(), entries(entry(uploaded, "ok.txt"), entry(uploaded, "b.txt", size=1))]),
        PRECONDITION, "BACKUP_FILE_MISMATCH", field="entries[1]",
    )
    # No such file, a folder, another account's file.
    folder = await c.files.mkdir("", "not-a-file")
    theirs_path = tmp_path / "theirs.bin"
    theirs_path.write_bytes(os.urandom(100))
    theirs = await stranger.client.files.upload(theirs_path)
    for missing in (entry(uploaded, file_id=str(uuid.uuid4())), entry(uploaded, file_id=folder.node_id), entry(theirs)):
        await expect_error(raw_create(c, [header(), entries(missing)]), PRECONDITION, "BACKUP_FILE_MISSING", field="entries[0].file_id")
    # In the trash, then deleted for good.
    await c.files.delete(uploaded.node_id)
    await expect_error(raw_create(c, [header(), entries(entry(uploaded))]), PRECONDITION, "BACKUP_FILE_MISSING", field="entries[0].file_id")
    await c.files.empty_trash()
    await expect_error(raw_create(c, [header(), entries(entry(uploaded))]), PRECONDITION, "BACKUP_FILE_MISSING", field="entries[0].file_id")
    assert await c.backups.list() == []
    assert await account_rows(sync, backups, phone.account_id) == []
    assert await account_rows(sync, backup_entries, phone.account_id) == []
    assert await stranger.client.backups.list() == []


async def test_a_file_in_a_trashed_folder_counts_as_missing(phone, tmp_path) -> None:
    folder = await phone.client.files.mkdir("", "going")
    path = tmp_path / "inside.bin"
    path.write_bytes(os.urandom(1000))
    node = await phone.client.files.upload(path, parent_id=folder.node_id)
    await phone.client.files.delete(folder.node_id)  # the folder, with the file in it, to the trash
    await expect_error(
        raw_create(phone.client, [header(), entries(entry(node))]), PRECONDITION, "BACKUP_FILE_MISSING", field="entries[0].file_id"
    )
