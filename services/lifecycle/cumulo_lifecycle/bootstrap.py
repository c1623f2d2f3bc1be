"""Wiring: settings in, a runnable lifecycle service out."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.auth.v1 import auth_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_lifecycle.access import Access
from cumulo_lifecycle.accounts import Accounts
from cumulo_lifecycle.adapters.contacts import ContactLookup, remote_contacts
from cumulo_lifecycle.adapters.delivery import Delivery
from cumulo_lifecycle.adapters.tables import SCHEMA
from cumulo_lifecycle.announcements import Announcements
from cumulo_lifecycle.api.internal import SERVICE as INTERNAL_SERVICE
from cumulo_lifecycle.api.internal import LifecycleInternalService
from cumulo_lifecycle.api.public import ANONYMOUS_METHODS, LifecycleService
from cumulo_lifecycle.api.public import SERVICE as PUBLIC_SERVICE
from cumulo_lifecycle.codes import VerificationCodes
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.consumers import AccountEvents, consumers
from cumulo_lifecycle.holds import Holds
from cumulo_lifecycle.jobs import jobs
from cumulo_lifecycle.metrics import register as register_metrics
from cumulo_lifecycle.notices import Notices
from cumulo_lifecycle.notifier import Notifier
from cumulo_lifecycle.reports import Reports
from cumulo_lifecycle.retiming import Retiming
from cumulo_lifecycle.rows import AccountRows
from cumulo_lifecycle.saga import Saga
from cumulo_lifecycle.schedule import Schedule
from cumulo_lifecycle.sweeper import Sweeper
from cumulo_lifecycle.takeout import LifecycleTakeout
from cumulo_lifecycle.transitions import Transitions
from cumulo_platform import migrations
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.runtime import GrpcService, ServiceRuntime
from cumulo_platform.service import Foundation
from cumulo_platform.takeout import takeout_service

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


def migrate(settings: LifecycleSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass(frozen=True)
class UseCases:
    """The lifecycle's capabilities, each given the others it works with."""

    access: Access
    accounts: Accounts
    announcements: Announcements
    account_events: AccountEvents
    holds: Holds
    reports: Reports
    retiming: Retiming
    saga: Saga
    sweeper: Sweeper
    transitions: Transitions


def compose(db: Database, settings: LifecycleSettings, clock: Clock, *, holds: LegalHolds, contacts: ContactLookup) -> UseCases:
    schedule = Schedule(settings.calendar)
    rows = AccountRows(holds, clock)
    notices = Notices(settings, clock)
    transitions = Transitions(clock, schedule, rows, notices)
    saga = Saga(db, settings, clock, rows, transitions)
    accounts = Accounts(db, clock, schedule=schedule, contacts=contacts)
    return UseCases(
        access=Access(db, clock, schedule=schedule, rows=rows, transitions=transitions),
        accounts=accounts,
        announcements=Announcements(db, settings, clock),
        account_events=AccountEvents(accounts=accounts, saga=saga, notices=notices),
        holds=Holds(db, clock, holds=holds, rows=rows, schedule=schedule, saga=saga),
        reports=Reports(db, settings, clock, rows=rows, holds=holds),
        retiming=Retiming(db, clock, schedule=schedule, rows=rows),
        saga=saga,
        sweeper=Sweeper(db, settings, clock, schedule=schedule, rows=rows, transitions=transitions, saga=saga, notices=notices),
        transitions=transitions,
    )


@dataclasses.dataclass
class LifecycleApp:
    settings: LifecycleSettings
    db: Database
    legal_holds: LegalHolds
    cases: UseCases
    notifier: Notifier
    runtime: ServiceRuntime


async def build(settings: LifecycleSettings, *, clock: Clock | None = None) -> LifecycleApp:
    base = await Foundation.open(settings.platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    # The authority on holds keeps the table itself: it follows no one's events.
    holds = LegalHolds(base.db)
    cases = compose(
        base.db, settings, base.clock, holds=holds,
        contacts=remote_contacts(base.remote("auth", auth_pb2_grpc.AuthInternalServiceStub)),
    )
    sweep_timer = register_metrics(base.metrics, settings)
    base.states.ensure_active = cases.access.ensure_active  # the authority itself: no call to make
    delivery = Delivery(settings)
    notifier = Notifier(base.db, settings, base.clock, delivery)
    runtime = base.runtime(
        services=[
            GrpcService(
                PUBLIC_SERVICE, LifecycleService(access=cases.access, reports=cases.reports, announcements=cases.announcements),
                lifecycle_pb2_grpc.add_LifecycleServiceServicer_to_server,
            ),
            GrpcService(
                INTERNAL_SERVICE,
                LifecycleInternalService(
                    access=cases.access, reports=cases.reports, holds=cases.holds, sweeper=cases.sweeper, codes=VerificationCodes(delivery),
                    announcements=cases.announcements,
                ),
                lifecycle_pb2_grpc.add_LifecycleInternalServiceServicer_to_server,
            ),
            takeout_service(LifecycleTakeout(base.db).parts),
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
            *(consumer.run for consumer in consumers(base.db, base.nats, access=cases.access, account_events=cases.account_events)),
            *jobs(
                settings, sweeper=cases.sweeper, notifier=notifier, accounts=cases.accounts, retiming=cases.retiming,
                announcements=cases.announcements, sweep_timer=sweep_timer,
            ),
        ],
        cleanups=[delivery.close],
    )
    return LifecycleApp(settings=settings, db=base.db, legal_holds=holds, cases=cases, notifier=notifier, runtime=runtime)
