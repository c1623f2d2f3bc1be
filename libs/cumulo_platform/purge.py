"""A service's part in the lifecycle's deletion saga, once for every service.

On `purge.requested` naming the service (or naming no service):
1. the account is refused by every replica of the service, before anything is deleted, so
   that nothing new of it arrives while its data goes (`AccountStates.mark_deleted`, in a unit
   of work of its own: the deletion has begun and is never undone);
2. `purge_account(account, reason)` deletes everything of it in short transactions of its own,
   idempotently (a second run deletes nothing and says 0);
3. `purge.completed` is reported in the event's unit of work.

The lifecycle starts no deletion of a held account. A service whose copy of the holds still
says "held" has not yet heard of the release: the purge is asked again later (`PurgeNotYet`,
an UNAVAILABLE, which the consumer retries for as long as it lasts and never parks); so is a
purge that could not finish (storage away). A malformed request (a bad account id) is refused
as INVALID_ARGUMENT and, after its retries, parked as a dead letter."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from cumulo.events.v1 import events_pb2
from cumulo_platform.account_states import AccountStates
from cumulo_platform.consumer import EventHandler
from cumulo_platform.db import UnitOfWork
from cumulo_platform.errors import Unavailable, parse_id
from cumulo_platform.event_types import Event
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger

log = get_logger(__name__)

# (account, the saga's reason: "inactivity", "cancellation", "termination") -> items deleted
PurgeAccount = Callable[[uuid.UUID, str], Awaitable[int]]


class PurgeNotYet(Unavailable):
    """The purge cannot finish now; the same request comes back later."""

    default_reason = "PURGE_NOT_YET"


async def refuse(states: AccountStates, account: uuid.UUID) -> None:
    """Step 1: from now on every replica refuses the account (within its 1 s refresh)."""
    async with states.db.unit_of_work() as uow:
        await states.mark_deleted(uow, str(account))
        await uow.commit()


def report(uow: UnitOfWork, service: str, account: uuid.UUID, items: int) -> None:
    """Step 3: `purge.completed`, in the caller's unit of work."""
    log.info("account_purged", account_id=str(account), items=items)
    uow.emit(
        "purge.completed",
        events_pb2.PurgeCompleted(account_id=str(account), service=service, items_deleted=items),
        account_id=str(account),
    )


def purge_participant(
    service: str, purge_account: PurgeAccount, states: AccountStates, holds: LegalHolds | None = None
) -> EventHandler:
    """The `purge.requested` handler; `holds`, when the service keeps a copy of them."""

    async def on_purge_requested(event: Event[events_pb2.PurgeRequested], uow: UnitOfWork) -> None:
        request = event.message
        if request.services and service not in request.services:
            return
        account = parse_id(request.account_id, "account_id", "an account id (UUID)")
        if holds is not None and await holds.held(account):
            raise PurgeNotYet("the release of the account's legal hold has not reached this service yet", reason="LEGAL_HOLD")
        await refuse(states, account)
        report(uow, service, account, await purge_account(account, request.reason))

    return on_purge_requested
