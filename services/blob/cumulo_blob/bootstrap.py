"""Wiring: settings in, a runnable blob service out."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.auth.v1 import auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2_grpc
from cumulo.takeout.v1 import takeout_pb2_grpc
from cumulo_blob.adapters.accounts import remote_find_account
from cumulo_blob.adapters.tables import SCHEMA
from cumulo_blob.api.internal import SERVICE as INTERNAL_SERVICE
from cumulo_blob.api.internal import BlobInternalService
from cumulo_blob.api.public import ANONYMOUS_METHODS, LINK_SERVICE, BlobService, ShareLinkService
from cumulo_blob.api.public import SERVICE as PUBLIC_SERVICE
from cumulo_blob.api.takeout import SERVICE as TAKEOUT_SERVICE
from cumulo_blob.api.takeout import TakeoutService
from cumulo_blob.config import BlobSettings
from cumulo_blob.consumers import consumers
from cumulo_blob.content_blocks import ContentBlocks
from cumulo_blob.contents import StoredContent
from cumulo_blob.downloads import Downloads
from cumulo_blob.enforcement import Enforcement
from cumulo_blob.folders import Folders
from cumulo_blob.jobs import jobs
from cumulo_blob.metrics import register as register_metrics
from cumulo_blob.metrics import register_streams
from cumulo_blob.plans import Plans
from cumulo_blob.purge import Purge
from cumulo_blob.quota import Quota
from cumulo_blob.sharing import Sharing
from cumulo_blob.takeout import Takeout
from cumulo_blob.trash import Trash
from cumulo_blob.uploads import Uploads
from cumulo_platform import migrations
from cumulo_platform.account_states import AccountStates
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.passwords import Passwords
from cumulo_platform.runtime import GrpcService, ServiceRuntime, closer
from cumulo_platform.service import Foundation
from cumulo_platform.storage import Storage

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
# The services whose part of a take-out blob asks for (TakeoutInternalService), in the order
# the archive holds them.
TAKEOUT_SOURCES = ("auth", "lifecycle", "sync", "locator")


def migrate(settings: BlobSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class BlobApp:
    settings: BlobSettings
    db: Database
    storage: Storage
    folders: Folders
    trash: Trash
    uploads: Uploads
    downloads: Downloads
    contents: StoredContent
    enforcement: Enforcement
    blocks: ContentBlocks
    purge: Purge
    holds: LegalHolds
    takeout: Takeout
    runtime: ServiceRuntime
    states: AccountStates
    recorder: LastAccessRecorder


async def build(settings: BlobSettings, *, clock: Clock | None = None) -> BlobApp:
    platform = settings.platform
    base = await Foundation.open(platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    db, clock = base.db, base.clock
    storage = Storage.of(platform, settings.bucket)
    await storage.open()
    await storage.ensure_bucket()
    holds = base.legal_holds()  # nothing of a held account leaves storage
    register_metrics(base.metrics)
    plans = Plans(db, settings, clock)
    if platform.development:
        await plans.seed_development_catalog()
    contents = StoredContent(db=db, storage=storage, clock=clock, holds=holds)
    quota = Quota(db=db, plans=plans)
    folders = Folders(db=db, clock=clock)
    trash = Trash(db=db, clock=clock, settings=settings, contents=contents, holds=holds)
    downloads = Downloads(db=db, storage=storage, settings=settings, clock=clock)
    uploads = Uploads(db=db, storage=storage, settings=settings, clock=clock, quota=quota, contents=contents)
    register_streams(base.metrics, uploads, downloads)
    passwords = Passwords()
    sharing = Sharing(
        db=db, clock=clock, settings=settings, downloads=downloads, passwords=passwords,
        find_account=remote_find_account(base.remote("auth", auth_pb2_grpc.AuthInternalServiceStub)),
    )
    enforcement = Enforcement(
        db=db, clock=clock, storage=storage, preservation=await base.preservation(), contents=contents, holds=holds
    )
    blocks = ContentBlocks(db=db, clock=clock)
    takeout = Takeout(
        db=db, clock=clock, storage=storage, settings=settings, enforcement=enforcement,
        sources={name: base.remote(name, takeout_pb2_grpc.TakeoutInternalServiceStub) for name in TAKEOUT_SOURCES},
    )
    purge = Purge(db=db, storage=storage, contents=contents, holds=holds, states=base.states, takeout=takeout)
    public = BlobService(
        folders=folders, trash=trash, uploads=uploads, downloads=downloads, quota=quota, plans=plans, sharing=sharing
    )
    runtime = base.runtime(
        services=[
            GrpcService(PUBLIC_SERVICE, public, blob_pb2_grpc.add_BlobServiceServicer_to_server),
            GrpcService(
                LINK_SERVICE, ShareLinkService(downloads=downloads, sharing=sharing), blob_pb2_grpc.add_ShareLinkServiceServicer_to_server
            ),
            GrpcService(TAKEOUT_SERVICE, TakeoutService(takeout), takeout_pb2_grpc.add_TakeoutServiceServicer_to_server),
            GrpcService(
                INTERNAL_SERVICE,
                BlobInternalService(enforcement=enforcement, blocks=blocks, purge=purge, plans=plans),
                blob_pb2_grpc.add_BlobInternalServiceServicer_to_server,
            ),
        ],
        # The platform's account-state gate is the only one: a purged account is refused there.
        interceptor=base.interceptor(
            verifier=base.remote_verifier(), clients=base.remote_clients(), anonymous_methods=ANONYMOUS_METHODS
        ),
        jobs=[*jobs(settings, uploads=uploads, contents=contents, trash=trash, takeout=takeout, plans=plans), *consumers(base, purge, sharing)],
        cleanups=[storage.close, closer(passwords.close)],
    )
    return BlobApp(
        settings=settings, db=db, storage=storage, folders=folders, trash=trash, uploads=uploads, downloads=downloads, contents=contents,
        enforcement=enforcement, blocks=blocks, purge=purge, holds=holds, takeout=takeout, runtime=runtime, states=base.states, recorder=base.recorder,
    )
