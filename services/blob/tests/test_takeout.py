"""Take-out: an owner asks for a copy of their account and downloads archives that hold, byte
for byte, their files, sync records, backups' manifests, device history and account data;
one export at a time, a few a day; nobody else's export is reachable; the archives go when
they expire or with the account; an export a crashed replica left is taken over."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import pathlib
import tarfile
import uuid

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2

from cumulo.locator.v1 import locator_pb2
from cumulo.sync.v1 import sync_pb2
from cumulo.takeout.v1 import takeout_pb2
from cumulo_blob.adapters.tables import exports
from cumulo_devstack.testing import (
    assert_gated,
    eventually,
    expect_error,
    gate_cases,
    lifecycle_has_contact,
    public_services,
)
from cumulo_sdk.devices import DeviceAgent

READY_SUBJECT = "Your cumulo data is ready to download"


def members(archives: list[pathlib.Path]) -> dict[str, bytes]:
    """Every file in the archives, by its name without the top folder."""
    found: dict[str, bytes] = {}
    for path in archives:
        with tarfile.open(path, "r:") as archive:
            for member in archive.getmembers():
                assert member.isfile(), member.name
                top, _, name = member.name.partition("/")
                assert top.startswith("cumulo-takeout-"), member.name
                assert name not in found, f"{name} is in the archives twice"
                data = archive.extractfile(member)
                assert data is not None
                found[name] = data.read()
    return found


def lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


async def exported(person, folder: pathlib.Path) -> tuple[takeout_pb2.Export, dict[str, bytes]]:
    started = await person.client.takeout.start()
    assert started.state in (takeout_pb2.EXPORT_STATE_QUEUED, takeout_pb2.EXPORT_STATE_RUNNING)
    done = await person.client.takeout.wait(started.export_id, every=0.2)
    assert done.state == takeout_pb2.EXPORT_STATE_READY, done
    folder.mkdir(parents=True, exist_ok=True)
    saved = await person.client.takeout.download(done.export_id, folder)
    for path, archive in zip(saved, done.archives, strict=True):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == archive.sha256
        assert path.stat().st_size == archive.size
    return done, members(saved)


def stamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when)
    return out


async def test_a_take_out_holds_everything_byte_for_byte(people, lifecycle, blob, mail, tmp_path) -> None:
    person = await people.new()
    await lifecycle_has_contact(lifecycle, person.email)
    files = person.client.files
    # Files: in folders, with a name no ASCII archive could hold, a trashed one, two of one
    # content, and two bigger than the test's archive size of 3 MiB (so it splits).
    beach = os.urandom(2 * 1024 * 1024 + 17)
    video = os.urandom(2 * 1024 * 1024 + 5)
    notes = "会议记录 — ünïcode".encode()
    local = tmp_path / "local"
    local.mkdir()
    for name, data in (("beach.jpg", beach), ("video.mp4", video), ("notes.txt", notes), ("old.txt", b"gone soon")):
        (local / name).write_bytes(data)
    photos = await files.makedirs("Photos/2026 夏天")
    await files.upload(local / "beach.jpg", parent_id=photos)
    await files.upload(local / "beach.jpg", parent_id=photos, name="beach copy.jpg")
    await files.upload(local / "video.mp4")
    await files.upload(local / "notes.txt", name="会议记录.txt")
    old = await files.upload(local / "old.txt")
    await files.delete(old.node_id)
    # Sync records: one kept, one deleted (a tombstone is not data).
    saves = [
        sync_pb2.RecordSave(record_id="r1", record_type="note", payload=b'{"title": "hello"}'),
        sync_pb2.RecordSave(record_id="r2", record_type="note", payload=b"\x00\x01binary"),
    ]
    await person.client.sync.push("notes", saves)
    await person.client.sync.push("notes", deletes=[sync_pb2.RecordDelete(record_id="r2")])
    # A backup of a device's folder.
    device_files = tmp_path / "phone"
    device_files.mkdir()
    (device_files / "contacts.vcf").write_bytes(b"BEGIN:VCARD\nEND:VCARD\n")
    await person.client.backups.create(device_files, device_id="phone-1", device_name="Ann's phone")
    # Where a phone was.
    agent = DeviceAgent(person.client)
    await agent.register("phone-1", name="Ann's phone", model="Pixel", platform="android")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    points = [(31.2304, 121.4737), (31.2310, 121.4740), (31.2320, 121.4750)]
    await agent.report("phone-1", [
        locator_pb2.Location(
            latitude=lat, longitude=lon, accuracy=10.0, battery=80, source=locator_pb2.LOCATION_SOURCE_GPS,
            measured_at=stamp(now - dt.timedelta(minutes=10 - i)),
        )
        for i, (lat, lon) in enumerate(points)
    ])

    done, got = await exported(person, tmp_path / "downloaded")

    assert len(done.archives) >= 2, "more than 3 MiB in archives of 3 MiB"
    assert done.files_total == done.files_done == 6  # five, and the backup's one
    assert done.expires_at.ToDatetime(tzinfo=dt.UTC) - done.finished_at.ToDatetime(tzinfo=dt.UTC) == dt.timedelta(days=7)
    # The files, as they were stored, where they were.
    assert got["files/Photos/2026 夏天/beach.jpg"] == beach
    assert got["files/Photos/2026 夏天/beach copy.jpg"] == beach
    assert got["files/video.mp4"] == video
    assert got["files/会议记录.txt"] == notes
    trashed = [name for name in got if name.startswith("trash/")]
    assert len(trashed) == 1 and trashed[0].startswith("trash/old (") and got[trashed[0]] == b"gone soon"
    index = {f["path"]: f for f in lines(got["files.jsonl"])}
    assert index["/video.mp4"]["sha256"] == hashlib.sha256(video).hexdigest()
    assert index["/old.txt"]["in_trash"] and index["/old.txt"]["in_archive"] == trashed[0]
    # The backup's files are files of the account too (in their backups folder).
    assert b"BEGIN:VCARD\nEND:VCARD\n" in got.values()
    # Sync: the zone named, its live records with their payloads.
    zones = lines(got["sync/zones.jsonl"])
    assert [z["name"] for z in zones] == ["notes"]
    records = lines(got[f"sync/zones/{zones[0]['zone_id']}.jsonl"])
    assert [(r["record_id"], base64.b64decode(r["payload"])) for r in records] == [("r1", b'{"title": "hello"}')]
    # The backup and its manifest.
    (backup,) = lines(got["backups/backups.jsonl"])
    assert backup["device_name"] == "Ann's phone"
    assert [e["path"] for e in lines(got[f"backups/{backup['backup_id']}.jsonl"])] == ["contacts.vcf"]
    # Where the phone was, point by point.
    history = lines(got["devices/locations.jsonl"])
    assert [(h["latitude"], h["longitude"]) for h in history] == points
    assert [d["name"] for d in lines(got["devices/devices.jsonl"])] == ["Ann's phone"]
    # The account: contacts, sessions, terms, lifecycle; never a secret.
    (account,) = lines(got["account/account.jsonl"])
    assert account["email"] == person.email and account["email_verified_at"]
    assert lines(got["account/sessions.jsonl"]) and lines(got["account/terms.jsonl"])
    (state,) = lines(got["account/lifecycle.jsonl"])
    assert state["state"] == "active"
    everything = b"".join(got.values())
    for secret in (b"password_hash", b"token_hash", b"secret_sealed", b"code_digest"):
        assert secret not in everything
    assert "README.txt" in got
    # The owner is told, with the console's page (not the archive's URL).
    told = await eventually(
        lambda: _mail_to(mail, person.email, READY_SUBJECT), what="the take-out notice"
    )
    assert "/takeout" in told and "X-Amz-Signature" not in told
    # Nothing of the staging is left in the store: the archives alone.
    left = await _keys(blob, f"takeout/{person.account_id}/{done.export_id}/")
    assert sorted(k.rsplit("/", 1)[1] for k in left) == sorted(a.name for a in done.archives)


async def _mail_to(mail, address: str, subject: str) -> str:
    for message in mail.messages():
        if message["To"] == address and str(message["Subject"]) == subject:
            return message.get_content()
    return ""


async def _keys(blob, prefix: str) -> list[str]:
    storage = blob.app.storage
    paginator = storage.client.get_paginator("list_objects_v2")
    return [item["Key"] async for page in paginator.paginate(Bucket=storage.bucket, Prefix=prefix) for item in page.get("Contents", [])]


async def test_a_withheld_file_is_left_out_and_marked(people, blob, tmp_path) -> None:
    person = await people.new()
    (tmp_path / "a.txt").write_bytes(b"fine")
    (tmp_path / "b.txt").write_bytes(b"unlawful")
    await person.client.files.upload(tmp_path / "a.txt")
    bad = await person.client.files.upload(tmp_path / "b.txt")
    await blob.app.blocks.block_file(person.account_id, bad.node_id, blocked=True, reason="a court order", actor="moderator:test")
    done, got = await exported(person, tmp_path / "out")
    assert got["files/a.txt"] == b"fine"
    assert b"unlawful" not in b"".join(got.values())
    index = {f["path"]: f for f in lines(got["files.jsonl"])}
    assert index["/b.txt"]["withheld"] and index["/b.txt"]["in_archive"] == ""
    assert done.files_total == 1


async def test_one_export_at_a_time_and_a_few_a_day(people, blob, tmp_path) -> None:
    person = await people.new()
    first = await person.client.takeout.start()
    await expect_error(person.client.takeout.start(), grpc.StatusCode.FAILED_PRECONDITION, reason="EXPORT_IN_PROGRESS")
    await person.client.takeout.wait(first.export_id, every=0.2)
    for _ in range(blob.app.settings.takeout_per_day - 1):
        again = await person.client.takeout.start()
        await person.client.takeout.wait(again.export_id, every=0.2)
    await expect_error(person.client.takeout.start(), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="EXPORT_LIMIT_REACHED")
    listed = await person.client.takeout.list()
    assert len(listed) == blob.app.settings.takeout_per_day
    assert all(e.state == takeout_pb2.EXPORT_STATE_READY for e in listed)
    # Another account is not held back by this one's limit.
    other = await people.new()
    await other.client.takeout.start()


async def test_someone_elses_export_is_not_found_and_a_bad_id_is_named(people, tmp_path) -> None:
    owner, intruder = await people.new(), await people.new()
    mine = await owner.client.takeout.start()
    await owner.client.takeout.wait(mine.export_id, every=0.2)
    await expect_error(intruder.client.takeout.get(mine.export_id), grpc.StatusCode.NOT_FOUND, reason="EXPORT_NOT_FOUND")
    assert await intruder.client.takeout.list() == []
    err = await expect_error(intruder.client.takeout.get("../../etc"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "export_id" in str(err)
    err = await expect_error(intruder.client.takeout.get(str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND)
    # The owner's is untouched, with URLs that work.
    again = await owner.client.takeout.get(mine.export_id)
    assert again.state == takeout_pb2.EXPORT_STATE_READY and all(a.download_url for a in again.archives)


@pytest.mark.parametrize("method, case", gate_cases(public_services(takeout_pb2)))
async def test_every_take_out_method_is_gated(blob, signing_key, method, case) -> None:
    await assert_gated(blob.target, method, case, signing_key)


async def test_expired_archives_are_deleted_and_their_urls_stop_working(people, blob, tmp_path) -> None:
    person = await people.new()
    (tmp_path / "a.txt").write_bytes(b"kept a week")
    await person.client.files.upload(tmp_path / "a.txt")
    done, _ = await exported(person, tmp_path / "out")
    async with blob.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.update(exports).where(exports.c.export_id == uuid.UUID(done.export_id)).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await uow.commit()
    assert await blob.app.takeout.expire() >= 1
    gone = await person.client.takeout.get(done.export_id)
    assert gone.state == takeout_pb2.EXPORT_STATE_EXPIRED and list(gone.archives) == []
    assert await _keys(blob, f"takeout/{person.account_id}/") == []


async def test_an_export_a_crashed_replica_left_is_taken_over(people, blob, tmp_path) -> None:
    """A replica died mid-export: its lease runs out, another takes the export, starts it clean
    (what the dead one wrote is removed) and finishes it."""
    person = await people.new()
    (tmp_path / "a.txt").write_bytes(b"still here")
    await person.client.files.upload(tmp_path / "a.txt")
    account, export = uuid.UUID(person.account_id), uuid.uuid4()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    leftover = f"takeout/{account}/{export}/1/staging/half-written.jsonl"  # its first try's
    await blob.app.storage.put(leftover, b"{}\n")
    async with blob.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(exports).values(
                account_id=account, export_id=export, state="running", requested_at=past, started_at=past, lease_until=past, attempts=1
            )
        )
        await uow.commit()
    done = await person.client.takeout.wait(str(export), every=0.2)
    assert done.state == takeout_pb2.EXPORT_STATE_READY
    saved = await person.client.takeout.download(str(export), tmp_path / "out")
    got = members(saved)
    assert got["files/a.txt"] == b"still here" and "half-written.jsonl" not in {n.rsplit("/", 1)[-1] for n in got}
    assert leftover not in await _keys(blob, f"takeout/{account}/")


async def test_the_account_s_deletion_takes_its_archives(people, blob, tmp_path) -> None:
    person = await people.new()
    (tmp_path / "a.txt").write_bytes(b"mine")
    await person.client.files.upload(tmp_path / "a.txt")
    await exported(person, tmp_path / "out")
    await blob.app.purge.purge(uuid.UUID(person.account_id))
    assert await _keys(blob, f"takeout/{person.account_id}/") == []
    async with blob.app.db.read() as conn:
        assert (await conn.execute(sa.select(exports).where(exports.c.account_id == uuid.UUID(person.account_id)))).first() is None


async def test_others_are_served_while_an_export_runs(people, tmp_path) -> None:
    """An export works in the background: the asker's and others' calls go on meanwhile."""
    busy, other = await people.new(), await people.new()
    for i in range(3):
        (tmp_path / f"f{i}.bin").write_bytes(os.urandom(1024 * 1024))
        await busy.client.files.upload(tmp_path / f"f{i}.bin")
    started = await busy.client.takeout.start()
    (tmp_path / "mine.txt").write_bytes(b"served")
    node = await other.client.files.upload(tmp_path / "mine.txt")
    assert [n.name for n in await other.client.files.ls()] == ["mine.txt"] and node.size == 6
    done = await busy.client.takeout.wait(started.export_id, every=0.2)
    assert done.state == takeout_pb2.EXPORT_STATE_READY


def test_the_tar_member_names_cannot_leave_the_archive() -> None:
    from cumulo_blob.domain.tar import member_name

    assert member_name("files", "..", "etc", "passwd") == "files/_/etc/passwd"
    assert member_name("files", "a/b") == "files/a_b"
    assert member_name("trash", "") == "trash/_"
