"""Wiring: settings in, a runnable sync service out."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.sync.v1 import sync_pb2_grpc
from cumulo_platform import migrations
from cumulo_platform.account_states import AccountStates
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.events import EventConsumer
from cumulo_platform.evidence import evidence_service
from cumulo_platform.fanout import Fanout
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.runtime import GrpcService, ServiceRuntime, periodic
from cumulo_platform.service import Foundation
from cumulo_sync.adapters.blobs import RemoteBlobs
from cumulo_sync.adapters.tables import SCHEMA, legal_holds
from cumulo_sync.api.public import BACKUP_SERVICE, SERVICE, BackupService, SyncService
from cumulo_sync.backups import Backups
from cumulo_sync.config import SyncSettings
from cumulo_sync.purge import Purge
from cumulo_sync.records import Records
from cumulo_sync.watch import watchers as make_watchers

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


def migrate(settings: SyncSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class SyncApp:
    settings: SyncSettings
    db: Database
    records: Records
    backups: Backups
    watchers: Fanout
    purge: Purge
    states: AccountStates
    recorder: LastAccessRecorder
    runtime: ServiceRuntime


async def build(settings: SyncSettings, *, clock: Clock | None = None) -> SyncApp:
    base = await Foundation.open(settings.platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    records = Records(base.db, settings, base.clock)
    backups = Backups(base.db, settings, base.clock, RemoteBlobs(base.blob_channel()))
    watchers = make_watchers(base.nats)
    purge = Purge(records, backups)

    async def tidy() -> None:
        await records.prune_tombstones()
        await records.drop_dropped()
        await backups.release_files()

    runtime = base.runtime(
        services=[
            GrpcService(
                SERVICE,
                SyncService(records, watchers, heartbeat=settings.watch_heartbeat.total_seconds()),
                sync_pb2_grpc.add_SyncServiceServicer_to_server,
            ),
            GrpcService(BACKUP_SERVICE, BackupService(backups), sync_pb2_grpc.add_BackupServiceServicer_to_server),
            evidence_service("sync", await base.preservation(), records.evidence),
        ],
        interceptor=base.interceptor(verifier=base.remote_verifier(), clients=base.remote_clients()),
        jobs=[
            watchers.run,
            periodic(tidy, every=settings.prune_every.total_seconds()),
            LegalHolds(base.db, legal_holds).consumer(base.nats, "sync").run,
            EventConsumer(
                base.db, base.nats, durable="sync-purge", event_types=["purge.requested"], handler=purge.on_purge_requested
            ).run,
        ],
        on_drain=[watchers.close],
    )
    return SyncApp(
        settings=settings, db=base.db, records=records, backups=backups, watchers=watchers, purge=purge,
        states=base.states, recorder=base.recorder, runtime=runtime,
    )
