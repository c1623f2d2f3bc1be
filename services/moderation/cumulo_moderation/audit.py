"""The audit log: every moderator and automatic action, with actor, target, reason and time.
Rows are only ever inserted (in the same transaction as the action); the table's trigger
refuses changes and deletions from anyone, and no RPC offers either."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo_moderation.adapters.tables import audit_log
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import InvalidArgument, parse_id
from cumulo_platform.paging import decode_token, encode_token, page_size


async def record(
    uow: UnitOfWork, *, at: dt.datetime, actor: str, action: str, account_id: uuid.UUID | str | None = None,
    case_id: uuid.UUID | None = None, target: str = "", reason: str = "",
) -> None:
    await uow.execute(
        sa.insert(audit_log).values(
            at=at, actor=actor, action=action, account_id=uuid.UUID(str(account_id)) if account_id else None, case_id=case_id,
            target=target, reason=reason,
        )
    )


async def entries(
    db: Database, *, account_id: str = "", case_id: str = "", size: int = 0, token: str = ""
) -> tuple[list[Any], str]:
    """Newest first; optionally of one account or one case."""
    limit = page_size(size, default=100, maximum=1000)
    query = sa.select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit + 1)
    if account_id:
        query = query.where(audit_log.c.account_id == parse_id(account_id, "account_id", "an account id (UUID)"))
    if case_id:
        query = query.where(audit_log.c.case_id == parse_id(case_id, "case_id", "a case id (UUID)"))
    if token:
        (before,) = decode_token(token, int)
        if not 0 < before < 2**63:
            raise InvalidArgument("page_token", "is not a token from a previous page")
        query = query.where(audit_log.c.audit_id < before)
    async with db.read() as conn:
        rows = list((await conn.execute(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_token([rows[-1].audit_id]) if more else ""


async def of_account(db: Database, account_id: uuid.UUID) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(audit_log).where(audit_log.c.account_id == account_id).order_by(audit_log.c.audit_id))).all())
