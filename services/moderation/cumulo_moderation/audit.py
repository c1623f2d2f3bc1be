"""The audit log: every moderator and automatic action, with actor, target, reason and time.
Rows are only ever inserted (in the same transaction as the action); the table's trigger
refuses changes and deletions from anyone, and no RPC offers either.

Entries are ordered by their sequence (`audit_id`, given at insert), never by time alone: a
cause is recorded before what it causes (a complaint before the case it opens, a decision
before its effect), so the order holds even when two share a timestamp. Targets name their
real kind and id: `file:<id>`, `folder:<id>`, `account:<id>`, `sha256:<digest>`, and a share
link by its own id with what it leads to, `link:<link id> (file:<id>)`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo_moderation.adapters.tables import audit_log
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import InvalidArgument, parse_id
from cumulo_platform.paging import decode_token, encode_token, page_size

# A listing's order, carried in its page tokens: a case's trail, or the log (of an account).
OLDEST_FIRST, NEWEST_FIRST = "oldest-first", "newest-first"


def when(at: dt.datetime) -> str:
    """A time inside an entry's reason: UTC, unambiguous wherever the log is read."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def target(kind: str, *, account_id: Any = None, node_id: Any = None, node_kind: str = "", link_id: Any = None) -> str:
    """What an entry is about, by its real kind and id. A reported share link is named by its
    own id with the file or folder it leads to: the link is what was reported, the file what
    a block acts on (`effect.block` names `file:<id>`)."""
    content = f"{node_kind or 'file'}:{node_id}"
    if kind == "link" and node_id:
        return f"link:{link_id} ({content})" if link_id else content
    if kind == "file" and node_id:
        return content
    return f"account:{account_id}"


def case_target(row: Any) -> str:
    """What a case (row) is about."""
    return target(row.target_kind, account_id=row.account_id, node_id=row.node_id, node_kind=row.node_kind, link_id=row.link_id)


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


async def record_each(
    uow: UnitOfWork, *, at: dt.datetime, actor: str, action: str, reasons: dict[str, str], case_id: uuid.UUID | None = None
) -> None:
    """One entry per target (`reasons`: target to reason), in one statement: an action on many
    targets at once (a blocklist import reaching blob)."""
    if reasons:
        await uow.execute(
            sa.insert(audit_log).values(
                [{"at": at, "actor": actor, "action": action, "account_id": None, "case_id": case_id, "target": target, "reason": reason}
                 for target, reason in reasons.items()]
            )
        )


async def entries(
    db: Database, *, account_id: str = "", case_id: str = "", size: int = 0, token: str = ""
) -> tuple[list[Any], str]:
    """Newest first; optionally of one account. One case's trail reads as it happened,
    oldest first: the complaint, the case, the decision, its effect. A page token carries its
    order: one from the other order would skip or repeat entries, so it is refused."""
    limit = page_size(size, default=100, maximum=1000)
    oldest_first = bool(case_id)
    mode = OLDEST_FIRST if oldest_first else NEWEST_FIRST
    order = audit_log.c.audit_id.asc() if oldest_first else audit_log.c.audit_id.desc()
    query = sa.select(audit_log).order_by(order).limit(limit + 1)
    if account_id:
        query = query.where(audit_log.c.account_id == parse_id(account_id, "account_id", "an account id (UUID)"))
    if case_id:
        query = query.where(audit_log.c.case_id == parse_id(case_id, "case_id", "a case id (UUID)"))
    if token:
        token_mode, last = decode_token(token, str, int)
        if token_mode != mode:
            raise InvalidArgument(
                "page_token",
                "comes from a listing in the other order (a case's trail lists oldest first, the rest newest first); "
                "list again without it",
            )
        if not 0 < last < 2**63:
            raise InvalidArgument("page_token", "is not a token from a previous page")
        query = query.where(audit_log.c.audit_id > last if oldest_first else audit_log.c.audit_id < last)
    async with db.read() as conn:
        rows = list((await conn.execute(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_token([mode, rows[-1].audit_id]) if more else ""


async def of_account(db: Database, account_id: uuid.UUID) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(audit_log).where(audit_log.c.account_id == account_id).order_by(audit_log.c.audit_id))).all())
