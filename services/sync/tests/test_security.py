"""Who may call the sync service's public API, and on whose data, through the gateway.

Every method of SyncService and BackupService is behind the platform's door (a registered
client id and a genuine, unexpired access token), and only ever reaches the token's own
account: zones are per account (another account's zone of the same name is another zone),
change tokens name their zone's id, backups and their entries answer NOT_FOUND to anyone
else, and Watch announces only the caller's own zones (backups, watches and blob's internal
API in depth: test_security_backups.py).

The calls of other accounts aim at the `owner` of the conftest's `world` (its zone "notes", its
backup, its blob files); the last test looks that none of them changed anything."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo.sync.v1 import sync_pb2 as pb
from cumulo_devstack.testing import assert_gated, expect_error, gate_cases, invoke, public_methods, public_services
from cumulo_sdk import CumuloRpcError
from cumulo_sync.domain import rules

from .conftest import OWNER_DEVICE, ZED, World, manifest, save, token_values

# "Service/Method" -> its descriptor: every method of the public API, from the proto.
METHODS = public_methods(pb)


def summary(records: Sequence[pb.Record]) -> list[tuple[Any, ...]]:
    return [(r.record_id, r.record_type, r.payload, r.change_tag, r.deleted, r.modified_by_device) for r in records]


def request_for(method: str, world: World) -> Any:
    """Each method aimed at the owner's data: had a refused call gone through with the
    owner's identity, the owner's note, zone or backup would have changed."""
    n1 = world.owner_records["notes"][0]
    backup_id = world.backup.backup_id
    requests = {
        "SyncService/ListZones": pb.ListZonesRequest(),
        "SyncService/DeleteZone": pb.DeleteZoneRequest(zone="notes"),
        "SyncService/Push": pb.PushRequest(
            zone="notes", saves=[save("planted", b"not the owner's", record_type="note")],
            deletes=[pb.RecordDelete(record_id="n1", change_tag=n1.change_tag)], device_id="intruder",
        ),
        "SyncService/FetchChanges": pb.FetchChangesRequest(zone="notes"),
        "SyncService/GetRecords": pb.GetRecordsRequest(zone="notes", record_ids=["n1"]),
        "SyncService/Watch": pb.WatchRequest(),
        "SyncService/GetSyncUsage": pb.GetSyncUsageRequest(),
        "BackupService/CreateBackup": manifest(OWNER_DEVICE, world.entries),
        "BackupService/ListBackups": pb.ListBackupsRequest(device_id=OWNER_DEVICE),
        "BackupService/GetBackup": pb.GetBackupRequest(backup_id=backup_id),
        "BackupService/ListBackupEntries": pb.ListBackupEntriesRequest(backup_id=backup_id),
        "BackupService/DeleteBackup": pb.DeleteBackupRequest(backup_id=backup_id),
    }
    return requests[method]


def test_every_method_is_tried_with_another_accounts_token():
    """A method added later must be aimed at the owner (request_for) and the bystander's
    answer said (BYSTANDER_GETS)."""
    assert sorted(METHODS) == sorted(BYSTANDER_GETS)


# --- the door -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, case", gate_cases(public_services(pb)))
async def test_every_method_is_gated(sync, signing_key, method, case):
    """Every kind of bad token is tried on the platform's interceptor (libs/cumulo_platform/tests)."""
    await assert_gated(sync.target, method, case, signing_key)


# --- the control: another account's genuine token ----------------------------------------------

# What the bystander (a genuine, unrelated account) gets for the very calls aimed at the
# owner above: None for an answer, else (code, reason). Never the owner's data.
BYSTANDER_GETS: dict[str, Any] = {
    "SyncService/ListZones": None,
    "SyncService/DeleteZone": "its-own",  # its own "notes", if the Push below made one, or none
    "SyncService/Push": None,
    "SyncService/FetchChanges": None,
    "SyncService/GetRecords": None,
    "SyncService/Watch": None,
    "SyncService/GetSyncUsage": None,
    "BackupService/CreateBackup": (grpc.StatusCode.FAILED_PRECONDITION, "BACKUP_FILE_MISSING"),
    "BackupService/ListBackups": None,
    "BackupService/GetBackup": (grpc.StatusCode.NOT_FOUND, "BACKUP_NOT_FOUND"),
    "BackupService/ListBackupEntries": (grpc.StatusCode.NOT_FOUND, "BACKUP_NOT_FOUND"),
    "BackupService/DeleteBackup": (grpc.StatusCode.NOT_FOUND, "BACKUP_NOT_FOUND"),
}


