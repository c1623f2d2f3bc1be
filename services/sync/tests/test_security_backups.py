"""Sync's backups, watches and the blob files behind them, aimed at another account.

Backups and their entries answer NOT_FOUND to anyone but their owner, a backup may only point
at the caller's own blob files, a watch announces only the caller's own zones (and nothing
once its token has expired), and BlobInternalService (DescribeFiles, DeleteFiles: what the
sync service uses behind the scenes) is for the cluster only: the gateway does not route it,
whatever the path looks like. The door of every method: test_security.py. The calls aim at the
owner's backup in the conftest's `world`."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
import uuid
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.sync.v1 import sync_pb2 as pb
from cumulo.sync.v1 import sync_pb2_grpc
from cumulo_devstack.testing import (
    Person,
    allowed_caller,
    bare_rpc_error,
    expect_error,
    invoke,
    open_channel,
    rpc_method,
    token_expiry,
    with_client_id,
)
from cumulo_sdk import CumuloRpcError

from .conftest import OWNER_DEVICE, World, manifest, save

BLOB_INTERNAL_METHODS = ["DescribeFiles", "DeleteFiles"]


def test_blobs_internal_methods_tried_here_exist():
    blob_internal = {m.name for m in blob_pb2.DESCRIPTOR.services_by_name["BlobInternalService"].methods}
    assert set(BLOB_INTERNAL_METHODS) <= blob_internal


# --- a watch lives as long as its token ---------------------------------------------------------


async def read_next(stream: Any, timeout: float = 20) -> Any:
    """The stream's next message but heartbeats; a failure is raised as a CumuloRpcError."""
    while True:
        try:
            message = await asyncio.wait_for(stream.read(), timeout)
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None
        if message is grpc.aio.EOF or message.event != pb.WATCH_EVENT_HEARTBEAT:
            return message


async def test_a_watch_announces_nothing_once_its_token_has_expired(gateway, people, sync_clock, clock):
    person = await people.new()
    watcher_token = await person.token()
    expires_at = token_expiry(watcher_token)
    async with open_channel(gateway) as channel:
        stream = sync_pb2_grpc.SyncServiceStub(channel).Watch(pb.WatchRequest(), metadata=with_client_id(watcher_token), timeout=90)
        try:
            assert (await read_next(stream)).event == pb.WATCH_EVENT_WATCHING
            # A second token of the same account that outlives the watcher's: auth issues it
            # ten minutes "later"; then the sync service's time passes the watcher's end only.
            clock.advance(dt.timedelta(minutes=10))
            await person.client.access_token(force_refresh=True)
            assert token_expiry(await person.token()) > expires_at + 300
            sync_clock.advance(dt.timedelta(seconds=expires_at - time.time() + 60))
            pushed = await person.client.sync.push("notes", [save("after-expiry", b"x", record_type="note")])
            assert pushed.results[0].status == pb.PUSH_STATUS_SAVED
            try:
                message = await read_next(stream, timeout=45)
            except CumuloRpcError as err:
                assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED"), err
            else:
                pytest.fail(f"the watch announced {message} after its token expired")
        finally:
            stream.cancel()


# --- backups --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GetBackup", "ListBackupEntries", "DeleteBackup"])
async def test_the_strangers_calls_with_the_owners_backup_id_are_not_found(world, method):
    stub = world.stranger.client.backups.stub
    request = getattr(pb, f"{method}Request")(backup_id=world.backup.backup_id)
    err = await expect_error(world.stranger.client.call(getattr(stub, method), request), grpc.StatusCode.NOT_FOUND, reason="BACKUP_NOT_FOUND")
    # The same answer as for a backup that never was.
    never = await expect_error(
        world.stranger.client.call(getattr(stub, method), getattr(pb, f"{method}Request")(backup_id=str(uuid.uuid4()))),
        grpc.StatusCode.NOT_FOUND,
    )
    assert (never.reason, never.message, never.metadata) == (err.reason, err.message, err.metadata)
    # The backup stays, whole.
    kept = await world.owner.client.backups.get(world.backup.backup_id)
    assert (kept.entry_count, kept.total_size) == (world.backup.entry_count, world.backup.total_size)
    assert await world.owner.client.backups.entries(world.backup.backup_id) == world.entries


