"""Fixtures of the sync service's tests, against the session's real servers and services.

- `phone`, `laptop`: two devices of one new account, each its own client through the gateway.
- `stranger`: a device of another account.
- `blob_internal`: blob's internal API, as the sync service calls it; and helpers for backups.
- `world`: what the security tests (test_security*.py) aim at, built once for all of them;
  `sync_clock`: the service's clock, put back after the test.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import pathlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.sync.v1 import sync_pb2, sync_pb2_grpc
from cumulo_devstack.testing import PASSWORD, People, Person, allowed_caller, unique_email
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sdk.client import TokenStore
from cumulo_sync.adapters.tables import released_files


@dataclasses.dataclass
class Device:
    client: Cumulo
    email: str
    account_id: str
    name: str


async def _login(gateway: str, folder: pathlib.Path, email: str, name: str) -> Device:
    folder.mkdir(parents=True, exist_ok=True)
    client = Cumulo(gateway, store=TokenStore(folder / "credentials.json"), pending_uploads=folder / "uploads.json")
    account = await client.login(email, PASSWORD, device_name=name)
    return Device(client, email, account.account_id, name)


async def _signup(gateway: str, folder: pathlib.Path) -> str:
    email = unique_email()
    folder.mkdir(parents=True, exist_ok=True)
    async with Cumulo(gateway, store=TokenStore(folder / "signup.json")) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    return email


@pytest.fixture
async def phone_and_laptop(gateway: str, sync, tmp_path: pathlib.Path) -> AsyncIterator[tuple[Device, Device]]:
    email = await _signup(gateway, tmp_path)
    phone = await _login(gateway, tmp_path / "phone", email, "phone")
    laptop = await _login(gateway, tmp_path / "laptop", email, "laptop")
    try:
        yield phone, laptop
    finally:
        await phone.client.close()
        await laptop.client.close()


@pytest.fixture
def phone(phone_and_laptop: tuple[Device, Device]) -> Device:
    return phone_and_laptop[0]


@pytest.fixture
def laptop(phone_and_laptop: tuple[Device, Device]) -> Device:
    return phone_and_laptop[1]


@pytest.fixture
async def stranger(gateway: str, sync, tmp_path: pathlib.Path) -> AsyncIterator[Device]:
    email = await _signup(gateway, tmp_path / "stranger-signup")
    device = await _login(gateway, tmp_path / "stranger", email, "stranger")
    try:
        yield device
    finally:
        await device.client.close()


# --- backups -------------------------------------------------------------------------------


def write_tree(root: pathlib.Path, files: dict[str, bytes]) -> dict[str, bytes]:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return dict(files)


def read_tree(root: pathlib.Path) -> dict[str, bytes]:
    """Every regular file under `root`, by its relative "/" path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def folder_files(client: Any, device_folder: str) -> dict[str, str]:
    """The live files of "Backups/<device_folder>": name (a SHA-256) -> file id."""
    folder = await client.files.resolve(f"/Backups/{device_folder}")
    return {n.name: n.node_id for n in await client.files.ls(folder.node_id) if n.kind == blob_pb2.NODE_KIND_FILE}


async def raw_create(client: Any, messages: Iterable[sync_pb2.CreateBackupRequest]) -> sync_pb2.CreateBackupResponse:
    """CreateBackup with exactly these stream messages (no SDK checks), errors as CumuloRpcError."""
    stub = sync_pb2_grpc.BackupServiceStub(client.channel)
    token = await client.access_token()
    items = list(messages)

    async def stream() -> AsyncIterator[sync_pb2.CreateBackupRequest]:
        for item in items:
            yield item

    try:
        return await stub.CreateBackup(stream(), metadata=client.metadata(token), timeout=30)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


def header(device_id: str = "tablet-1", device_name: str = "tablet") -> sync_pb2.CreateBackupRequest:
    return sync_pb2.CreateBackupRequest(header=sync_pb2.BackupHeader(device_id=device_id, device_name=device_name))


def entries(*items: sync_pb2.BackupEntry) -> sync_pb2.CreateBackupRequest:
    return sync_pb2.CreateBackupRequest(entries=sync_pb2.BackupEntries(entries=list(items)))