@pytest.mark.parametrize("method", METHODS)
async def test_another_accounts_genuine_token_gets_past_the_gate_and_only_to_its_own(gateway, world, method):
    """The calls aimed at the owner, with another account's genuine token, reach only that
    account (and the request shapes are right: a genuine token is let in)."""
    request = request_for(method, world)
    expected = BYSTANDER_GETS[method]
    metadata = await world.bystander.metadata()
    if isinstance(expected, tuple):
        await expect_error(invoke(gateway, METHODS[method], request, metadata), expected[0], reason=expected[1])
        return
    if expected == "its-own":
        try:
            answer = await invoke(gateway, METHODS[method], request, metadata)
        except CumuloRpcError as err:
            assert (err.code, err.reason) == (grpc.StatusCode.NOT_FOUND, "ZONE_NOT_FOUND"), err
        else:
            assert answer.records_deleted <= 1  # at most its own "planted"
        return
    answer = await invoke(gateway, METHODS[method], request, metadata)
    owners = {r.payload for records in world.owner_records.values() for r in records}
    if method == "SyncService/ListZones":
        assert all(z.name == "notes" and z.record_count <= 1 for z in answer.zones), answer
    elif method == "SyncService/Push":
        # the owner's n1 is no record of the bystander's: its delete finds nothing to delete
        assert [(r.record_id, r.status, r.change_tag) for r in answer.results][1] == ("n1", pb.PUSH_STATUS_DELETED, "")
    elif method in ("SyncService/FetchChanges", "SyncService/GetRecords"):
        assert {r.record_id for r in answer.records} <= {"planted"}
        assert not {r.payload for r in answer.records} & owners
    elif method == "SyncService/Watch":
        assert answer.event == pb.WATCH_EVENT_WATCHING
    elif method == "SyncService/GetSyncUsage":
        assert answer.used <= len(b"not the owner's") + rules.RECORD_OVERHEAD_BYTES  # its own "planted" at most
    elif method == "BackupService/ListBackups":
        assert list(answer.backups) == []


# --- records: another account's zone of the same name is another zone ------------------------


@pytest.mark.parametrize("zone", ["contacts", "notes"], ids=["both-have-it", "only-the-owner-has-it"])
async def test_the_strangers_fetch_changes_on_the_same_zone_name_sees_only_its_own(world, zone):
    records, token = await world.stranger.client.sync.fetch_all(zone)
    if zone == "contacts":
        assert summary(records) == summary(world.stranger_records)
        assert token == world.stranger_token
        assert token_values(token)[1] != world.owner_zone_id(zone)
    else:
        assert records == [] and token == ""


@pytest.mark.parametrize("zone", ["contacts", "notes"], ids=["both-have-it", "only-the-owner-has-it"])
async def test_the_strangers_get_records_with_the_owners_ids_finds_nothing_of_the_owners(world, zone):
    owners = world.owner_records[zone]
    found = await world.stranger.client.sync.get(zone, [r.record_id for r in owners] + ["zed"])
    if zone == "contacts":
        assert summary(found) == summary(world.stranger_records)  # its own zed only
    else:
        assert found == []


async def test_the_strangers_zones_and_usage_are_its_own(world):
    zones = await world.stranger.client.sync.zones()
    assert [(z.name, z.record_count, z.bytes) for z in zones] == [("contacts", 1, len(ZED))]
    assert (await world.stranger.client.sync.usage()).used == len(ZED) + rules.RECORD_OVERHEAD_BYTES


async def test_the_strangers_push_with_the_owners_change_tags_reveals_and_changes_nothing(world):
    ann, bob = world.owner_records["contacts"]
    pushed = await world.stranger.client.sync.push(
        "contacts",
        [save("ann", b"overwritten by the stranger", ann.change_tag)],
        [pb.RecordDelete(record_id="bob", change_tag=bob.change_tag)],
        atomic=True,
    )
    conflict, other = pushed.results
    assert conflict.status == pb.PUSH_STATUS_CONFLICT and other.status == pb.PUSH_STATUS_NOT_APPLIED
    # The server's side of the conflict is the stranger's own (no such record): nothing of Ann.
    server = conflict.server_record
    assert (server.record_id, server.payload, server.record_type, server.change_tag, server.modified_by_device) == ("ann", b"", "", "", "")
    assert server.deleted and not server.modified_at.seconds
    assert summary(await world.owner.client.sync.get("contacts", ["ann", "bob"])) == summary(world.owner_records["contacts"])
    assert summary((await world.stranger.client.sync.fetch_all("contacts"))[0]) == summary(world.stranger_records)


