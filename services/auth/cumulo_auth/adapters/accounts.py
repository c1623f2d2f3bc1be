"""Reading and writing the accounts, sessions and status history tables, as every use case
needs them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from cumulo_auth.adapters.tables import accounts, sessions, status_changes, terms_acceptances
from cumulo_platform import revocations
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import AlreadyExists, NotFound, parse_id

# Built once: the hottest statement (every authenticated auth call) skips SQL construction.
_SESSION_ACCOUNT = (
    sa.select(accounts, sessions.c.revoked_at, sessions.c.revoke_reason)
    .join(sessions, accounts.c.account_id == sessions.c.account_id)
    .where(sessions.c.session_id == sa.bindparam("session_id"))
)


def account_uuid(value: str) -> uuid.UUID:
    return parse_id(value, "account_id", "an account id (UUID)")


def login_column(login_key: str) -> sa.Column[Any]:
    """The column a normalized login is looked up in: an e-mail address or a phone number."""
    return accounts.c.email if "@" in login_key else accounts.c.phone


def verified_column(login_key: str) -> sa.Column[Any]:
    """When the contact `login_column(login_key)` was verified (None: it is not)."""
    return accounts.c.email_verified_at if "@" in login_key else accounts.c.phone_verified_at


async def load(uow: UnitOfWork, account_id: uuid.UUID, *, lock: bool = False) -> Any:
    query = sa.select(accounts).where(accounts.c.account_id == account_id)
    if lock:
        query = query.with_for_update()
    row = (await uow.execute(query)).first()
    if row is None:
        raise NotFound("no such account", reason="ACCOUNT_NOT_FOUND")
    return row


async def session_account(db: Database, session_id: uuid.UUID) -> Any:
    """The account of a session with the session's revocation, in one statement (or None)."""
    async with db.read() as conn:
        return (await conn.execute(_SESSION_ACCOUNT, {"session_id": session_id})).first()


async def contact_taken(uow: UnitOfWork, field: str, value: str) -> bool:
    return (await uow.execute(sa.select(sa.literal(1)).where(accounts.c[field] == value))).first() is not None


def contact_clash(exc: IntegrityError, *, reason: str) -> AlreadyExists:
    """The unique constraint a concurrent writer hit names the contact method."""
    field = "phone" if "accounts_phone_key" in str(exc.orig) else "email"
    return AlreadyExists(f"{field}: another account uses this {field}", reason=reason, metadata={"field": field})


async def record_status(uow: UnitOfWork, account_id: uuid.UUID, *, status: str, reason: str, actor: str, now: dt.datetime) -> None:
    """The audit trail of status and role changes."""
    await uow.execute(
        sa.insert(status_changes).values(account_id=account_id, status=status, reason=reason, actor=actor, changed_at=now)
    )


async def revoke_session(uow: UnitOfWork, session_id: uuid.UUID, *, reason: str, now: dt.datetime) -> None:
    """The session ends, and every service refuses its access tokens from now on."""
    revoked = (
        await uow.execute(
            sa.update(sessions)
            .where(sessions.c.session_id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
            .returning(sessions.c.account_id)
        )
    ).first()
    if revoked is not None:
        revocations.announce(uow, str(revoked.account_id), now=now, reason=reason, session_ids=[str(session_id)])


async def revoke_all_sessions(
    uow: UnitOfWork, account_id: uuid.UUID, *, reason: str, now: dt.datetime, keep: uuid.UUID | None = None
) -> None:
    """Every session but `keep` ends, and every service refuses their access tokens from now on."""
    query = sa.update(sessions).where(sessions.c.account_id == account_id, sessions.c.revoked_at.is_(None))
    if keep is not None:
        query = query.where(sessions.c.session_id != keep)
    ended = (await uow.execute(query.values(revoked_at=now, revoke_reason=reason).returning(sessions.c.session_id))).all()
    if ended:
        revocations.announce(uow, str(account_id), now=now, reason=reason, session_ids=[str(row.session_id) for row in ended])


async def record_terms(
    uow: UnitOfWork, account_id: uuid.UUID, version: str, *, now: dt.datetime, client_id: str, accepted_by: uuid.UUID | None = None
) -> None:
    """An acceptance of the terms `version`, kept beside the earlier ones (the first time counts)."""
    await uow.execute(
        pg_insert(terms_acceptances)
        .values(account_id=account_id, version=version, accepted_at=now, client_id=client_id, accepted_by=accepted_by)
        .on_conflict_do_nothing()
    )