@pytest.mark.parametrize("device_id", ["", OWNER_DEVICE])
async def test_the_strangers_list_backups_shows_none_of_the_owners(world, device_id):
    assert await world.stranger.client.backups.list(device_id) == []


async def create_backup(person: Person, device_id: str, entries: Sequence[pb.BackupEntry], gateway: str) -> pb.CreateBackupResponse:
    return await invoke(gateway, rpc_method("/cumulo.sync.v1.BackupService/CreateBackup"), manifest(device_id, entries), await person.metadata(), timeout=30)


async def test_a_strangers_backup_of_the_owners_files_is_refused(gateway, world):
    """The entries name the owner's blob files exactly (id, size, SHA-256): no file of the
    stranger's, so nothing is stored."""
    for device_id in ("stranger-laptop", OWNER_DEVICE):
        err = await expect_error(
            create_backup(world.stranger, device_id, world.entries, gateway),
            grpc.StatusCode.FAILED_PRECONDITION,
            reason="BACKUP_FILE_MISSING",
        )
        assert err.field == "entries[0].file_id", err
        assert world.entries[0].sha256 not in err.message
    assert await world.stranger.client.backups.list() == []


async def test_a_strangers_backup_mixing_its_own_file_with_the_owners_is_refused(gateway, world, tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_bytes(b"the stranger's own file\n")
    node = await world.stranger.client.files.upload(mine)
    own = pb.BackupEntry(path="mine.txt", file_id=node.node_id, size=node.size, sha256=node.sha256)
    stolen = pb.BackupEntry(path="stolen.jpg", file_id=world.entries[0].file_id, size=world.entries[0].size, sha256=world.entries[0].sha256)
    err = await expect_error(
        create_backup(world.stranger, "stranger-laptop", [own, stolen], gateway),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="BACKUP_FILE_MISSING",
    )
    assert err.field == "entries[1].file_id", err
    assert await world.stranger.client.backups.list() == []
    await world.stranger.client.files.delete(node.node_id)


async def test_a_file_shared_with_the_stranger_is_still_not_the_strangers_to_back_up(gateway, people, tmp_path):
    owner, stranger = await people.new(), await people.new()
    photo = tmp_path / "shared.jpg"
    photo.write_bytes(secrets.token_bytes(10_000))
    node = await owner.client.files.upload(photo)
    await owner.client.files.share_with(node.node_id, stranger.email)
    assert [s.node_id for s in await stranger.client.files.shared_with_me()] == [node.node_id]
    entry = pb.BackupEntry(path="shared.jpg", file_id=node.node_id, size=node.size, sha256=node.sha256)
    err = await expect_error(create_backup(stranger, "stranger-laptop", [entry], gateway), grpc.StatusCode.FAILED_PRECONDITION, reason="BACKUP_FILE_MISSING")
    assert err.field == "entries[0].file_id"
    assert await stranger.client.backups.list() == []


async def test_the_owners_own_delete_backup_works_where_the_strangers_was_not_found(people, tmp_path):
    """The control for the stranger's DeleteBackup: the same call by the owner deletes it."""
    owner, stranger = await people.new(), await people.new()
    (tmp_path / "a.txt").write_bytes(b"owner's a\n")
    backup_id = (await owner.client.backups.create(tmp_path, device_id="laptop")).backup.backup_id
    await expect_error(stranger.client.backups.delete(backup_id), grpc.StatusCode.NOT_FOUND, reason="BACKUP_NOT_FOUND")
    assert (await owner.client.backups.get(backup_id)).backup_id == backup_id
    await owner.client.backups.delete(backup_id)
    await expect_error(owner.client.backups.get(backup_id), grpc.StatusCode.NOT_FOUND, reason="BACKUP_NOT_FOUND")


async def describe(blob: Any, account_id: str, file_ids: Sequence[str]) -> dict[str, blob_pb2.Node]:
    """The account's files among file_ids, asked of blob inside the cluster."""
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as channel:
        answer = await channel.DescribeFiles(
            blob_pb2.DescribeFilesRequest(account_id=account_id, node_ids=list(file_ids)), timeout=10
        )
    return {n.node_id: n for n in answer.files}


async def test_a_strangers_pruned_backups_under_the_owners_device_id_release_only_its_own_files(gateway, people, sync, blob, tmp_path):
    """The stranger names its device as the owner's does; its backups beyond the kept number
    are pruned and their files released and deleted, all within its own account."""
    owner, stranger = await people.new(), await people.new()
    folder = tmp_path / "owner"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"owner's a\n")
    owned = await owner.client.backups.create(folder, device_id="laptop", device_name="laptop")
    owner_files = [e.file_id for e in await owner.client.backups.entries(owned.backup.backup_id)]
    kept = sync.app.settings.backups_kept
    made: list[str] = []
    for i in range(kept + 1):
        own = tmp_path / f"stranger-{i}"
        own.mkdir()
        (own / "a.txt").write_bytes(f"stranger's a, version {i}\n".encode())
        made.append((await stranger.client.backups.create(own, device_id="laptop", device_name="laptop")).backup.backup_id)
    assert [b.backup_id for b in await stranger.client.backups.list("laptop")] == list(reversed(made[1:]))
    await sync.app.backups.release_files()
    assert [b.backup_id for b in await owner.client.backups.list()] == [owned.backup.backup_id]
    assert set(await describe(blob, owner.account_id, owner_files)) == set(owner_files)
    restored = tmp_path / "restored"
    assert await owner.client.backups.restore(owned.backup.backup_id, restored) == 1
    assert (restored / "a.txt").read_bytes() == b"owner's a\n"


