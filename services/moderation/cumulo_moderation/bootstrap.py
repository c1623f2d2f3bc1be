"""Wiring: settings in, a runnable moderation service out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib

from cumulo.auth.v1 import auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2_grpc
from cumulo.evidence.v1 import evidence_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo.moderation.v1 import moderation_pb2_grpc
from cumulo_moderation.adapters.object_lock import BundleLock
from cumulo_moderation.adapters.services import Services
from cumulo_moderation.adapters.tables import SCHEMA
from cumulo_moderation.api.public import (
    ANONYMOUS_METHODS,
    COMPLAINT_SERVICE,
    MODERATION_SERVICE,
    ComplaintService,
    ModerationService,
)
from cumulo_moderation.blocklist import Blocklist
from cumulo_moderation.cases import Cases
from cumulo_moderation.complaints import Complaints
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.consumers import Checks, consumers
from cumulo_moderation.decisions import Decisions
from cumulo_moderation.effects import Effects
from cumulo_moderation.jobs import jobs
from cumulo_moderation.metrics import register as register_metrics
from cumulo_moderation.owner_notices import OwnerNotices
from cumulo_moderation.preservation import Preservation
from cumulo_moderation.signing_keys import SigningKeys
from cumulo_platform import migrations
from cumulo_platform.account_states import AccountStates
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.runtime import GrpcService, ServiceRuntime
from cumulo_platform.service import Foundation
from cumulo_platform.storage import Storage
from cumulo_platform.tokens import Principal, within_scope

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


def migrate(settings: ModerationSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class ModerationApp:
    settings: ModerationSettings
    db: Database
    cases: Cases
    decisions: Decisions
    effects: Effects
    owners: OwnerNotices
    complaints: Complaints
    checks: Checks
    blocklist: Blocklist
    preservation: Preservation
    keys: SigningKeys
    storage: Storage
    states: AccountStates
    recorder: LastAccessRecorder
    runtime: ServiceRuntime


async def build(settings: ModerationSettings, *, clock: Clock | None = None) -> ModerationApp:
    platform = settings.platform
    base = await Foundation.open(platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    register_metrics(base.metrics)
    storage = await base.preservation()
    lock = BundleLock(storage, mode=settings.evidence_lock_mode, days=settings.evidence_lock_days)
    await lock.check()  # Object Lock configured on a bucket without it: no start
    base.legal_holds()  # the purge waits until a release has reached this service
    services = Services(
        auth=base.remote("auth", auth_pb2_grpc.AuthInternalServiceStub),
        blob=base.remote("blob", blob_pb2_grpc.BlobInternalServiceStub),
        lifecycle=base.remote("lifecycle", lifecycle_pb2_grpc.LifecycleInternalServiceStub),
        evidence={name: base.remote(name, evidence_pb2_grpc.EvidenceInternalServiceStub) for name in ("sync", "locator")},
    )
    owners = OwnerNotices(base.db, settings, base.clock, services)
    # An effect's carrier has a few call deadlines before it counts as interrupted.
    effects = Effects(base.db, base.clock, services, lease=dt.timedelta(seconds=3 * platform.call_deadline), locate=owners.place)
    cases = Cases(base.db, settings, base.clock, effects, owners)
    decisions = Decisions(base.db, settings, base.clock, cases, effects, owners)
    checks = Checks(settings, base.clock, cases, effects, owners)
    complaints = Complaints(base.db, settings, base.clock, services, cases)
    blocklist = Blocklist(base.db, base.clock, effects, checks)
    keys = SigningKeys(base.db, base.clock, settings.evidence_kek)
    preservation = Preservation(base.db, base.clock, services, storage, keys, lock)
    verifier = base.remote_verifier()

    async def authenticate(token: str) -> Principal:
        """A token sent with an anonymous call still counts: verified, gated and a use."""
        principal = await verifier.verify(token)
        within_scope(principal, "")  # a narrowed token (a terminated account's take-out) files nothing here
        await base.states.gate(principal)
        base.recorder.mark(principal.account_id)
        return principal

    runtime = base.runtime(
        services=[
            GrpcService(
                COMPLAINT_SERVICE, ComplaintService(complaints, cases, authenticate), moderation_pb2_grpc.add_ComplaintServiceServicer_to_server
            ),
            GrpcService(
                MODERATION_SERVICE, ModerationService(base.db, cases, decisions, blocklist, preservation),
                moderation_pb2_grpc.add_ModerationServiceServicer_to_server,
            ),
        ],
        interceptor=base.interceptor(verifier=verifier, clients=base.remote_clients(), anonymous_methods=ANONYMOUS_METHODS),
        jobs=[
            *jobs(base.db, settings, base.clock, cases, effects, owners),
            *consumers(base.db, base.nats, checks),
            base.purge_consumer(preservation.purge),
        ],
    )
    return ModerationApp(
        settings=settings, db=base.db, cases=cases, decisions=decisions, effects=effects, owners=owners, complaints=complaints, checks=checks,
        blocklist=blocklist, preservation=preservation, keys=keys, storage=storage, states=base.states, recorder=base.recorder, runtime=runtime,
    )
