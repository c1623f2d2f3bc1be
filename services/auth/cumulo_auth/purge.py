"""Auth's part in the lifecycle's deletion saga (run by the platform's purge participant):
sessions and refresh tokens go, the contact methods, password, roles, birth date, terms, locale
and guardian link go (the row stays as the account's tombstone: id, status, when); the keyed
hash of each login stays, so that logging in with it answers ACCOUNT_DELETED."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import (
    accounts,
    contact_codes,
    deleted_logins,
    login_throttle,
    recovery_codes,
    refresh_tokens,
    second_factors,
    sessions,
    terms_acceptances,
)
from cumulo_auth.domain import credentials
from cumulo_auth.live_sessions import LiveSessions
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database

# The lifecycle's saga asks, for a reason of its own (inactivity, cancellation, termination).
PURGE_ACTOR = "lifecycle"


class AccountPurge:
    def __init__(self, *, db: Database, clock: Clock, login_key: bytes, live: LiveSessions) -> None:
        self.live = live
        self.db = db
        self.clock = clock
        self.login_key = login_key

    async def purge_account(self, target: uuid.UUID, reason: str) -> int:
        """Deletes what auth keeps of the account and returns how many items (sessions, and the
        account's own data as one); the saga's reason is recorded with the status. Idempotent:
        an account already purged (or never known) deletes nothing and reports 0."""
        reason = reason or "deleted"
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == target).with_for_update())).first()
            if row is None or row.status == "deleted":
                return 0
            for login in (row.email, row.phone):
                if login:
                    await uow.execute(
                        pg_insert(deleted_logins)
                        .values(login_digest=credentials.login_digest(self.login_key, login), account_id=target, deleted_at=now)
                        .on_conflict_do_update(
                            index_elements=[deleted_logins.c.login_digest],
                            set_={"account_id": target, "deleted_at": now},
                        )
                    )
            await uow.execute(sa.delete(refresh_tokens).where(refresh_tokens.c.account_id == target))
            deleted = (await uow.execute(sa.delete(sessions).where(sessions.c.account_id == target))).rowcount or 0
            await uow.execute(sa.delete(login_throttle).where(login_throttle.c.key == f"id:{target}"))
            await uow.execute(sa.delete(contact_codes).where(contact_codes.c.account_id == target))
            await uow.execute(sa.delete(recovery_codes).where(recovery_codes.c.account_id == target))
            await uow.execute(sa.delete(second_factors).where(second_factors.c.account_id == target))
            await uow.execute(sa.delete(terms_acceptances).where(terms_acceptances.c.account_id == target))
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == target)
                .values(
                    email=None, phone=None, email_verified_at=None, phone_verified_at=None, two_step_at=None, password_hash=None, roles=[], status="deleted", status_reason=reason, updated_at=now,
                    # The row is the account's tombstone: id, status and when, nothing personal.
                    birth_date=None, terms_version=None, terms_accepted_at=None, created_at=None, locale=None,
                    guardian_account_id=None, guardian_consent_at=None, guardian_revoked_at=None, suspended_until=None,
                    cancelled_at=None,
                )
            )
            self.live.forget_after_commit(uow, target)
            await account_table.record_status(uow, target, status="deleted", reason=reason, actor=PURGE_ACTOR, now=now)
            await uow.commit()
        return deleted + 1