# --- Watch --------------------------------------------------------------------------------------


@pytest.mark.parametrize("watched", ["every-zone", "the-zone-by-name"])
async def test_a_strangers_watch_never_hears_of_the_owners_changes(gateway, people, watched):
    """Both watch; the owner pushes to a zone, then the stranger to its zone of the same name.
    The announcements go out in that order, so had the owner's reached the stranger's
    stream it would come first: the first change the stranger hears must be its own."""
    owner, stranger = await people.new(), await people.new()
    zone = "diary"
    request = pb.WatchRequest(zones=[zone] if watched == "the-zone-by-name" else [])
    async with open_channel(gateway) as channel:
        stub = sync_pb2_grpc.SyncServiceStub(channel)
        theirs = stub.Watch(request, metadata=await stranger.metadata(), timeout=90)
        mine = stub.Watch(request, metadata=await owner.metadata(), timeout=90)
        try:
            assert (await read_next(theirs)).event == pb.WATCH_EVENT_WATCHING
            assert (await read_next(mine)).event == pb.WATCH_EVENT_WATCHING
            owners = await owner.client.sync.push(zone, [save("d1", b"owner's entry", record_type="entry")])
            strangers = await stranger.client.sync.push(zone, [save("d1", b"stranger's entry", record_type="entry")])
            assert owners.change_token != strangers.change_token
            heard = await read_next(mine)  # the control: the owner hears its own change
            assert (heard.event, heard.zone, heard.change_token) == (pb.WATCH_EVENT_ZONE_CHANGED, zone, owners.change_token)
            heard = await read_next(theirs)
            assert (heard.event, heard.zone, heard.change_token) == (pb.WATCH_EVENT_ZONE_CHANGED, zone, strangers.change_token)
        finally:
            theirs.cancel()
            mine.cancel()


# --- blob's internal API -----------------------------------------------------------------------


