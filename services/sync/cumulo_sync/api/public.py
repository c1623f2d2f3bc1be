"""SyncService and BackupService: thin — translate, call a use case, translate back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc

from cumulo.sync.v1 import sync_pb2, sync_pb2_grpc
from cumulo_platform.clock import Clock
from cumulo_platform.fanout import HEARTBEAT, Fanout
from cumulo_platform.interceptors import current_principal
from cumulo_sync.api import convert
from cumulo_sync.backups import Backups
from cumulo_sync.cleanup import Cleanup
from cumulo_sync.domain import rules
from cumulo_sync.pulls import Pulls
from cumulo_sync.pushes import Pushes
from cumulo_sync.watch import Change

SERVICE = "cumulo.sync.v1.SyncService"
BACKUP_SERVICE = "cumulo.sync.v1.BackupService"


def _me() -> uuid.UUID:
    return uuid.UUID(current_principal().account_id)


class SyncService(sync_pb2_grpc.SyncServiceServicer):
    def __init__(
        self, pushes: Pushes, pulls: Pulls, cleanup: Cleanup, watchers: Fanout, *, clock: Clock, quota_bytes: int, heartbeat: float
    ) -> None:
        self.pushes = pushes
        self.pulls = pulls
        self.cleanup = cleanup
        self.watchers = watchers
        self.clock = clock
        self.quota_bytes = quota_bytes
        self.heartbeat = heartbeat

    async def ListZones(self, request: sync_pb2.ListZonesRequest, context: grpc.aio.ServicerContext) -> sync_pb2.ListZonesResponse:
        return sync_pb2.ListZonesResponse(zones=[convert.zone(r) for r in await self.pulls.list_zones(_me())])

    async def DeleteZone(self, request: sync_pb2.DeleteZoneRequest, context: grpc.aio.ServicerContext) -> sync_pb2.DeleteZoneResponse:
        count = await self.cleanup.delete_zone(_me(), rules.check_zone(request.zone))
        return sync_pb2.DeleteZoneResponse(records_deleted=count)

    async def Push(self, request: sync_pb2.PushRequest, context: grpc.aio.ServicerContext) -> sync_pb2.PushResponse:
        account = _me()
        zone = rules.check_zone(request.zone)
        device = rules.check_device(request.device_id, "device_id")
        ops = self.pushes.operations(request.saves, request.deletes)
        pushed = await self.pushes.push(account, zone, ops, atomic=request.atomic, device=device)
        token = rules.change_token(pushed.zone_id, pushed.last_seq) if pushed.zone_id is not None else ""
        if pushed.changed:
            await self.watchers.publish(str(account), Change(zone=zone, token=token, device=device).encode())
        response = sync_pb2.PushResponse(change_token=token)
        convert.add_results(response.results, pushed.results)
        return response

    async def FetchChanges(self, request: sync_pb2.FetchChangesRequest, context: grpc.aio.ServicerContext) -> sync_pb2.FetchChangesResponse:
        rows, token, more = await self.pulls.fetch_changes(
            _me(), rules.check_zone(request.zone), request.change_token, request.limit
        )
        return sync_pb2.FetchChangesResponse(records=[convert.record(r) for r in rows], change_token=token, more_coming=more)

    async def GetRecords(self, request: sync_pb2.GetRecordsRequest, context: grpc.aio.ServicerContext) -> sync_pb2.GetRecordsResponse:
        rows = await self.pulls.get_records(_me(), rules.check_zone(request.zone), request.record_ids)
        return sync_pb2.GetRecordsResponse(records=[convert.record(r) for r in rows])

    async def GetSyncUsage(self, request: sync_pb2.GetSyncUsageRequest, context: grpc.aio.ServicerContext) -> sync_pb2.GetSyncUsageResponse:
        return sync_pb2.GetSyncUsageResponse(used=await self.pulls.usage(_me()), quota=self.quota_bytes)

    async def Watch(self, request: sync_pb2.WatchRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[sync_pb2.WatchResponse]:
        principal = current_principal()
        wanted = {rules.check_zone(z, f"zones[{i}]") for i, z in enumerate(request.zones)}
        device = rules.check_device(request.device_id, "device_id")
        notices = self.watchers.notices(principal.account_id, principal=principal, clock=self.clock, heartbeat=self.heartbeat)
        await anext(notices)  # listening: changes from now on are announced
        yield sync_pb2.WatchResponse(event=sync_pb2.WATCH_EVENT_WATCHING)
        async for data in notices:
            if data == HEARTBEAT:
                yield sync_pb2.WatchResponse(event=sync_pb2.WATCH_EVENT_HEARTBEAT)
                continue
            change = Change.decode(data)
            if change is None or (device and change.device == device) or (wanted and change.zone not in wanted):
                continue
            yield sync_pb2.WatchResponse(event=sync_pb2.WATCH_EVENT_ZONE_CHANGED, zone=change.zone, change_token=change.token)


class BackupService(sync_pb2_grpc.BackupServiceServicer):
    def __init__(self, backups: Backups) -> None:
        self.backups = backups

    async def CreateBackup(
        self, request_iterator: AsyncIterator[sync_pb2.CreateBackupRequest], context: grpc.aio.ServicerContext
    ) -> sync_pb2.CreateBackupResponse:
        row, pruned = await self.backups.create(_me(), request_iterator)
        return sync_pb2.CreateBackupResponse(backup=convert.backup(row), pruned_backup_ids=[str(p) for p in pruned])

    async def ListBackups(self, request: sync_pb2.ListBackupsRequest, context: grpc.aio.ServicerContext) -> sync_pb2.ListBackupsResponse:
        return sync_pb2.ListBackupsResponse(backups=[convert.backup(r) for r in await self.backups.of_account(_me(), request.device_id)])

    async def GetBackup(self, request: sync_pb2.GetBackupRequest, context: grpc.aio.ServicerContext) -> sync_pb2.GetBackupResponse:
        return sync_pb2.GetBackupResponse(backup=convert.backup(await self.backups.get(_me(), request.backup_id)))

    async def ListBackupEntries(
        self, request: sync_pb2.ListBackupEntriesRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb2.ListBackupEntriesResponse:
        rows, token = await self.backups.entries(_me(), request.backup_id, request.page_size, request.page_token)
        return sync_pb2.ListBackupEntriesResponse(entries=[convert.entry(r) for r in rows], next_page_token=token)

    async def DeleteBackup(self, request: sync_pb2.DeleteBackupRequest, context: grpc.aio.ServicerContext) -> sync_pb2.DeleteBackupResponse:
        await self.backups.delete(_me(), request.backup_id)
        return sync_pb2.DeleteBackupResponse()