def entry(node: blob_pb2.Node, path: str = "a.txt", **changes: Any) -> sync_pb2.BackupEntry:
    values = dict(path=path, file_id=node.node_id, size=node.size, sha256=node.sha256)
    values.update(changes)
    return sync_pb2.BackupEntry(**values)


async def account_rows(sync: Any, table: sa.Table, account_id: str) -> list:
    async with sync.app.db.read() as conn:
        return list((await conn.execute(sa.select(table).where(table.c.account_id == uuid.UUID(account_id)))).all())


async def released_of(sync: Any, account_id: str) -> set[str]:
    return {str(r.file_id) for r in await account_rows(sync, released_files, account_id)}


@pytest.fixture
async def blob_internal(blob: Any) -> AsyncIterator[blob_pb2_grpc.BlobInternalServiceStub]:
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as internal:
        yield internal


async def existing(internal: blob_pb2_grpc.BlobInternalServiceStub, account_id: str, file_ids: Iterable[str]) -> set[str]:
    """Which of `file_ids` the blob service still holds for the account (trashed or not)."""
    response = await internal.DescribeFiles(blob_pb2.DescribeFilesRequest(account_id=account_id, node_ids=list(file_ids)))
    return {f.node_id for f in response.files}


# --- the security tests' world ----------------------------------------------------------------

OWNER_DEVICE = "owner-laptop"
ZED = b'{"name": "Zed, the stranger\'s own"}'


def save(record_id: str, payload: bytes, tag: str = "", record_type: str = "contact") -> sync_pb2.RecordSave:
    return sync_pb2.RecordSave(record_id=record_id, record_type=record_type, payload=payload, change_tag=tag)


def manifest(device_id: str, entries: Sequence[sync_pb2.BackupEntry]) -> list[sync_pb2.CreateBackupRequest]:
    """CreateBackup's stream messages (as `raw_create` takes them) for these entries."""
    return [
        sync_pb2.CreateBackupRequest(header=sync_pb2.BackupHeader(device_id=device_id, device_name="security test")),
        sync_pb2.CreateBackupRequest(entries=sync_pb2.BackupEntries(entries=list(entries))),
    ]


def token_values(token: str) -> list[Any]:
    return json.loads(base64.urlsafe_b64decode(token.encode()))


@dataclasses.dataclass
class World:
    """The owner's records, change tokens and backup of two files; the stranger's own zone
    "contacts" (same name as the owner's, record ZED); a bystander that owns nothing of
    interest."""

    owner: Person
    stranger: Person
    bystander: Person
    owner_records: dict[str, list[sync_pb2.Record]]  # zone -> records as fetched after the setup
    owner_tokens: dict[str, str]  # zone -> change token after the setup
    owner_zones: list[tuple[str, int, int]]
    owner_usage: int
    backup: sync_pb2.Backup
    entries: list[sync_pb2.BackupEntry]
    stranger_records: list[sync_pb2.Record]
    stranger_token: str

    def owner_zone_id(self, zone: str) -> str:
        return token_values(self.owner_tokens[zone])[1]


@pytest.fixture(scope="module")
async def world(gateway: str, sync: Any, mail: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One world for every security test: they only aim calls at it, which must all be
    refused or reach the caller's own data. Built once, it saves each module its accounts,
    records and backup."""
    people = People(gateway, mail)
    try:
        owner, stranger, bystander = await people.new("owner"), await people.new("stranger"), await people.new("bystander")
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
        write_tree(folder, {"photos/beach.jpg": secrets.token_bytes(70_000), "diary.txt": b"dear diary, nobody else may read this\n"})
        report = await owner.client.backups.create(folder, device_id=OWNER_DEVICE, device_name="Owner's laptop")
        entries = await owner.client.backups.entries(report.backup.backup_id)
        assert sorted(e.path for e in entries) == ["diary.txt", "photos/beach.jpg"]
        yield World(
            owner=owner, stranger=stranger, bystander=bystander,
            owner_records=records, owner_tokens=tokens, owner_zones=zones,
            owner_usage=(await owner.client.sync.usage()).used,
            backup=report.backup, entries=entries,
            stranger_records=stranger_records, stranger_token=stranger_token,
        )
    finally:
        await people.close()


@pytest.fixture
def sync_clock(sync: Any) -> Iterator[Any]:
    """The sync service's clock (which judges token expiry); put back afterwards."""
    before = sync.clock.offset
    yield sync.clock
    sync.clock.offset = before
