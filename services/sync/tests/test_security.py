"""Who may call the sync service's public API, and on whose data, through the gateway.

Every method of SyncService and BackupService wants a registered client id and a genuine,
unexpired access token, and only ever reaches the token's own account: zones are per account
(another account's zone of the same name is another zone), change tokens name their zone's
id, backups and their entries answer NOT_FOUND to anyone else, a backup may only point at
the caller's own blob files, and Watch announces only the caller's own zones.
BlobInternalService (DescribeFiles, DeleteFiles: what the sync service uses behind the
scenes) is for the cluster only: the gateway does not route it, whatever the path looks like.

The refused calls aim at the module's `owner` (its zone "notes", its backup, its blob
files); the last test looks that none of them changed anything."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import jwt
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.sync.v1 import sync_pb2 as pb
from cumulo.sync.v1 import sync_pb2_grpc
from cumulo_devstack.testing import FORGERIES, PASSWORD, bare_rpc_error, expect_error, forge_token, unique_email
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sync.domain import rules

SERVICES = {name: pb.DESCRIPTOR.services_by_name[name] for name in ("SyncService", "BackupService")}
STUBS = {"SyncService": sync_pb2_grpc.SyncServiceStub, "BackupService": sync_pb2_grpc.BackupServiceStub}
# "Service/Method" -> (client streaming, server streaming), from the descriptor.
SHAPES = {
    f"{service}/{method.name}": (method.client_streaming, method.server_streaming)
    for service, descriptor in SERVICES.items()
    for method in descriptor.methods
}
METHODS = list(SHAPES)
UNARY, SERVER_STREAM, CLIENT_STREAM = (False, False), (False, True), (True, False)
# What this file tries, and in which call shape: a method added later must be added here.
TRIED = {
    "SyncService/ListZones": UNARY,
    "SyncService/DeleteZone": UNARY,
    "SyncService/Push": UNARY,
    "SyncService/FetchChanges": UNARY,
    "SyncService/GetRecords": UNARY,
    "SyncService/Watch": SERVER_STREAM,
    "SyncService/GetSyncUsage": UNARY,
    "BackupService/CreateBackup": CLIENT_STREAM,
    "BackupService/ListBackups": UNARY,
    "BackupService/GetBackup": UNARY,
    "BackupService/ListBackupEntries": UNARY,
    "BackupService/DeleteBackup": UNARY,
}
BLOB_INTERNAL_METHODS = ["DescribeFiles", "DeleteFiles"]


def test_every_method_of_both_services_is_tried_in_its_call_shape():
    """A method (or service) added later must be added to TRIED, and so be tried below."""
    assert set(pb.DESCRIPTOR.services_by_name) == set(SERVICES)
    assert SHAPES == TRIED
    blob_internal = {m.name for m in blob_pb2.DESCRIPTOR.services_by_name["BlobInternalService"].methods}
    assert set(BLOB_INTERNAL_METHODS) <= blob_internal


# --- people --------------------------------------------------------------------------------


@dataclasses.dataclass
class Person:
    client: Cumulo
    email: str
    account_id: str

    async def token(self) -> str:
        return await self.client.access_token()

    async def metadata(self) -> list[tuple[str, str]]:
        return self.client.metadata(await self.token())


class People:
    """Accounts registered and logged in through the gateway."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.clients: list[Cumulo] = []

    async def new(self, device_name: str = "security test") -> Person:
        client = Cumulo(self.gateway)
        self.clients.append(client)
        address = unique_email()
        await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
        account = await client.login(address, PASSWORD, device_name=device_name)
        return Person(client, address, account.account_id)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture(scope="module")
async def module_people(gateway, sync) -> AsyncIterator[People]:  # type: ignore[no-untyped-def]
    people = People(gateway)
    yield people
    await people.close()


@pytest.fixture
async def people(gateway, sync) -> AsyncIterator[People]:  # type: ignore[no-untyped-def]
    people = People(gateway)
    yield people
    await people.close()


