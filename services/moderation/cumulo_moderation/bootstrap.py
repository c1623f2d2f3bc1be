"""Wiring: settings in, a runnable moderation service out."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.moderation.v1 import moderation_pb2_grpc
from cumulo_moderation.adapters.services import Services
from cumulo_moderation.adapters.tables import SCHEMA
from cumulo_moderation.api.public import (
    ANONYMOUS_METHODS,
    COMPLAINT_SERVICE,
    MODERATION_SERVICE,
    ComplaintService,
    ModerationService,
)
from cumulo_moderation.cases import Cases, prune_counters
from cumulo_moderation.checks import Checks
from cumulo_moderation.complaints import Complaints
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.preservation import Preservation
from cumulo_platform import migrations
from cumulo_platform.account_states import AccountStates
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.events import EventConsumer
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.purge import purge_participant
from cumulo_platform.runtime import GrpcService, ServiceRuntime, periodic
from cumulo_platform.service import Foundation
from cumulo_platform.storage import Storage
from cumulo_platform.tokens import Principal

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
SERVICE_NAME = "moderation"


def migrate(settings: ModerationSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class ModerationApp:
    settings: ModerationSettings
    db: Database
    cases: Cases
    complaints: Complaints
    checks: Checks
    preservation: Preservation
    storage: Storage
    states: AccountStates
    recorder: LastAccessRecorder
    runtime: ServiceRuntime


async def build(settings: ModerationSettings, *, clock: Clock | None = None) -> ModerationApp:
    platform = settings.platform
    base = await Foundation.open(platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    storage = await base.preservation()
    services = Services(
        auth=base.auth_channel(), blob=base.blob_channel(), lifecycle=base.lifecycle_channel(),
        sync=base.sync_channel(), locator=base.locator_channel(),
    )
    cases = Cases(base.db, settings, base.clock, services)
    complaints = Complaints(base.db, settings, base.clock, services, cases)
    checks = Checks(base.db, settings, base.clock, services, cases)
    preservation = Preservation(base.db, base.clock, services, storage)
    verifier = base.remote_verifier()

    async def prune() -> None:
        longest = max(settings.complaint_window, settings.link_burst_window)
        await prune_counters(base.db, base.clock.now() - 2 * longest)

    async def authenticate(token: str) -> Principal:
        """A token sent with an anonymous call still counts: verified, gated and a use."""
        principal = await verifier.verify(token)
        await base.states.gate(principal)
        base.recorder.mark(principal.account_id)
        return principal

    runtime = base.runtime(
        services=[
            GrpcService(
                COMPLAINT_SERVICE, ComplaintService(complaints, cases, authenticate), moderation_pb2_grpc.add_ComplaintServiceServicer_to_server
            ),
            GrpcService(
                MODERATION_SERVICE, ModerationService(base.db, cases, checks, preservation),
                moderation_pb2_grpc.add_ModerationServiceServicer_to_server,
            ),
        ],
        interceptor=base.interceptor(verifier=verifier, clients=base.remote_clients(), anonymous_methods=ANONYMOUS_METHODS),
        jobs=[
            periodic(cases.restore_due, every=settings.restore_every.total_seconds()),
            periodic(prune, every=600),
            EventConsumer(base.db, base.nats, durable="moderation-uploads", event_types=["file.uploaded"], handler=checks.on_file_uploaded).run,
            EventConsumer(
                base.db, base.nats, durable="moderation-links", event_types=["link.created"], handler=checks.on_link_created
            ).run,
            EventConsumer(
                base.db, base.nats, durable="moderation-purge", event_types=["purge.requested"],
                handler=purge_participant(SERVICE_NAME, preservation.purge),
            ).run,
        ],
    )
    return ModerationApp(
        settings=settings, db=base.db, cases=cases, complaints=complaints, checks=checks, preservation=preservation, storage=storage, states=base.states,
        recorder=base.recorder, runtime=runtime,
    )
