"""The events the lifecycle follows, each handed to its use case inside the consumer's unit of
work (so no handler calls another service): access from every service, accounts from auth (a
cancellation or a termination asks for the deletion), purge reports from every data service,
notices other services want delivered."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from cumulo.events.v1 import events_pb2
from cumulo_lifecycle.access import Access
from cumulo_lifecycle.accounts import Accounts
from cumulo_lifecycle.notices import Notices
from cumulo_lifecycle.saga import Saga
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.event_types import Event
from cumulo_platform.events import Nats

Handler = Callable[[Event[Any], UnitOfWork], Awaitable[None]]


class AccountEvents:
    """Applied one by one, in order, each once."""

    def __init__(self, *, accounts: Accounts, saga: Saga, notices: Notices) -> None:
        self.accounts = accounts
        self.saga = saga
        self.notices = notices
        self.handlers: dict[str, Handler] = {
            "account.created": self.on_created,
            "account.contact_changed": self.on_contact_changed,
            "guardian.revoked": self.on_guardian_revoked,
            "account.cancelled": self.on_cancelled,
            "account.status_changed": self.on_status_changed,
            "purge.completed": self.on_purge_completed,
            "notice.requested": self.on_notice_requested,
        }

    async def apply(self, event: Event[Any], uow: UnitOfWork) -> None:
        await self.handlers[event.type](event, uow)

    async def on_created(self, event: Event[events_pb2.AccountCreated], uow: UnitOfWork) -> None:
        await self.accounts.created(uow, event.message)

    async def on_contact_changed(self, event: Event[events_pb2.ContactChanged], uow: UnitOfWork) -> None:
        if not event.message.verified:  # a verification changes no value: nobody to tell
            await self.notices.contact_changed(uow, event.event_id, event.message, event.occurred_at)
        await self.accounts.contact_changed(uow, event.message)

    async def on_guardian_revoked(self, event: Event[events_pb2.GuardianRevoked], uow: UnitOfWork) -> None:
        await self.accounts.guardian_revoked(uow, event.message)

    async def on_cancelled(self, event: Event[events_pb2.AccountCancelled], uow: UnitOfWork) -> None:
        cancelled = event.message
        await self.saga.asked(uow, uuid.UUID(cancelled.account_id), cancelled.cancelled_at.ToDatetime(tzinfo=dt.UTC), "cancellation")

    async def on_status_changed(self, event: Event[events_pb2.AccountStatusChanged], uow: UnitOfWork) -> None:
        if event.message.status == "terminated":
            account = uuid.UUID(event.message.account_id)
            window = event.message.export_until.ToDatetime(tzinfo=dt.UTC) if event.message.HasField("export_until") else None
            if window is not None and window > event.occurred_at:
                # Its owner may take their data out first: the deletion waits until then.
                await self.saga.defer(uow, account, window, "termination")
            else:
                await self.saga.asked(uow, account, event.occurred_at, "termination")

    async def on_purge_completed(self, event: Event[events_pb2.PurgeCompleted], uow: UnitOfWork) -> None:
        await self.saga.completed(uow, event.message)

    async def on_notice_requested(self, event: Event[events_pb2.NoticeRequested], uow: UnitOfWork) -> None:
        await self.notices.requested(uow, event.message)


def consumers(db: Database, nats_client: Nats, *, access: Access, account_events: AccountEvents) -> list[EventConsumer]:
    return [
        EventConsumer(
            db, nats_client, durable="lifecycle-access", event_types=["access.recorded"],
            batch_handler=access.apply_batch, batch_size=1000,
        ),
        EventConsumer(
            db, nats_client, durable="lifecycle-accounts", event_types=list(account_events.handlers), handler=account_events.apply
        ),
    ]
