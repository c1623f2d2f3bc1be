"""The events the locator acts on: `account.created` (a minor's guardian, who may then see the
minor's devices) and `purge.requested` (its part in the lifecycle's deletion saga, through the
platform's purge participant)."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_locator.adapters.tables import guardians
from cumulo_locator.devices import Devices
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import UnitOfWork
from cumulo_platform.event_types import Event
from cumulo_platform.runtime import Job
from cumulo_platform.service import Foundation


async def on_account_created(event: Event[events_pb2.AccountCreated], uow: UnitOfWork) -> None:
    created = event.message
    if not created.guardian_account_id:
        return
    await uow.execute(
        pg_insert(guardians)
        .values(minor_account_id=uuid.UUID(created.account_id), guardian_account_id=uuid.UUID(created.guardian_account_id))
        .on_conflict_do_nothing()
    )


def consumers(base: Foundation, devices: Devices) -> list[Job]:
    async def purge_account(account: uuid.UUID, reason: str) -> int:
        return await devices.purge(account)

    return [
        base.purge_consumer(purge_account),
        EventConsumer(
            base.db, base.nats, durable=f"{base.service}-accounts", event_types=["account.created"], handler=on_account_created
        ).run,
    ]