def save(record_id: str, payload: bytes, tag: str = "", record_type: str = "contact") -> pb.RecordSave:
    return pb.RecordSave(record_id=record_id, record_type=record_type, payload=payload, change_tag=tag)


def summary(records: Sequence[pb.Record]) -> list[tuple[Any, ...]]:
    return [(r.record_id, r.record_type, r.payload, r.change_tag, r.deleted, r.modified_by_device) for r in records]


@dataclasses.dataclass
class World:
    """The owner's records, change tokens and backup; the stranger's own zone "contacts"
    (same name as the owner's); a bystander that owns nothing of interest."""

    owner: Person
    stranger: Person
    bystander: Person
    owner_records: dict[str, list[pb.Record]]  # zone -> records as fetched after the setup
    owner_tokens: dict[str, str]  # zone -> change token after the setup
    owner_zones: list[tuple[str, int, int]]
    owner_usage: int
    backup: pb.Backup
    entries: list[pb.BackupEntry]
    stranger_records: list[pb.Record]
    stranger_token: str

    def owner_zone_id(self, zone: str) -> str:
        return token_values(self.owner_tokens[zone])[1]


def token_values(token: str) -> list[Any]:
    return json.loads(base64.urlsafe_b64decode(token.encode()))


OWNER_DEVICE = "owner-laptop"
ZED = b'{"name": "Zed, the stranger\'s own"}'


@pytest.fixture(scope="module")
async def world(module_people, tmp_path_factory) -> World:  # type: ignore[no-untyped-def]
    owner, stranger, bystander = await module_people.new("owner"), await module_people.new("stranger"), await module_people.new("bystander")
    await owner.client.sync.push(
        "contacts", [save("ann", b'{"name": "Ann", "phone": "+15550100"}'), save("bob", b'{"name": "Bob"}')], device_id="owner-phone"
    )
    await owner.client.sync.push("notes", [save("n1", b"the owner's secret note", record_type="note")], device_id="owner-phone")
    records, tokens = {}, {}
    for zone in ("contacts", "notes"):
        records[zone], tokens[zone] = await owner.client.sync.fetch_all(zone)
    zones = [(z.name, z.record_count, z.bytes) for z in await owner.client.sync.zones()]
    assert zones == [("contacts", 2, sum(len(r.payload) for r in records["contacts"])), ("notes", 1, len(records["notes"][0].payload))]

    await stranger.client.sync.push("contacts", [save("zed", ZED)], device_id="stranger-phone")
    stranger_records, stranger_token = await stranger.client.sync.fetch_all("contacts")
    assert [r.record_id for r in stranger_records] == ["zed"]

    folder = tmp_path_factory.mktemp("owner-files")
    (folder / "photos").mkdir()
    (folder / "photos" / "beach.jpg").write_bytes(secrets.token_bytes(70_000))
    (folder / "diary.txt").write_bytes(b"dear diary, nobody else may read this\n")
    report = await owner.client.backups.create(folder, device_id=OWNER_DEVICE, device_name="Owner's laptop")
    entries = await owner.client.backups.entries(report.backup.backup_id)
    assert sorted(e.path for e in entries) == ["diary.txt", "photos/beach.jpg"]
    return World(
        owner=owner, stranger=stranger, bystander=bystander,
        owner_records=records, owner_tokens=tokens, owner_zones=zones,
        owner_usage=(await owner.client.sync.usage()).used,
        backup=report.backup, entries=entries,
        stranger_records=stranger_records, stranger_token=stranger_token,
    )


@pytest.fixture
def sync_clock(sync):  # type: ignore[no-untyped-def]
    """The sync service's clock (which judges token expiry); put back afterwards."""
    before = sync.clock.offset
    yield sync.clock
    sync.clock.offset = before


@pytest.fixture(scope="module")
async def signing_key(auth) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(auth.target) as channel:
        response = await auth_pb2_grpc.AuthInternalServiceStub(channel).GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=10)
    assert response.keys
    return response.keys[0].key_id, response.keys[0].public_key


