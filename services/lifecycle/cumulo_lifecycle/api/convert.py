"""Rows to protobuf messages."""

from __future__ import annotations

from typing import Any

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo_platform.grpc_convert import timestamp

STATE = {
    "active": pb.ACCOUNT_STATE_ACTIVE,
    "frozen": pb.ACCOUNT_STATE_FROZEN,
    "deleting": pb.ACCOUNT_STATE_DELETING,
    "deleted": pb.ACCOUNT_STATE_DELETED,
}
STATE_NAME = {value: name for name, value in STATE.items()}


ANNOUNCEMENT_KIND = {"terms": pb.ANNOUNCEMENT_KIND_TERMS, "maintenance": pb.ANNOUNCEMENT_KIND_MAINTENANCE}
ANNOUNCEMENT_KIND_NAME = {value: name for name, value in ANNOUNCEMENT_KIND.items()}


def announcement(row: Any) -> pb.Announcement:
    return pb.Announcement(
        announcement_id=str(row.announcement_id), kind=ANNOUNCEMENT_KIND[row.kind], reference=row.reference,
        starts_at=timestamp(row.starts_at), ends_at=timestamp(row.ends_at), message_en=row.message_en, message_zh=row.message_zh,
        created_at=timestamp(row.created_at), accounts_queued=row.accounts_queued, queued_at=timestamp(row.queued_at),
    )


def account(row: Any) -> pb.Account:
    return pb.Account(
        account_id=str(row.account_id),
        state=STATE[row.state],
        last_access_at=timestamp(row.last_access_at),
        freeze_at=timestamp(row.freeze_at) if row.state == "active" else None,
        frozen_at=timestamp(row.frozen_at),
        delete_at=timestamp(row.delete_at),
        held=row.held,
        hold_reason=row.hold_reason,
        deleted_at=timestamp(row.deleted_at),
        deletion_reason=row.deletion_reason,
    )


def transition(row: Any) -> pb.Transition:
    return pb.Transition(from_state=row.from_state, to_state=row.to_state, reason=row.reason, at=timestamp(row.at))


def notice(row: Any) -> pb.Notice:
    return pb.Notice(
        kind=row.kind, channel=row.channel, status=row.status, attempts=row.attempts,
        created_at=timestamp(row.created_at), sent_at=timestamp(row.sent_at),
    )
