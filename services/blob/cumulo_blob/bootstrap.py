"""Wiring: settings in, a runnable blob service out."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.blob.v1 import blob_pb2_grpc
from cumulo_blob.adapters.accounts import remote_find_account
from cumulo_blob.adapters.tables import SCHEMA
from cumulo_blob.api.internal import SERVICE as INTERNAL_SERVICE
from cumulo_blob.api.internal import BlobInternalService
from cumulo_blob.api.public import (
    ANONYMOUS_METHODS,
    LINK_SERVICE,
    BlobService,
    ShareLinkService,
)
from cumulo_blob.api.public import (
    SERVICE as PUBLIC_SERVICE,
)
from cumulo_blob.config import BlobSettings
from cumulo_blob.enforcement import Enforcement
from cumulo_blob.handlers import BlobHandlers
from cumulo_blob.plans import Plans
from cumulo_blob.sharing import Sharing
from cumulo_blob.uploads import Uploads
from cumulo_platform import migrations
from cumulo_platform.account_states import AccountStates
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.events import EventConsumer
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.passwords import Passwords
from cumulo_platform.runtime import GrpcService, ServiceRuntime, closer, periodic
from cumulo_platform.service import Foundation
from cumulo_platform.storage import Storage

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


def migrate(settings: BlobSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class BlobApp:
    settings: BlobSettings
    db: Database
    files: BlobHandlers
    uploads: Uploads
    enforcement: Enforcement
    storage: Storage
    runtime: ServiceRuntime
    states: AccountStates
    recorder: LastAccessRecorder


async def build(settings: BlobSettings, *, clock: Clock | None = None) -> BlobApp:
    platform = settings.platform
    base = await Foundation.open(platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    storage = Storage.of(platform, settings.bucket)
    await storage.open()
    await storage.ensure_bucket()
    preservation = await base.preservation()
    plans = Plans(base.db, settings, base.clock)
    if platform.development:
        await plans.seed_development_catalog()
    files = BlobHandlers(db=base.db, storage=storage, settings=settings, clock=base.clock, plans=plans)
    await files.load_purged()
    uploads = Uploads(files)
    enforcement = Enforcement(files, preservation)
    passwords = Passwords()
    sharing = Sharing(files, passwords, remote_find_account(base.auth_channel()))
    runtime = base.runtime(
        services=[
            GrpcService(PUBLIC_SERVICE, BlobService(files, uploads, sharing), blob_pb2_grpc.add_BlobServiceServicer_to_server),
            GrpcService(LINK_SERVICE, ShareLinkService(files, sharing), blob_pb2_grpc.add_ShareLinkServiceServicer_to_server),
            GrpcService(
                INTERNAL_SERVICE,
                BlobInternalService(enforcement, plans),
                blob_pb2_grpc.add_BlobInternalServiceServicer_to_server,
            ),
        ],
        interceptor=base.interceptor(
            verifier=base.remote_verifier(),
            clients=base.remote_clients(),
            anonymous_methods=ANONYMOUS_METHODS,
            account_gate=files.refuse_purged,
        ),
        jobs=[
            periodic(uploads.expire_abandoned, every=60.0),
            periodic(files.delete_doomed, every=30.0),
            periodic(files.purge_old_trash, every=3600.0),
            EventConsumer(
                base.db, base.nats, durable="blob-purge", event_types=["purge.requested"], handler=enforcement.on_purge_requested
            ).run,
        ],
        cleanups=[storage.close, closer(passwords.close)],
    )
    return BlobApp(settings=settings, db=base.db, files=files, uploads=uploads, enforcement=enforcement, storage=storage, runtime=runtime, states=base.states, recorder=base.recorder)