# --- calls in every shape --------------------------------------------------------------------


def with_client_id(token: str | None = None, client_id: str = "cumulo-cli") -> list[tuple[str, str]]:
    metadata = [("x-cumulo-client-id", client_id)]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    return metadata


def manifest(device_id: str, entries: Sequence[pb.BackupEntry]) -> list[pb.CreateBackupRequest]:
    return [
        pb.CreateBackupRequest(header=pb.BackupHeader(device_id=device_id, device_name="security test")),
        pb.CreateBackupRequest(entries=pb.BackupEntries(entries=list(entries))),
    ]


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


async def invoke(target: str, method: str, request: Any, metadata: list[tuple[str, str]] | None, *, timeout: float = 10) -> Any:
    """One call of `method` ("Service/Method") to `target` in its shape, through a bare stub
    (no SDK: nothing is added to `metadata`). The answer; for Watch, its first message.
    A failure is raised as a CumuloRpcError."""
    service, name = method.split("/")
    client_streaming, server_streaming = SHAPES[method]
    async with grpc.aio.insecure_channel(target) as channel:
        multicallable = getattr(STUBS[service](channel), name)
        try:
            if client_streaming:
                async def messages() -> AsyncIterator[Any]:
                    for message in request:
                        yield message

                return await multicallable(messages(), metadata=metadata, timeout=timeout)
            if server_streaming:
                call = multicallable(request, metadata=metadata, timeout=timeout)
                try:
                    first = await asyncio.wait_for(call.read(), timeout)
                finally:
                    call.cancel()
                assert first is not grpc.aio.EOF, f"{method} ended without a message"
                return first
            return await multicallable(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None


# --- client id --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_client_id_is_refused_at_the_gateway(gateway, world, method):
    err = await expect_error(
        invoke(gateway, method, request_for(method, world), [("authorization", f"Bearer {await world.owner.token()}")]),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )
    assert "x-cumulo-client-id" in err.message


@pytest.mark.parametrize("client_id", ["not-a-registered-app", ""], ids=["unregistered", "empty"])
@pytest.mark.parametrize("method", METHODS)
async def test_a_client_id_that_names_no_registered_app_is_refused(gateway, world, method, client_id):
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(await world.owner.token(), client_id)),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_client_id_is_refused_by_the_service_itself(sync, world, method):
    """Behind the gateway too: the service checks the client id again."""
    await expect_error(
        invoke(sync.target, method, request_for(method, world), [("authorization", f"Bearer {await world.owner.token()}")]),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )


# --- no token, expired token --------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_a_token_is_unauthenticated(gateway, world, method):
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id()),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "bearer x", "Bearer", ""])
@pytest.mark.parametrize("method", METHODS)
async def test_an_authorization_that_is_not_a_bearer_token_counts_as_missing(gateway, world, method, authorization):
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id() + [("authorization", authorization)]),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


def expiry_of(token: str) -> float:
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_with_an_expired_token_is_unauthenticated(gateway, world, sync_clock, method):
    token = await world.owner.token()
    # The sync service judges expiry by its own clock: a minute past the token's end.
    sync_clock.advance(dt.timedelta(seconds=expiry_of(token) - time.time() + 60))
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(token)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_EXPIRED",
    )


@pytest.mark.parametrize("method", ["SyncService/ListZones", "SyncService/Watch", "BackupService/GetBackup"])
async def test_a_token_shortly_before_its_expiry_still_works(gateway, world, sync_clock, method):
    """The control for the expiry: the same token, half a minute before its end."""
    token = await world.owner.token()
    sync_clock.advance(dt.timedelta(seconds=expiry_of(token) - time.time() - 30))
    answer = await invoke(gateway, method, request_for(method, world), with_client_id(token))
    if method == "SyncService/ListZones":
        assert [z.name for z in answer.zones] == ["contacts", "notes"]
    elif method == "SyncService/Watch":
        assert answer.event == pb.WATCH_EVENT_WATCHING
    else:
        assert answer.backup.backup_id == world.backup.backup_id


