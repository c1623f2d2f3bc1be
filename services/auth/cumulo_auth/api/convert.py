"""Rows and results to protobuf messages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cumulo.auth.v1 import auth_pb2
from cumulo_auth.issuing import Tokens
from cumulo_platform.grpc_convert import timestamp

STATUS_TO_PROTO = {
    "active": auth_pb2.ACCOUNT_STATUS_ACTIVE,
    "suspended": auth_pb2.ACCOUNT_STATUS_SUSPENDED,
    "terminated": auth_pb2.ACCOUNT_STATUS_TERMINATED,
    "cancelled": auth_pb2.ACCOUNT_STATUS_CANCELLED,
}
PROTO_TO_STATUS = {v: k for k, v in STATUS_TO_PROTO.items()}


def account(row: dict[str, Any]) -> auth_pb2.Account:
    born: dt.date = row["birth_date"]
    return auth_pb2.Account(
        account_id=str(row["account_id"]),
        email=row["email"] or "",
        phone=row["phone"] or "",
        birth_date=auth_pb2.Date(year=born.year, month=born.month, day=born.day),
        minor=row["minor"],
        guardian_account_id=str(row["guardian_account_id"] or ""),
        accepted_terms_version=row["terms_version"],
        status=STATUS_TO_PROTO[row["status"]],
        created_at=timestamp(row["created_at"]),
        roles=list(row["roles"]),
        email_verified=row["email_verified_at"] is not None,
        phone_verified=row["phone_verified_at"] is not None,
        two_step=row["two_step_at"] is not None,
        export_until=timestamp(row["export_until"]) if row["status"] == "terminated" else None,
    )


def tokens(value: Tokens) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=value.access_token,
        access_token_expires_at=timestamp(value.access_token_expires_at),
        refresh_token=value.refresh_token,
        refresh_token_expires_at=timestamp(value.refresh_token_expires_at),
        session_id=str(value.session_id),
    )


def date_tuple(date: auth_pb2.Date) -> tuple[int, int, int]:
    return (date.year, date.month, date.day)
