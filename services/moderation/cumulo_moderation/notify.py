"""Messages to people: queued as `notice.requested` in the unit of work of what they tell of,
and delivered by the lifecycle (once per reference) to the account's contacts on record."""

from __future__ import annotations

from typing import Any

from cumulo.events.v1 import events_pb2
from cumulo_moderation.domain.notices import Message
from cumulo_platform.db import UnitOfWork


def notify(uow: UnitOfWork, account_id: Any, reference: str, message: Message, *, address: str = "") -> None:
    """To an account's owner, or to a contact address of someone without an account."""
    account = str(account_id) if account_id else ""
    uow.emit(
        "notice.requested",
        events_pb2.NoticeRequested(account_id=account, reference=reference, subject=message.subject, body=message.body, address=address),
        account_id=account,
    )
