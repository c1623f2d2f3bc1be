"""The events the locator acts on: `account.created` (a minor's guardian, who may then see the
minor's devices until the minor comes of age), `guardian.revoked` (an adult ended it sooner) and `purge.requested` (its part in the lifecycle's deletion saga, through the
platform's purge participant)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_locator.adapters.tables import guardians
from cumulo_locator.devices import Devices
from cumulo_platform.account_states import AccountStates
from cumulo_platform.consumer import EventConsumer, EventHandler
from cumulo_platform.db import UnitOfWork
from cumulo_platform.event_types import Event
from cumulo_platform.runtime import Job
from cumulo_platform.service import Foundation


async def on_account_created(event: Event[events_pb2.AccountCreated], uow: UnitOfWork, states: AccountStates) -> None:
    created = event.message
    if not created.guardian_account_id:
        return
    if await states.admit_writes(uow, {uuid.UUID(created.account_id)}):
        return  # late, after the minor's account was purged here: nothing of it comes back
    until = created.guardian_until.ToDatetime(dt.UTC) if created.HasField("guardian_until") else None
    await uow.execute(
        pg_insert(guardians)
        .values(minor_account_id=uuid.UUID(created.account_id), guardian_account_id=uuid.UUID(created.guardian_account_id), until=until)
        .on_conflict_do_nothing()
    )


async def on_guardian_revoked(event: Event[events_pb2.GuardianRevoked], uow: UnitOfWork) -> None:
    revoked = event.message
    await uow.execute(
        sa.update(guardians)
        .where(
            guardians.c.minor_account_id == uuid.UUID(revoked.account_id),
            guardians.c.guardian_account_id == uuid.UUID(revoked.guardian_account_id),
            guardians.c.revoked_at.is_(None),
        )
        .values(revoked_at=revoked.revoked_at.ToDatetime(dt.UTC))
    )


ACCOUNT_EVENTS = ("account.created", "guardian.revoked")


def account_events(states: AccountStates) -> EventHandler:
    async def on_account_event(event: Event[Any], uow: UnitOfWork) -> None:
        if event.type == "account.created":
            await on_account_created(event, uow, states)
        else:
            await on_guardian_revoked(event, uow)

    return on_account_event


def consumers(base: Foundation, devices: Devices) -> list[Job]:
    async def purge_account(account: uuid.UUID, reason: str) -> int:
        return await devices.purge(account)

    return [
        base.purge_consumer(purge_account),
        EventConsumer(
            base.db, base.nats, durable=f"{base.service}-accounts", event_types=list(ACCOUNT_EVENTS), handler=account_events(base.states)
        ).run,
    ]
