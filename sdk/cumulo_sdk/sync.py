"""Record sync and device backups through the SDK.

Backups keep each distinct content once per device folder ("Backups/<device>/<sha256>" in
the user's files): a second backup uploads only what changed, and restoring checks every
file's SHA-256 before it appears."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import os
import pathlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING

import grpc

from cumulo.blob.v1 import blob_pb2
from cumulo.sync.v1 import sync_pb2, sync_pb2_grpc
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.files import IntegrityError
from cumulo_sdk.transfer import Progress, TransferProgress, hash_file, tell_stored

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

BACKUPS_FOLDER = "Backups"
ENTRIES_PER_MESSAGE = 1000


class Sync:
    def __init__(self, client: Cumulo) -> None:
        self.client = client
        self.stub = sync_pb2_grpc.SyncServiceStub(client.channel)

    async def zones(self) -> list[sync_pb2.Zone]:
        return list((await self.client.call(self.stub.ListZones, sync_pb2.ListZonesRequest())).zones)

    async def delete_zone(self, zone: str) -> int:
        return (await self.client.call(self.stub.DeleteZone, sync_pb2.DeleteZoneRequest(zone=zone))).records_deleted

    async def push(
        self,
        zone: str,
        saves: Sequence[sync_pb2.RecordSave] = (),
        deletes: Sequence[sync_pb2.RecordDelete] = (),
        *,
        atomic: bool = False,
        device_id: str = "",
    ) -> sync_pb2.PushResponse:
        request = sync_pb2.PushRequest(zone=zone, saves=saves, deletes=deletes, atomic=atomic, device_id=device_id)
        return await self.client.call(self.stub.Push, request, timeout=120)

    async def fetch(self, zone: str, token: str = "", limit: int = 0) -> sync_pb2.FetchChangesResponse:
        return await self.client.call(
            self.stub.FetchChanges, sync_pb2.FetchChangesRequest(zone=zone, change_token=token, limit=limit)
        )

    async def fetch_all(self, zone: str, token: str = "") -> tuple[list[sync_pb2.Record], str]:
        """Every change after `token`, page by page; the token to use next time."""
        found: list[sync_pb2.Record] = []
        while True:
            page = await self.fetch(zone, token, 1000)
            found.extend(page.records)
            token = page.change_token
            if not page.more_coming:
                return found, token

    async def get(self, zone: str, record_ids: Iterable[str]) -> list[sync_pb2.Record]:
        request = sync_pb2.GetRecordsRequest(zone=zone, record_ids=list(record_ids))
        return list((await self.client.call(self.stub.GetRecords, request)).records)

    async def usage(self) -> sync_pb2.GetSyncUsageResponse:
        return await self.client.call(self.stub.GetSyncUsage, sync_pb2.GetSyncUsageRequest())

    async def watch(self, zones: Sequence[str] = (), *, device_id: str = "") -> AsyncIterator[sync_pb2.WatchResponse]:
        """Zone changes as they happen. The stream is opened again (with a fresh token) when
        the server ends it or the connection drops; WATCHING marks each (re)start, after
        which a device should fetch, since changes in between were not announced."""
        request = sync_pb2.WatchRequest(zones=list(zones), device_id=device_id)
        async for message in self.client.lasting_stream(lambda metadata: self.stub.Watch(request, metadata=metadata)):
            yield message


@dataclasses.dataclass
class BackupReport:
    backup: sync_pb2.Backup
    pruned: list[str]
    files: int
    uploaded_files: int
    uploaded_bytes: int
    reused_files: int


@dataclasses.dataclass(frozen=True)
class LocalFile:
    path: str  # relative, with "/"
    local: pathlib.Path
    size: int
    sha256: str


def _walk(root: pathlib.Path) -> list[tuple[str, pathlib.Path, int]]:
    found: list[tuple[str, pathlib.Path, int]] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            local = pathlib.Path(folder) / name
            if local.is_symlink() or not local.is_file():
                continue
            found.append((local.relative_to(root).as_posix(), local, local.stat().st_size))
    return found


async def scan(root: pathlib.Path, progress: Progress | None = None) -> list[LocalFile]:
    """Regular files under `root` (symbolic links are not followed), in path order, hashed
    (`progress.hashing` hears how far, over all their bytes)."""
    listed = await asyncio.to_thread(_walk, root)
    total = sum(size for _, _, size in listed)
    found: list[LocalFile] = []
    hashed = 0
    for relative, local, size in listed:
        found.append(LocalFile(relative, local, size, await hash_file(local, progress, base=hashed, total=total)))
        hashed += size
    return found


class _Within(TransferProgress):
    """One file's upload as a part of the whole backup, whose first `base` bytes are stored."""

    def __init__(self, progress: Progress | None, base: int, total: int) -> None:
        self.progress, self.base, self.total = progress, base, total

    def __call__(self, done: int, total: int) -> None:
        if self.progress:
            self.progress(self.base + done, self.total)

    def stored(self, done: int, total: int) -> None:
        tell_stored(self.progress, self.base + done, self.total)


