"""A data service's part in the lifecycle's deletion saga: on `purge.requested` naming it
(or naming no service), delete everything of the account, then report `purge.completed`
in the same transaction as the event's processing. The deletion must be idempotent and
resumable: a failure leaves the event unacknowledged, and it comes back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cumulo.events.v1 import events_pb2
from cumulo_platform.account_states import AccountStates
from cumulo_platform.consumer import EventHandler
from cumulo_platform.db import UnitOfWork
from cumulo_platform.event_types import Event
from cumulo_platform.logging import get_logger

log = get_logger(__name__)

def purge_participant(service: str, purge_account: Callable[[str], Awaitable[int]], states: AccountStates) -> EventHandler:
    """`purge_account(account_id)` deletes the account's data and returns how many items;
    it runs its own short transactions, and raises to be asked again later (a legal hold,
    an unfinished deletion). The account is then refused by every replica (`states`), and
    the completion is reported in the event's own unit of work."""

    async def on_purge_requested(event: Event[events_pb2.PurgeRequested], uow: UnitOfWork) -> None:
        request = event.message
        if request.services and service not in request.services:
            return
        items = await purge_account(request.account_id)
        await states.mark_deleted(uow, request.account_id)
        log.info("account_purged", account_id=request.account_id, items=items)
        uow.emit(
            "purge.completed",
            events_pb2.PurgeCompleted(account_id=request.account_id, service=service, items_deleted=items),
            account_id=request.account_id,
        )

    return on_purge_requested
