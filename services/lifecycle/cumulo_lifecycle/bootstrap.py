"""Wiring: settings in, a runnable lifecycle service out."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_lifecycle.adapters.contacts import remote_contacts
from cumulo_lifecycle.adapters.delivery import Delivery
from cumulo_lifecycle.adapters.tables import SCHEMA
from cumulo_lifecycle.api.internal import SERVICE as INTERNAL_SERVICE
from cumulo_lifecycle.api.internal import LifecycleInternalService
from cumulo_lifecycle.api.public import ANONYMOUS_METHODS, LifecycleService
from cumulo_lifecycle.api.public import SERVICE as PUBLIC_SERVICE
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.ledger import Ledger
from cumulo_lifecycle.notifier import Notifier
from cumulo_platform import migrations
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.events import EventConsumer
from cumulo_platform.runtime import GrpcService, ServiceRuntime, periodic
from cumulo_platform.service import Foundation

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
# What the lifecycle follows besides access: accounts from auth (a termination starts the
# deletion), purge reports from every data service, notices other services want delivered.
# Applied one by one, in order, each once.
ACCOUNT_EVENTS = [
    "account.created", "account.contact_changed", "account.cancelled", "account.status_changed", "purge.completed",
    "notice.requested",
]


def migrate(settings: LifecycleSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class LifecycleApp:
    settings: LifecycleSettings
    db: Database
    ledger: Ledger
    notifier: Notifier
    runtime: ServiceRuntime


async def build(settings: LifecycleSettings, *, clock: Clock | None = None) -> LifecycleApp:
    base = await Foundation.open(settings.platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    ledger = Ledger(base.db, settings, base.clock, remote_contacts(base.auth_channel()))
    base.states.ensure_active = ledger.ensure_active  # the authority itself: no call to make
    delivery = Delivery(settings)
    notifier = Notifier(base.db, settings, base.clock, delivery)
    access_consumer = EventConsumer(
        base.db, base.nats, durable="lifecycle-access", event_types=["access.recorded"],
        batch_handler=ledger.apply_access_batch, batch_size=1000,
    )
    account_consumer = EventConsumer(
        base.db, base.nats, durable="lifecycle-accounts", event_types=ACCOUNT_EVENTS, handler=ledger.apply_account_event
    )

    async def sweep() -> None:
        await ledger.sweep()

    runtime = base.runtime(
        services=[
            GrpcService(PUBLIC_SERVICE, LifecycleService(ledger), lifecycle_pb2_grpc.add_LifecycleServiceServicer_to_server),
            GrpcService(
                INTERNAL_SERVICE, LifecycleInternalService(ledger), lifecycle_pb2_grpc.add_LifecycleInternalServiceServicer_to_server
            ),
        ],
        # The lifecycle answers frozen accounts about their own state, so its API neither
        # reactivates them nor counts as a use (Reactivate does that explicitly).
        interceptor=base.interceptor(
            verifier=base.remote_verifier(),
            clients=base.remote_clients(),
            anonymous_methods=ANONYMOUS_METHODS,
            honour_states=False,
            record_access=False,
        ),
        jobs=[
            access_consumer.run,
            account_consumer.run,
            periodic(sweep, every=settings.sweep_every),
            periodic(notifier.deliver_due, every=settings.notice_every),
        ],
        cleanups=[delivery.close],
    )
    return LifecycleApp(
        settings=settings, db=base.db, ledger=ledger, notifier=notifier, runtime=runtime
    )