def _folder_name(device_name: str) -> str:
    return device_name.replace("/", "-").strip() or "device"


class Backups:
    def __init__(self, client: Cumulo) -> None:
        self.client = client
        self.stub = sync_pb2_grpc.BackupServiceStub(client.channel)

    async def create(
        self,
        root: pathlib.Path,
        *,
        device_id: str,
        device_name: str = "",
        progress: Progress | None = None,
    ) -> BackupReport:
        """Backs up the files under `root`: content the device folder already holds is not
        sent again, the rest is uploaded (resumably), then the manifest is stored."""
        files = self.client.files
        local = await scan(root, progress)
        folder_id = await files.makedirs(f"{BACKUPS_FOLDER}/{_folder_name(device_name or device_id)}")
        held = {
            node.name: node
            for node in await files.ls(folder_id)
            if node.kind == blob_pb2.NODE_KIND_FILE and node.name == node.sha256
        }
        total = sum(f.size for f in local)
        done = uploaded_bytes = uploaded_files = reused = 0
        file_ids: dict[str, str] = {}
        for item in local:
            if item.sha256 in file_ids:
                reused += 1  # the same content twice in this backup: stored once
            elif item.sha256 in held and held[item.sha256].size == item.size:
                file_ids[item.sha256] = held[item.sha256].node_id
                reused += 1
                if progress:
                    progress(done + item.size, total)
                tell_stored(progress, done + item.size, total)
            else:
                step = _Within(progress, done, total)
                node = await files.upload(item.local, parent_id=folder_id, name=item.sha256, progress=step, sha256=item.sha256)
                if node.sha256 != item.sha256:
                    raise IntegrityError(f"{item.path}: changed while it was backed up; run the backup again")
                file_ids[item.sha256] = node.node_id
                held[item.sha256] = node
                uploaded_files += 1
                uploaded_bytes += item.size
            done += item.size
        if progress and not local:
            progress(0, 0)
            tell_stored(progress, 0, 0)

        async def manifest() -> AsyncIterator[sync_pb2.CreateBackupRequest]:
            yield sync_pb2.CreateBackupRequest(header=sync_pb2.BackupHeader(device_id=device_id, device_name=device_name))
            for start in range(0, len(local), ENTRIES_PER_MESSAGE):
                chunk = local[start : start + ENTRIES_PER_MESSAGE]
                yield sync_pb2.CreateBackupRequest(
                    entries=sync_pb2.BackupEntries(
                        entries=[
                            sync_pb2.BackupEntry(path=f.path, file_id=file_ids[f.sha256], size=f.size, sha256=f.sha256)
                            for f in chunk
                        ]
                    )
                )

        token = await self.client.access_token()
        try:
            response = await self.stub.CreateBackup(manifest(), metadata=self.client.metadata(token), timeout=600)
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None
        return BackupReport(response.backup, list(response.pruned_backup_ids), len(local), uploaded_files, uploaded_bytes, reused)

    async def list(self, device_id: str = "") -> builtins.list[sync_pb2.Backup]:
        return list((await self.client.call(self.stub.ListBackups, sync_pb2.ListBackupsRequest(device_id=device_id))).backups)

    async def get(self, backup_id: str) -> sync_pb2.Backup:
        return (await self.client.call(self.stub.GetBackup, sync_pb2.GetBackupRequest(backup_id=backup_id))).backup

    async def entries(self, backup_id: str) -> builtins.list[sync_pb2.BackupEntry]:
        found: list[sync_pb2.BackupEntry] = []
        token = ""
        while True:
            page = await self.client.call(
                self.stub.ListBackupEntries, sync_pb2.ListBackupEntriesRequest(backup_id=backup_id, page_size=5000, page_token=token)
            )
            found.extend(page.entries)
            token = page.next_page_token
            if not token:
                return found

    async def delete(self, backup_id: str) -> None:
        await self.client.call(self.stub.DeleteBackup, sync_pb2.DeleteBackupRequest(backup_id=backup_id))

    async def restore(self, backup_id: str, dest: pathlib.Path, *, progress: Progress | None = None) -> int:
        """Every file of the backup under `dest`, each written only once its SHA-256 matches
        the manifest's. Existing files are never overwritten."""
        entries = await self.entries(backup_id)
        dest = dest.resolve()
        targets: list[tuple[sync_pb2.BackupEntry, pathlib.Path]] = []
        for entry in entries:
            target = (dest / entry.path).resolve()
            if dest not in target.parents:
                raise IntegrityError(f"{entry.path}: not a path inside the restore folder")
            if target.exists():
                raise FileExistsError(f"{target} exists; restore into an empty folder")
            targets.append((entry, target))
        total = sum(e.size for e in entries)
        done = 0
        for entry, target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            node = await self.client.files.download(entry.file_id, target)
            # download() wrote the bytes only once they matched node.sha256.
            if node.sha256 != entry.sha256:
                target.unlink(missing_ok=True)
                raise IntegrityError(f"{entry.path}: the stored bytes do not match the backup's SHA-256")
            done += entry.size
            if progress:
                progress(done, total)
        return len(targets)

