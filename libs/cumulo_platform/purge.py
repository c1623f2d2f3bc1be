"""A data service's part in the lifecycle's deletion saga: on `purge.requested` naming it
(or naming no service), delete everything of the account, then report `purge.completed`
in the same transaction as the event's processing. The deletion must be idempotent and
resumable: a failure leaves the event unacknowledged, and it comes back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cumulo.events.v1 import events_pb2
from cumulo_platform.db import UnitOfWork
from cumulo_platform.logging import get_logger

log = get_logger(__name__)

EventHandler = Callable[[events_pb2.Envelope, UnitOfWork], Awaitable[None]]


def purge_participant(service: str, purge_account: Callable[[str], Awaitable[int]]) -> EventHandler:
    """`purge_account(account_id)` deletes the account's data and returns how many items."""

    async def on_purge_requested(envelope: events_pb2.Envelope, uow: UnitOfWork) -> None:
        request = events_pb2.PurgeRequested()
        envelope.payload.Unpack(request)
        if request.services and service not in request.services:
            return
        items = await purge_account(request.account_id)
        log.info("account_purged", account_id=request.account_id, items=items)
        uow.emit(
            "purge.completed",
            events_pb2.PurgeCompleted(account_id=request.account_id, service=service, items_deleted=items),
            account_id=request.account_id,
        )

    return on_purge_requested