def blob_internal_request(method: str, world: World) -> Any:
    files = [e.file_id for e in world.entries]
    if method == "DescribeFiles":
        return blob_pb2.DescribeFilesRequest(account_id=world.owner.account_id, node_ids=files)
    return blob_pb2.DeleteFilesRequest(account_id=world.owner.account_id, node_ids=files, reason="through the gateway", actor="intruder")


@pytest.mark.parametrize("credentials", ["none", "client-id", "client-id-and-token"])
@pytest.mark.parametrize("method", BLOB_INTERNAL_METHODS)
async def test_blobs_internal_file_methods_are_not_routed_by_the_gateway(gateway, blob, world, method, credentials):
    metadata = {
        "none": None,
        "client-id": with_client_id(),
        "client-id-and-token": with_client_id(await world.stranger.token()),
    }[credentials]
    err = await bare_rpc_error(gateway, blob_pb2_grpc.BlobInternalServiceStub, method, blob_internal_request(method, world), metadata=metadata)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED, err
    files = [e.file_id for e in world.entries]
    assert set(await describe(blob, world.owner.account_id, files)) == set(files)


INTERNAL = "cumulo.blob.v1.BlobInternalService"


@pytest.mark.parametrize(
    "path",
    [
        f"/cumulo.blob.v1.BlobService/../{INTERNAL}/DeleteFiles",
        f"/cumulo.sync.v1.BackupService/../{INTERNAL}/DeleteFiles",
        f"/cumulo.blob.v1.BlobService/%2e%2e/{INTERNAL}/DeleteFiles",
        f"/cumulo.sync.v1.SyncService//{INTERNAL}/DeleteFiles",
        "/cumulo.blob.v1.BlobService/DeleteFiles",
        "/cumulo.sync.v1.BackupService/DeleteFiles",
        f"//{INTERNAL}/DeleteFiles",
        f"/{INTERNAL}/DeleteFiles?/cumulo.blob.v1.BlobService/",
        f"/{INTERNAL.lower()}/DeleteFiles",
        f"/{INTERNAL.upper()}/DeleteFiles",
    ],
    ids=[
        "dot-dot", "dot-dot-from-sync", "encoded-dot-dot", "double-slash", "blob-public-prefix", "sync-public-prefix",
        "leading-double-slash", "query", "lower-case", "upper-case",
    ],
)
async def test_no_path_reaches_blobs_delete_files_through_the_gateway(gateway, blob, world, path):
    request = blob_internal_request("DeleteFiles", world)
    async with open_channel(gateway) as channel:
        call = channel.unary_unary(
            path, request_serializer=blob_pb2.DeleteFilesRequest.SerializeToString, response_deserializer=blob_pb2.DeleteFilesResponse.FromString
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=with_client_id(await world.stranger.token()), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, caught.value
    files = [e.file_id for e in world.entries]
    assert set(await describe(blob, world.owner.account_id, files)) == set(files)


async def test_blobs_internal_describe_files_answers_inside_the_cluster_for_the_named_account_only(blob, world):
    """The control: straight to blob, DescribeFiles answers; asked for the stranger's
    account, the owner's files are not there."""
    files = [e.file_id for e in world.entries]
    found = await describe(blob, world.owner.account_id, files)
    assert {(n.node_id, n.size, n.sha256) for n in found.values()} == {(e.file_id, e.size, e.sha256) for e in world.entries}
    assert await describe(blob, world.stranger.account_id, files) == {}


async def test_the_owners_backup_and_files_are_untouched(blob, world):
    """Runs last: the owner's backup and its files are as the setup left them."""
    assert [b.backup_id for b in await world.owner.client.backups.list()] == [world.backup.backup_id]
    assert await world.owner.client.backups.entries(world.backup.backup_id) == world.entries
    files = [e.file_id for e in world.entries]
    found = await describe(blob, world.owner.account_id, files)
    assert set(found) == set(files) and not any(n.HasField("trashed_at") for n in found.values())
