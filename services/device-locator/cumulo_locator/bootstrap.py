"""Wiring: settings in, a runnable device-locator service out."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.locator.v1 import locator_pb2_grpc
from cumulo_locator.adapters.tables import SCHEMA
from cumulo_locator.api.public import AGENT_SERVICE, SERVICE, DeviceAgentService, DeviceLocatorService
from cumulo_locator.commands import Commands
from cumulo_locator.config import LocatorSettings
from cumulo_locator.consumers import consumers
from cumulo_locator.devices import Devices
from cumulo_locator.jobs import jobs
from cumulo_locator.metrics import register as register_metrics
from cumulo_locator.takeout import LocatorTakeout
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

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
SERVICE_NAME = "locator"
COMMANDS_SUBJECT = "cumulo.locator.commands"


def migrate(settings: LocatorSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class LocatorApp:
    settings: LocatorSettings
    db: Database
    devices: Devices
    commands: Commands
    holds: LegalHolds
    states: AccountStates
    recorder: LastAccessRecorder
    runtime: ServiceRuntime


async def build(settings: LocatorSettings, *, clock: Clock | None = None) -> LocatorApp:
    base = await Foundation.open(settings.platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    holds = base.legal_holds()  # its retention and device removal leave held accounts alone
    register_metrics(base.metrics)
    devices = Devices(base.db, settings, base.clock, holds, base.states)
    fanout = Fanout(base.nats, COMMANDS_SUBJECT)
    commands = Commands(base.db, settings, base.clock, devices, fanout)

    runtime = base.runtime(
        services=[
            GrpcService(SERVICE, DeviceLocatorService(devices, commands), locator_pb2_grpc.add_DeviceLocatorServiceServicer_to_server),
            GrpcService(
                AGENT_SERVICE,
                DeviceAgentService(devices, commands, heartbeat=settings.heartbeat.total_seconds()),
                locator_pb2_grpc.add_DeviceAgentServiceServicer_to_server,
            ),
            evidence_service(SERVICE_NAME, await base.preservation(), devices.evidence),
            takeout_service(LocatorTakeout(base.db).parts),
        ],
        interceptor=base.interceptor(verifier=base.remote_verifier(), clients=base.remote_clients()),
        jobs=[fanout.run, *jobs(settings, devices, commands), *consumers(base, devices)],
        on_drain=[fanout.close],
    )
    return LocatorApp(
        settings=settings, db=base.db, devices=devices, commands=commands, holds=holds, states=base.states,
        recorder=base.recorder, runtime=runtime,
    )