# --- forged tokens --------------------------------------------------------------------------------


# All but "tampered-claims": the edited payload tried here names the owner, in the stranger's token.
SYNC_FORGERIES = [kind for kind in FORGERIES if kind != "tampered-claims"]


@pytest.mark.parametrize("forgery", SYNC_FORGERIES)
@pytest.mark.parametrize("method", METHODS)
async def test_a_call_with_a_forged_token_is_unauthenticated(gateway, world, signing_key, method, forgery):
    """A token naming the owner that auth never issued ("intruder": the stranger)."""
    token = forge_token(
        forgery,
        genuine=await world.owner.token(),
        signing_key=signing_key,
        intruder_token=await world.stranger.token(),
        refresh_token=world.owner.client.store.tokens.refresh_token,
    )
    assert token
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(token)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_INVALID",
    )


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


def test_the_bystanders_expectations_cover_every_method():
    assert sorted(BYSTANDER_GETS) == sorted(METHODS)


@pytest.mark.parametrize("method", METHODS)
async def test_another_accounts_genuine_token_gets_past_the_gate_and_only_to_its_own(gateway, world, method):
    """The control for the refusals above (the request shapes are right and a genuine token
    is let in), and the same calls, aimed at the owner, reach only the bystander's account."""
    request = request_for(method, world)
    expected = BYSTANDER_GETS[method]
    metadata = await world.bystander.metadata()
    if isinstance(expected, tuple):
        await expect_error(invoke(gateway, method, request, metadata), expected[0], reason=expected[1])
        return
    if expected == "its-own":
        try:
            answer = await invoke(gateway, method, request, metadata)
        except CumuloRpcError as err:
            assert (err.code, err.reason) == (grpc.StatusCode.NOT_FOUND, "ZONE_NOT_FOUND"), err
        else:
            assert answer.records_deleted <= 1  # at most its own "planted"
        return
    answer = await invoke(gateway, method, request, metadata)
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
        assert answer.used <= len(b"not the owner's")
    elif method == "BackupService/ListBackups":
        assert list(answer.backups) == []


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
    expires_at = expiry_of(watcher_token)
    async with grpc.aio.insecure_channel(gateway) as channel:
        stream = sync_pb2_grpc.SyncServiceStub(channel).Watch(pb.WatchRequest(), metadata=with_client_id(watcher_token), timeout=90)
        try:
            assert (await read_next(stream)).event == pb.WATCH_EVENT_WATCHING
            # A second token of the same account that outlives the watcher's: auth issues it
            # ten minutes "later"; then the sync service's time passes the watcher's end only.
            clock.advance(dt.timedelta(minutes=10))
            await person.client.access_token(force_refresh=True)
            assert expiry_of(await person.token()) > expires_at + 300
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
    assert (await world.stranger.client.sync.usage()).used == len(ZED)


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
    return await invoke(gateway, "BackupService/CreateBackup", manifest(device_id, entries), await person.metadata(), timeout=30)


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


async def describe(blob, account_id: str, file_ids: Sequence[str]) -> dict[str, blob_pb2.Node]:  # type: ignore[no-untyped-def]
    """The account's files among file_ids, asked of blob inside the cluster."""
    async with grpc.aio.insecure_channel(blob.target) as channel:
        answer = await blob_pb2_grpc.BlobInternalServiceStub(channel).DescribeFiles(
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
    async with grpc.aio.insecure_channel(gateway) as channel:
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
    async with grpc.aio.insecure_channel(gateway) as channel:
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


# --- the owner -----------------------------------------------------------------------------------


async def test_the_owner_is_untouched_by_everything_refused_or_aimed_at_it(blob, world):
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
    files = [e.file_id for e in world.entries]
    found = await describe(blob, world.owner.account_id, files)
    assert set(found) == set(files) and not any(n.HasField("trashed_at") for n in found.values())
