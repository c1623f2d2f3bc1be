"""Bounded input to the sync service. Against a sync service of this module's own with small
limits (its own database; the session's auth and blob): a backup manifest is refused once it
passes its entry, path or byte limit, and is stored as it streams in, never held whole; a
message over the gRPC receive limit is refused before it is read; empty records count against
the quota and an account's zones are limited. Against the session's: every change token,
change tag and page token a client sends is checked, whatever its size or make, and refused
as INVALID_ARGUMENT naming its field."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import os
import pathlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2
from cumulo.sync.v1 import sync_pb2 as pb
from cumulo.sync.v1 import sync_pb2_grpc
from cumulo_devstack.testing import Person, eventually, expect_error, open_channel, start_service
from cumulo_platform import migrations
from cumulo_platform.db import Database, create_engine
from cumulo_platform.paging import encode_token
from cumulo_sdk import CumuloRpcError
from cumulo_sync import bootstrap as sync_bootstrap
from cumulo_sync.adapters.tables import backup_entries, backups, records, usage, zones
from cumulo_sync.config import SyncSettings
from cumulo_sync.domain import rules

MIB = 1024 * 1024
ENTRY_LIMIT = 2500
PATH_LIMIT = 300
MANIFEST_LIMIT = 600_000  # bytes of entries, as sent
ZONE_LIMIT = 3
QUOTA = 10_000
RECEIVE_LIMIT = MIB
OVERHEAD = rules.RECORD_OVERHEAD_BYTES
INVALID, PRECONDITION, EXHAUSTED = (
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
)


@dataclasses.dataclass
class SmallSync:
    app: sync_bootstrap.SyncApp
    target: str
    sync: sync_pb2_grpc.SyncServiceStub
    backups: sync_pb2_grpc.BackupServiceStub


@pytest.fixture(scope="module")
async def small(infra, auth, blob, lifecycle_target) -> AsyncIterator[SmallSync]:
    """A second sync service (own database; the session's auth, blob and NATS) with small limits."""
    settings = SyncSettings.from_env(
        infra.service_environ(
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_BLOB_TARGET=blob.target,
            CUMULO_LIFECYCLE_TARGET=lifecycle_target,
            CUMULO_SYNC_PRUNE_EVERY="PT1H",  # the tests prune when they mean to
            CUMULO_SYNC_MAX_BACKUP_ENTRIES=str(ENTRY_LIMIT),
            CUMULO_SYNC_MAX_BACKUP_PATH_BYTES=str(PATH_LIMIT),
            CUMULO_SYNC_MAX_BACKUP_MANIFEST_BYTES=str(MANIFEST_LIMIT),
            CUMULO_SYNC_MAX_ZONES=str(ZONE_LIMIT),
            CUMULO_SYNC_QUOTA_BYTES=str(QUOTA),
            CUMULO_SYNC_GRPC_MAX_RECEIVE_BYTES=str(RECEIVE_LIMIT),
            CUMULO_SYNC_MAX_PAYLOAD_BYTES=str(RECEIVE_LIMIT // 2),
        )
    )
    app = await sync_bootstrap.build(settings)
    port = await start_service(app.runtime)
    target = f"127.0.0.1:{port}"
    try:
        async with open_channel(target) as channel:
            yield SmallSync(app, target, sync_pb2_grpc.SyncServiceStub(channel), sync_pb2_grpc.BackupServiceStub(channel))
    finally:
        await app.runtime.stop()


async def rpc(person: Person, method: Any, request: Any) -> Any:
    try:
        return await method(request, metadata=await person.metadata(), timeout=30)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


@pytest.fixture
async def owner(people) -> Person:
    return await people.new()


@pytest.fixture
async def stored(owner: Person, tmp_path: pathlib.Path) -> blob_pb2.Node:
    """A file of the owner's (in the session's blob service) for manifests to point at."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(os.urandom(3000))
    return await owner.client.files.upload(path)


def entry(node: blob_pb2.Node, path: str, **changes: Any) -> pb.BackupEntry:
    values: dict[str, Any] = dict(path=path, file_id=node.node_id, size=node.size, sha256=node.sha256)
    values.update(changes)
    return pb.BackupEntry(**values)


def header(device_id: str = "phone-1") -> pb.CreateBackupRequest:
    return pb.CreateBackupRequest(header=pb.BackupHeader(device_id=device_id, device_name="phone"))


def in_messages(items: list[pb.BackupEntry], per_message: int = 1000) -> list[pb.CreateBackupRequest]:
    return [
        pb.CreateBackupRequest(entries=pb.BackupEntries(entries=items[i : i + per_message])) for i in range(0, len(items), per_message)
    ]


def many(node: blob_pb2.Node, count: int, path_bytes: int = 0) -> list[pb.BackupEntry]:
    """`count` entries of one file under distinct paths (padded to `path_bytes`)."""
    return [entry(node, f"dir/{i:06d}-".ljust(path_bytes, "x") if path_bytes else f"dir/{i:06d}.jpg") for i in range(count)]


async def create(small: SmallSync, person: Person, messages: Iterable[pb.CreateBackupRequest]) -> pb.CreateBackupResponse:
    items = list(messages)

    async def stream() -> AsyncIterator[pb.CreateBackupRequest]:
        for item in items:
            yield item

    try:
        return await small.backups.CreateBackup(stream(), metadata=await person.metadata(), timeout=60)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


async def rows_of(small: SmallSync, table: sa.Table, person: Person) -> list[Any]:
    async with small.app.db.read() as conn:
        return list((await conn.execute(sa.select(table).where(table.c.account_id == uuid.UUID(person.account_id)))).all())


async def assert_nothing_kept(small: SmallSync, person: Person) -> None:
    assert await rows_of(small, backups, person) == []
    assert await rows_of(small, backup_entries, person) == []
    assert (await rpc(person, small.backups.ListBackups, pb.ListBackupsRequest())).backups == []


# --- the manifest's limits -----------------------------------------------------------------------


async def test_a_manifest_past_its_entry_limit_is_refused_and_nothing_is_kept(small, owner, stored):
    err = await expect_error(create(small, owner, [header(), *in_messages(many(stored, ENTRY_LIMIT + 1))]), INVALID, field="entries")
    assert str(ENTRY_LIMIT) in err.message
    await assert_nothing_kept(small, owner)
    made = await create(small, owner, [header(), *in_messages(many(stored, ENTRY_LIMIT))])  # the control: at the limit
    assert made.backup.entry_count == ENTRY_LIMIT


async def test_a_manifest_past_its_byte_limit_is_refused_and_nothing_is_kept(small, owner, stored):
    """Entries of long paths: the limit is reached after the first chunk was stored; that goes too."""
    items = many(stored, 2000, path_bytes=PATH_LIMIT)
    assert sum(e.ByteSize() for e in items) > MANIFEST_LIMIT > sum(e.ByteSize() for e in items[:1000])
    err = await expect_error(create(small, owner, [header(), *in_messages(items)]), INVALID, field="entries")
    assert str(MANIFEST_LIMIT) in err.message
    await assert_nothing_kept(small, owner)


async def test_a_path_past_the_limit_is_refused_naming_its_entry(small, owner, stored):
    at_limit = "a/" + "é" * ((PATH_LIMIT - 2) // 2)  # two bytes each in UTF-8
    assert len(at_limit.encode()) == PATH_LIMIT
    await expect_error(
        create(small, owner, [header(), *in_messages([entry(stored, "a.jpg"), entry(stored, "b.jpg"), entry(stored, at_limit + "x")])]),
        INVALID, field="entries[2].path",
    )
    await assert_nothing_kept(small, owner)
    made = await create(small, owner, [header(), *in_messages([entry(stored, at_limit)])])
    assert made.backup.entry_count == 1


@dataclasses.dataclass
class Known:
    """An account of the session's services with a zone, a backup and a file: what the
    parametrised tests below aim their calls at."""

    person: Person
    backup_id: str
    file: blob_pb2.Node


@pytest.fixture(scope="module")
async def known(module_people, sync, tmp_path_factory) -> Known:
    person = await module_people.new()
    await person.client.sync.push("notes", [pb.RecordSave(record_id="n", record_type="note", payload=b"x")])
    folder = tmp_path_factory.mktemp("known")
    (folder / "a.txt").write_bytes(os.urandom(1000))
    made = await person.client.backups.create(folder, device_id="phone-1")
    file = (await person.client.backups.entries(made.backup.backup_id))[0]
    node = blob_pb2.Node(node_id=file.file_id, size=file.size, sha256=file.sha256)
    return Known(person, made.backup.backup_id, node)


@pytest.mark.parametrize("length", [1025, 2049, 4096, 64 * 1024])
async def test_a_path_too_long_for_the_session_service_is_invalid_argument_not_internal(known, length):
    """Default limits: 1 KiB a path. A path past PostgreSQL's index entry (~2.7 kB) used to
    fail inside the database."""
    path = "d/" + secrets.token_urlsafe(length)[: length - 2]
    client = known.person.client
    stub = sync_pb2_grpc.BackupServiceStub(client.channel)

    async def stream() -> AsyncIterator[pb.CreateBackupRequest]:
        yield header()
        yield pb.CreateBackupRequest(entries=pb.BackupEntries(entries=[entry(known.file, path)]))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBackup(stream(), metadata=client.metadata(await client.access_token()), timeout=30)
    err = CumuloRpcError.from_rpc_error(caught.value)
    assert (err.code, err.field) == (INVALID, "entries[0].path"), err
    assert "1024 bytes" in err.message


# --- stored as it streams in -------------------------------------------------------------------------


class Feed:
    """A CreateBackup stream the test writes to as it goes."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[pb.CreateBackupRequest | None] = asyncio.Queue()

    async def messages(self) -> AsyncIterator[pb.CreateBackupRequest]:
        while (item := await self.queue.get()) is not None:
            yield item

    def send(self, *items: pb.CreateBackupRequest) -> None:
        for item in items:
            self.queue.put_nowait(item)

    def end(self) -> None:
        self.queue.put_nowait(None)


async def stored_entries(small: SmallSync, person: Person) -> int:
    return len(await rows_of(small, backup_entries, person))


async def test_a_manifest_is_stored_as_it_streams_in_not_held_whole(small, owner, stored):
    feed = Feed()
    call = small.backups.CreateBackup(feed.messages(), metadata=await owner.metadata(), timeout=60)
    items = many(stored, 2300)
    feed.send(header(), *in_messages(items[:1500], per_message=500))

    async def first_chunk_stored() -> bool:
        return await stored_entries(small, owner) >= 1000

    # The stream is still open, and the first chunk is in the database already (unready: out of sight).
    await eventually(first_chunk_stored, what="the first chunk of the manifest to be stored")
    assert [b.ready for b in await rows_of(small, backups, owner)] == [False]
    assert (await rpc(owner, small.backups.ListBackups, pb.ListBackupsRequest())).backups == []
    feed.send(*in_messages(items[1500:], per_message=400))
    feed.end()
    made = await call
    assert (made.backup.entry_count, made.backup.total_size) == (2300, 2300 * stored.size)
    assert await stored_entries(small, owner) == 2300
    page = await rpc(owner, small.backups.ListBackupEntries, pb.ListBackupEntriesRequest(backup_id=made.backup.backup_id, page_size=5000))
    assert [e.path for e in page.entries] == sorted(e.path for e in items)


async def test_a_client_that_goes_away_mid_manifest_leaves_nothing(small, owner, stored):
    feed = Feed()
    call = small.backups.CreateBackup(feed.messages(), metadata=await owner.metadata(), timeout=60)
    feed.send(header(), *in_messages(many(stored, 1200)))

    async def first_chunk_stored() -> bool:
        return await stored_entries(small, owner) >= 1000

    await eventually(first_chunk_stored, what="the first chunk of the manifest to be stored")
    call.cancel()

    async def all_gone() -> bool:
        return not await rows_of(small, backups, owner) and not await stored_entries(small, owner)

    await eventually(all_gone, what="the abandoned backup to be removed")


async def test_a_path_repeated_in_a_later_chunk_is_refused_naming_it(small, owner, stored):
    items = many(stored, 1200)
    items[1100] = entry(stored, items[5].path)
    await expect_error(create(small, owner, [header(), *in_messages(items)]), INVALID, field="entries[1100].path")
    await assert_nothing_kept(small, owner)


async def test_a_missing_file_in_a_later_chunk_is_refused_naming_its_entry(small, owner, stored):
    items = many(stored, 1200)
    items[1100] = entry(stored, items[1100].path, file_id=str(uuid.uuid4()))
    await expect_error(
        create(small, owner, [header(), *in_messages(items)]), PRECONDITION, reason="BACKUP_FILE_MISSING", field="entries[1100].file_id"
    )
    await assert_nothing_kept(small, owner)


async def test_another_user_is_served_while_oversized_manifests_are_refused(small, people, owner, stored):
    """One account sends manifests past the byte limit again and again (bounded: 4 of them);
    another pushes and fetches its records meanwhile, and every call of its succeeds."""
    victim = await people.new()
    items = many(stored, 2000, path_bytes=PATH_LIMIT)
    attacking = True

    async def attack() -> list[CumuloRpcError]:
        nonlocal attacking
        refusals = []
        try:
            for _ in range(4):
                with pytest.raises(CumuloRpcError) as refused:
                    await create(small, owner, [header(), *in_messages(items)])
                refusals.append(refused.value)
        finally:
            attacking = False
        return refusals

    async def live() -> int:
        served, tag = 0, ""
        while attacking or served < 3:  # bounded by the attack, which is bounded
            payload = f"note {served:04d}".encode()  # one record saved over and over: the quota stays as it is
            save = pb.RecordSave(record_id="n", record_type="note", payload=payload, change_tag=tag)
            pushed = await rpc(victim, small.sync.Push, pb.PushRequest(zone="notes", saves=[save]))
            assert pushed.results[0].status == pb.PUSH_STATUS_SAVED
            tag = pushed.results[0].change_tag
            fetched = await rpc(victim, small.sync.FetchChanges, pb.FetchChangesRequest(zone="notes"))
            assert [r.payload for r in fetched.records] == [payload]
            served += 1
        return served

    refusals, served = await asyncio.gather(attack(), live())
    assert [(e.code, e.field) for e in refusals] == [(INVALID, "entries")] * 4
    assert served >= 3
    await assert_nothing_kept(small, owner)


# --- gRPC's receive limit ---------------------------------------------------------------------------


async def test_a_message_over_the_receive_limit_is_refused_before_it_is_read(small, owner):
    big = pb.PushRequest(zone="notes", saves=[pb.RecordSave(record_id=f"r{i}", record_type="note", payload=bytes(300_000)) for i in range(4)])
    assert big.ByteSize() > RECEIVE_LIMIT
    err = await expect_error(rpc(owner, small.sync.Push, big), EXHAUSTED)
    assert err.reason != "QUOTA_EXCEEDED" and "larger than max" in err.message.lower(), err
    assert (await rpc(owner, small.sync.GetSyncUsage, pb.GetSyncUsageRequest())).used == 0
    # A message within the limit is read and answered as ever (here: over the small quota).
    await expect_error(rpc(owner, small.sync.Push, pb.PushRequest(zone="notes", saves=big.saves[:1])), EXHAUSTED, reason="QUOTA_EXCEEDED")


# --- records and zones count ------------------------------------------------------------------------


def empty(record_id: str) -> pb.RecordSave:
    return pb.RecordSave(record_id=record_id, record_type="flag")


async def used(small: SmallSync, person: Person) -> int:
    return (await rpc(person, small.sync.GetSyncUsage, pb.GetSyncUsageRequest())).used


async def test_empty_records_count_against_the_quota_until_their_rows_are_gone(small, owner):
    fits = QUOTA // OVERHEAD
    pushed = await rpc(owner, small.sync.Push, pb.PushRequest(zone="flags", saves=[empty(f"f{i}") for i in range(fits)]))
    assert {r.status for r in pushed.results} == {pb.PUSH_STATUS_SAVED}
    assert await used(small, owner) == fits * OVERHEAD
    err = await expect_error(
        rpc(owner, small.sync.Push, pb.PushRequest(zone="flags", saves=[empty("one-more")])), EXHAUSTED, reason="QUOTA_EXCEEDED"
    )
    assert str(OVERHEAD) in err.message
    # Deleted, a record leaves a tombstone, which still costs its row: no room for a new one ...
    tag = pushed.results[0].change_tag
    await rpc(owner, small.sync.Push, pb.PushRequest(zone="flags", deletes=[pb.RecordDelete(record_id="f0", change_tag=tag)]))
    assert await used(small, owner) == fits * OVERHEAD
    await expect_error(rpc(owner, small.sync.Push, pb.PushRequest(zone="flags", saves=[empty("one-more")])), EXHAUSTED)
    # ... but the same record again takes its row back.
    assert (await rpc(owner, small.sync.Push, pb.PushRequest(zone="flags", saves=[empty("f0")]))).results[0].status == pb.PUSH_STATUS_SAVED
    # Deleting the zone drops its rows, and with them their cost.
    await rpc(owner, small.sync.DeleteZone, pb.DeleteZoneRequest(zone="flags"))
    assert await used(small, owner) == 0


async def test_a_pruned_tombstone_gives_its_cost_back(small, owner):
    pushed = await rpc(owner, small.sync.Push, pb.PushRequest(zone="notes", saves=[pb.RecordSave(record_id="n", record_type="note", payload=b"abc")]))
    assert await used(small, owner) == 3 + OVERHEAD
    tag = pushed.results[0].change_tag
    await rpc(owner, small.sync.Push, pb.PushRequest(zone="notes", deletes=[pb.RecordDelete(record_id="n", change_tag=tag)]))
    assert await used(small, owner) == OVERHEAD
    # The tombstone ages past the retention (its time moved back, not the service's clock).
    async with small.app.db.unit_of_work() as uow:
        mine = sa.select(zones.c.zone_id).where(zones.c.account_id == uuid.UUID(owner.account_id)).scalar_subquery()
        await uow.execute(
            sa.update(records).where(records.c.zone_id.in_(mine)).values(modified_at=records.c.modified_at - dt.timedelta(days=365))
        )
        await uow.commit()
    assert await small.app.cleanup.prune_tombstones() >= 1
    assert await used(small, owner) == 0


async def test_an_account_has_at_most_its_zone_limit(small, people, owner):
    for i in range(ZONE_LIMIT):
        await rpc(owner, small.sync.Push, pb.PushRequest(zone=f"z{i}", saves=[empty("r")]))
    err = await expect_error(
        rpc(owner, small.sync.Push, pb.PushRequest(zone="one-too-many", saves=[empty("r")])), EXHAUSTED, reason="ZONE_LIMIT_REACHED"
    )
    assert str(ZONE_LIMIT) in err.message
    # A push that only deletes would make a zone too.
    await expect_error(rpc(owner, small.sync.Push, pb.PushRequest(zone="one-too-many", deletes=[pb.RecordDelete(record_id="x")])), EXHAUSTED)
    # The zones there are still take pushes; another account has zones of its own.
    await rpc(owner, small.sync.Push, pb.PushRequest(zone="z0", saves=[empty("s")]))
    other = await people.new()
    await rpc(other, small.sync.Push, pb.PushRequest(zone="one-too-many", saves=[empty("r")]))
    # One deleted, there is room for one more.
    await rpc(owner, small.sync.DeleteZone, pb.DeleteZoneRequest(zone="z1"))
    await rpc(owner, small.sync.Push, pb.PushRequest(zone="one-too-many", saves=[empty("r")]))
    names = [z.name for z in (await rpc(owner, small.sync.ListZones, pb.ListZonesRequest())).zones]
    assert names == ["one-too-many", "z0", "z2"]


async def test_the_migration_charges_the_rows_already_stored(infra, sync):
    """0004 on a database at 0003 with records: each account pays the overhead of its rows
    (and a downgrade takes it back)."""
    url = infra.new_database()
    where = pathlib.Path(sync_bootstrap.MIGRATIONS)
    await asyncio.to_thread(migrations.upgrade, url, "sync", where, "0003")
    app_db = Database(create_engine(url), schema="sync", producer="test", clock=sync.clock)
    a, b = uuid.uuid4(), uuid.uuid4()
    za, zb = uuid.uuid4(), uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    try:
        async with app_db.unit_of_work() as uow:
            await uow.execute(sa.insert(zones), [
                dict(zone_id=za, account_id=a, name="notes", created_at=now, modified_at=now),
                dict(zone_id=zb, account_id=b, name="notes", created_at=now, modified_at=now),
            ])
            # The records table as it was at 0003: keyed by zone, without its account.
            records_then = sa.table(
                "records", *(sa.column(c) for c in ("zone_id", "record_id", "record_type", "payload", "seq", "deleted", "modified_at")),
                schema="sync",
            )
            await uow.execute(sa.insert(records_then), [
                dict(zone_id=za, record_id="live", record_type="t", payload=b"12345", seq=1, modified_at=now),
                dict(zone_id=za, record_id="gone", record_type="t", payload=b"", seq=2, deleted=True, modified_at=now),
                dict(zone_id=zb, record_id="live", record_type="t", payload=b"", seq=1, modified_at=now),
            ])
            await uow.execute(sa.insert(usage).values(account_id=a, used=5))  # b pushed only empty records: no row
            await uow.commit()
        await asyncio.to_thread(migrations.upgrade, url, "sync", where)
        async with app_db.read() as conn:
            charged = dict((await conn.execute(sa.select(usage.c.account_id, usage.c.used))).all())
        assert charged == {a: 5 + 2 * OVERHEAD, b: OVERHEAD}
        await asyncio.to_thread(migrations.downgrade, url, "sync", where, "0003")
        async with app_db.read() as conn:
            assert dict((await conn.execute(sa.select(usage.c.account_id, usage.c.used))).all()) == {a: 5, b: 0}
    finally:
        await app_db.dispose()


# --- change tokens, change tags and page tokens ------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def crafted(values: Any) -> str:
    return b64(json.dumps(values).encode())


# Tokens no call ever gave out; each must be INVALID_ARGUMENT naming its field.
NOT_TOKENS = {
    "one-megabyte": "A" * MIB,
    "garbage": "not a token, just words!",
    "not-base64-url": "a+b/c===",
    "not-utf8": b64(b"\xff\xfe\x00"),
    "nested-a-thousand-deep": b64(b"[" * 3000 + b"]" * 3000),
    "lone-surrogate": crafted([1, "\ud800", 0]),
    "nul": crafted([1, "\x00", 0]),
    "past-64-bits": crafted([1, str(uuid.uuid4()), 2**64]),
    "json-object": crafted({"after": "x"}),
}
OTHER_KINDS = {
    "backup-entries-page-token": encode_token(["a.txt"]),
    "blob-folder-page-token": encode_token([True, "report.txt"]),
    "blob-trash-page-token": encode_token(["2026-01-01T00:00:00+00:00", str(uuid.uuid4())]),
}
CHANGE_TOKENS = {**NOT_TOKENS, **OTHER_KINDS}
PAGE_TOKENS = {
    **NOT_TOKENS,
    "lone-surrogate-path": crafted(["\ud800"]),
    "nul-in-path": crafted(["a\x00"]),
    "a-change-token": rules.change_token(uuid.uuid4(), 1),
    "a-folder-page-token": encode_token([True, "x"]),
}


@pytest.mark.parametrize("token", CHANGE_TOKENS.values(), ids=CHANGE_TOKENS.keys())
async def test_a_change_token_no_fetch_gave_is_invalid_argument(known, token):
    client = known.person.client
    stub = sync_pb2_grpc.SyncServiceStub(client.channel)
    for zone in ("notes", "no-such-zone"):
        await expect_error(client.call(stub.FetchChanges, pb.FetchChangesRequest(zone=zone, change_token=token)), INVALID, field="change_token")


@pytest.mark.parametrize("token", PAGE_TOKENS.values(), ids=PAGE_TOKENS.keys())
async def test_a_backup_entries_page_token_no_page_gave_is_invalid_argument(known, token):
    client = known.person.client
    stub = sync_pb2_grpc.BackupServiceStub(client.channel)
    await expect_error(
        client.call(stub.ListBackupEntries, pb.ListBackupEntriesRequest(backup_id=known.backup_id, page_token=token)), INVALID, field="page_token"
    )


BAD_TAGS = {
    "one-megabyte-of-hex": "f" * MIB,
    "past-64-bits": "1" + "0" * 16,
    "garbage": "not a tag",
    "a-change-token": rules.change_token(uuid.uuid4(), 1),
    "zero": "0",
    "leading-zero": "01",
    "upper-case": "A",
}


@pytest.mark.parametrize("tag", BAD_TAGS.values(), ids=BAD_TAGS.keys())
async def test_a_change_tag_no_save_gave_is_invalid_argument(known, tag):
    client = known.person.client
    stub = sync_pb2_grpc.SyncServiceStub(client.channel)
    save = pb.RecordSave(record_id="n", record_type="note", payload=b"changed", change_tag=tag)
    await expect_error(client.call(stub.Push, pb.PushRequest(zone="notes", saves=[save])), INVALID, field="saves[0].change_tag")
    delete = pb.RecordDelete(record_id="n", change_tag=tag)
    await expect_error(client.call(stub.Push, pb.PushRequest(zone="notes", deletes=[delete])), INVALID, field="deletes[0].change_tag")
    assert [r.payload for r in (await client.sync.fetch_all("notes"))[0]] == [b"x"]


async def test_the_known_tokens_and_tags_are_good(known):
    """The control for the tokens and tags above: the ones the services gave out work."""
    client = known.person.client
    records, token = await client.sync.fetch_all("notes")
    assert (await client.sync.fetch("notes", token)).records == []
    stub = sync_pb2_grpc.BackupServiceStub(client.channel)
    page = await client.call(stub.ListBackupEntries, pb.ListBackupEntriesRequest(backup_id=known.backup_id, page_size=1))
    assert page.entries and not page.next_page_token
    pushed = await client.sync.push("notes", [pb.RecordSave(record_id="n", record_type="note", payload=b"x", change_tag=records[0].change_tag)])
    assert pushed.results[0].status == pb.PUSH_STATUS_SAVED


INVISIBLE = {"right-to-left-override": "phone\u202e1", "zero-width-space": "ph\u200bone", "byte-order-mark": "\ufeffphone"}


@pytest.mark.parametrize("device", INVISIBLE.values(), ids=INVISIBLE.keys())
async def test_a_device_named_with_invisible_characters_is_refused(small, owner, stored, device):
    err = await expect_error(
        create(small, owner, [header(device), *in_messages([entry(stored, "a.jpg")])]), INVALID, field="header.device_id"
    )
    assert err.reason == "INVISIBLE_CHARACTER"
    await expect_error(
        create(small, owner, [header(), *in_messages([entry(stored, f"photos/{device}.jpg")])]), INVALID, field="entries[0].path"
    )
    await expect_error(
        rpc(owner, small.sync.Push, pb.PushRequest(zone="notes", saves=[empty("r")], device_id=device)), INVALID, field="device_id"
    )
    await assert_nothing_kept(small, owner)


# --- big answers ----------------------------------------------------------------------------------------


async def test_changes_of_big_records_come_in_pages_a_client_can_take(phone_and_laptop):
    """Twenty records of a megabyte: one page of them all would be 20 MB, past the 16 MiB a
    client takes. A page ends with the record that passes 4 MiB of payloads."""
    phone, laptop = phone_and_laptop
    payloads = {f"r{i:02d}": bytes([i]) * 1_000_000 for i in range(20)}
    items = list(payloads.items())
    for start in (0, 10):
        saves = [pb.RecordSave(record_id=rid, record_type="blob", payload=data) for rid, data in items[start : start + 10]]
        await phone.client.sync.push("big", saves)
    pages: list[int] = []
    token, found = "", []
    for _ in range(30):  # bounded: 4 pages expected
        page = await laptop.client.sync.fetch("big", token, 1000)
        pages.append(len(page.records))
        found.extend(page.records)
        token = page.change_token
        if not page.more_coming:
            break
    assert [(r.record_id, r.payload) for r in found] == items
    assert pages == [5, 5, 5, 5], pages  # 4 MB before the fifth of each page: it is the last
    assert (await laptop.client.sync.fetch("big", token)).records == []
