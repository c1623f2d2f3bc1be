"""The events the blob service takes in: the account purge of the lifecycle's deletion saga,
through the platform's purge participant (durable consumer `blob-purge`), and a termination
(`account.status_changed`, durable `blob-accounts`): the account's share links and shares with
other people are disconnected at once, even while its owner may still take their data out
before the deletion. The account-state gate (`account.state_changed`) and legal holds
(`account.hold_changed`) are kept by the platform's consumers, which `Foundation.runtime()`
adds."""

from __future__ import annotations

import uuid
from typing import Any

from cumulo.events.v1 import events_pb2
from cumulo_blob.purge import Purge
from cumulo_blob.sharing import Sharing
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import UnitOfWork
from cumulo_platform.event_types import Event
from cumulo_platform.runtime import Job
from cumulo_platform.service import Foundation


def consumers(base: Foundation, purge: Purge, sharing: Sharing) -> list[Job]:
    async def on_status_changed(event: Event[Any], uow: UnitOfWork) -> None:
        changed: events_pb2.AccountStatusChanged = event.message
        if changed.status == "terminated":
            await sharing.disconnect_account(uow, uuid.UUID(changed.account_id), reason="account terminated")

    return [
        base.purge_consumer(purge.account),
        EventConsumer(base.db, base.nats, durable="blob-accounts", event_types=["account.status_changed"], handler=on_status_changed).run,
    ]
