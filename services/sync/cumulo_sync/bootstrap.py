"""Wiring: settings in, a runnable sync service out."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.blob.v1 import blob_pb2_grpc
from cumulo.sync.v1 import sync_pb2_grpc
from cumulo_platform import migrations
from cumulo_platform.account_states import AccountStates
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.evidence import evidence_service
from cumulo_platform.fanout import Fanout
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.runtime import GrpcService, ServiceRuntime
from cumulo_platform.service import Foundation
from cumulo_platform.takeout import takeout_service
from cumulo_sync.adapters.blobs import RemoteBlobs
from cumulo_sync.adapters.tables import SCHEMA
from cumulo_sync.api.public import BACKUP_SERVICE, SERVICE, BackupService, SyncService
from cumulo_sync.backups import Backups
from cumulo_sync.cleanup import Cleanup
from cumulo_sync.config import SyncSettings
from cumulo_sync.consumers import Purge, consumers
from cumulo_sync.jobs import jobs
from cumulo_sync.pulls import Pulls
from cumulo_sync.pushes import Pushes
from cumulo_sync.takeout import SyncTakeout
from cumulo_sync.watch import watchers as make_watchers

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


def migrate(settings: SyncSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class SyncApp:
    settings: SyncSettings
    db: Database
    pushes: Pushes
    pulls: Pulls
    cleanup: Cleanup
    backups: Backups
    watchers: Fanout
    purge: Purge
    holds: LegalHolds
    states: AccountStates
    recorder: LastAccessRecorder
    runtime: ServiceRuntime


async def build(settings: SyncSettings, *, clock: Clock | None = None) -> SyncApp:
    base = await Foundation.open(settings.platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    holds = base.legal_holds()  # its clean-up leaves held accounts alone
    pushes = Pushes(base.db, settings, base.clock, base.states)
    pulls = Pulls(base.db)
    cleanup = Cleanup(base.db, settings, base.clock, holds)
    backups = Backups(
        base.db, settings, base.clock, RemoteBlobs(base.remote("blob", blob_pb2_grpc.BlobInternalServiceStub)), holds, base.states
    )
    watchers = make_watchers(base.nats)
    purge = Purge(cleanup, backups)

    runtime = base.runtime(
        services=[
            GrpcService(
                SERVICE,
                SyncService(
                    pushes, pulls, cleanup, watchers,
                    clock=base.clock, quota_bytes=settings.quota_bytes, heartbeat=settings.watch_heartbeat.total_seconds(),
                ),
                sync_pb2_grpc.add_SyncServiceServicer_to_server,
            ),
            GrpcService(BACKUP_SERVICE, BackupService(backups), sync_pb2_grpc.add_BackupServiceServicer_to_server),
            evidence_service("sync", await base.preservation(), pulls.evidence),
            takeout_service(SyncTakeout(base.db).parts),
        ],
        interceptor=base.interceptor(verifier=base.remote_verifier(), clients=base.remote_clients()),
        jobs=[watchers.run, *jobs(settings, cleanup, backups), *consumers(base, purge)],
        on_drain=[watchers.close],
    )
    return SyncApp(
        settings=settings, db=base.db, pushes=pushes, pulls=pulls, cleanup=cleanup, backups=backups, watchers=watchers,
        purge=purge, holds=holds, states=base.states, recorder=base.recorder, runtime=runtime,
    )