async def test_the_strangers_delete_zone_deletes_only_its_own_zone_of_that_name(people):
    owner, stranger = await people.new(), await people.new()
    await owner.client.sync.push("calendar", [save("e1", b"owner's"), save("e2", b"owner's")])
    await owner.client.sync.push("health", [save("h1", b"owner's pulse")])
    await stranger.client.sync.push("calendar", [save("e1", b"stranger's")])
    await expect_error(stranger.client.sync.delete_zone("health"), grpc.StatusCode.NOT_FOUND, reason="ZONE_NOT_FOUND")
    assert await stranger.client.sync.delete_zone("calendar") == 1
    assert await stranger.client.sync.zones() == []
    assert [(z.name, z.record_count) for z in await owner.client.sync.zones()] == [("calendar", 2), ("health", 1)]
    records, _ = await owner.client.sync.fetch_all("calendar")
    assert [(r.record_id, r.payload) for r in records] == [("e1", b"owner's"), ("e2", b"owner's")]


# --- change tokens name their zone ------------------------------------------------------------


def made_up_token(seq: int = 1) -> str:
    return rules.change_token(uuid.uuid4(), seq)


@pytest.mark.parametrize("zone", ["contacts", "notes"], ids=["stranger-has-a-zone-of-that-name", "stranger-has-none"])
@pytest.mark.parametrize("kind", ["owners-token", "owners-zone-from-the-start", "owners-zone-far-ahead"])
async def test_the_owners_change_token_is_expired_for_the_stranger_and_reveals_nothing(world, zone, kind):
    owners = world.owner_tokens[zone]
    token = {
        "owners-token": owners,
        "owners-zone-from-the-start": rules.change_token(uuid.UUID(world.owner_zone_id(zone)), 0),
        "owners-zone-far-ahead": rules.change_token(uuid.UUID(world.owner_zone_id(zone)), 10**9),
    }[kind]
    err = await expect_error(
        world.stranger.client.sync.fetch(zone, token), grpc.StatusCode.FAILED_PRECONDITION, reason="CHANGE_TOKEN_EXPIRED"
    )
    assert world.owner_zone_id(zone) not in err.message and world.owner.account_id not in err.message
    assert "ann" not in err.message and "n1" not in err.message
    assert err.metadata == {}
    # Just what a token of a zone that never existed gets: nothing tells the owner's zone apart.
    other = await expect_error(world.stranger.client.sync.fetch(zone, made_up_token()), grpc.StatusCode.FAILED_PRECONDITION)
    assert (other.reason, other.message, other.metadata) == (err.reason, err.message, err.metadata)


async def test_the_owners_change_tokens_still_work_for_the_owner_only_in_their_zone(world):
    """The control: the owner's token fetches (nothing new) in its own zone; in another
    zone of the owner's it is expired too."""
    for zone, token in world.owner_tokens.items():
        page = await world.owner.client.sync.fetch(zone, token)
        assert list(page.records) == [] and page.change_token == token
    await expect_error(
        world.owner.client.sync.fetch("notes", world.owner_tokens["contacts"]),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="CHANGE_TOKEN_EXPIRED",
    )


# --- the owner -----------------------------------------------------------------------------------


async def test_the_owner_is_untouched_by_everything_aimed_at_it(world):
    """Runs last: the owner's zones, records, change order, usage, backup and files are as
    the setup left them."""
    sync = world.owner.client.sync
    assert [(z.name, z.record_count, z.bytes) for z in await sync.zones()] == world.owner_zones
    assert (await sync.usage()).used == world.owner_usage
    for zone, records in world.owner_records.items():
        assert summary((await sync.fetch_all(zone))[0]) == summary(records)
        assert await sync.fetch_all(zone, world.owner_tokens[zone]) == ([], world.owner_tokens[zone])
    assert [b.backup_id for b in await world.owner.client.backups.list()] == [world.backup.backup_id]
    assert await world.owner.client.backups.entries(world.backup.backup_id) == world.entries
    for entry in world.entries:
        node = (await world.owner.client.call(world.owner.client.files.stub.Stat, blob_pb2.StatRequest(node_id=entry.file_id))).node
        assert not node.HasField("trashed_at")
