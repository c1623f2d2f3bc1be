"""What other services and operators do to accounts (AuthInternalService): suspension and
termination, roles, finding an account by its login, and its contacts for notices."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts
from cumulo_auth.domain import rules
from cumulo_auth.domain.accounts import CLOSED, ROLES, view
from cumulo_auth.live_sessions import LiveSessions
from cumulo_platform import ages, revocations
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, require_audit
from cumulo_platform.grpc_convert import timestamp

SETTABLE_STATUSES = ("active", "suspended", "terminated")
# The longest a terminated account's owner may be left to take their data out.
EXPORT_WINDOW_MAX = dt.timedelta(days=90)


@dataclasses.dataclass
class Contacts:
    """What the lifecycle's notices go to: the account's verified contacts and, for a minor,
    their guardian's while the guardian's access lasts."""

    email: str
    phone: str
    locale: str
    guardian_email: str = ""
    guardian_phone: str = ""
    guardian_until: dt.datetime | None = None


def verified(row: Any) -> tuple[str, str]:
    return (row.email or "") if row.email_verified_at is not None else "", (row.phone or "") if row.phone_verified_at is not None else ""


class Admin:
    def __init__(
        self, *, db: Database, clock: Clock, time_zone: zoneinfo.ZoneInfo, live: LiveSessions, revocations: revocations.Revocations
    ) -> None:
        self.revocations = revocations  # this replica's: a cut-off it announces holds here at commit
        self.live = live
        self.db = db
        self.clock = clock
        self.time_zone = time_zone

    async def set_account_status(
        self, *, account_id: str, status: str, suspended_until: dt.datetime | None, reason: str, actor: str,
        export_until: dt.datetime | None = None,
    ) -> dict[str, Any]:
        target = account_table.account_uuid(account_id)
        if status not in SETTABLE_STATUSES:
            raise InvalidArgument("status", "must be ACTIVE, SUSPENDED or TERMINATED")
        require_audit(reason, actor)
        now = self.clock.now()
        if status == "suspended" and suspended_until is not None and suspended_until <= now:
            raise InvalidArgument("suspended_until", "must be in the future")
        if export_until is not None and (status != "terminated" or not now < export_until <= now + EXPORT_WINDOW_MAX):
            raise InvalidArgument("export_until", f"only a termination has one, in the future and at most {EXPORT_WINDOW_MAX.days} days away")
        async with self.db.unit_of_work() as uow:
            current = await account_table.load(uow, target, lock=True)
            if current.status in CLOSED and status != current.status:
                raise FailedPrecondition(f"the account is {current.status}; that cannot be undone here", reason="ACCOUNT_CLOSED")
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == target)
                .values(
                    status=status,
                    status_reason=reason,
                    suspended_until=suspended_until if status == "suspended" else None,
                    export_until=export_until,
                    updated_at=now,
                )
            )
            self.live.forget_after_commit(uow, target)
            await account_table.record_status(uow, target, status=status, reason=reason, actor=actor, now=now)
            if status == "terminated":
                await account_table.revoke_all_sessions(uow, target, reason="account terminated", now=now)
            elif status == "suspended":  # its sessions come back when it is lifted; its tokens do not
                revocations.announce(uow, str(target), now=now, reason="account suspended", local=self.revocations)
            uow.emit(
                "account.status_changed",
                events_pb2.AccountStatusChanged(
                    account_id=str(target),
                    status=status,
                    reason=reason,
                    suspended_until=timestamp(suspended_until) if status == "suspended" else None,
                    actor=actor,
                    export_until=timestamp(export_until),
                ),
                account_id=str(target),
            )
            row = await account_table.load(uow, target)
            await uow.commit()
        return view(row, now=self.clock.now(), time_zone=self.time_zone)

    async def set_roles(self, account_id: str, roles: list[str], *, reason: str, actor: str) -> list[str]:
        """An account's roles from now on; its tokens carry them from the next login or refresh,
        and the tokens it holds stop working everywhere (cumulo_platform.revocations)."""
        target = account_table.account_uuid(account_id)
        require_audit(reason, actor)
        wanted = sorted(set(roles))
        for i, role in enumerate(roles):
            if role not in ROLES:
                raise InvalidArgument(f"roles[{i}]", f"unknown role; known roles: {', '.join(ROLES)}")
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            current = await account_table.load(uow, target, lock=True)
            if current.status in CLOSED:
                raise FailedPrecondition(f"the account is {current.status}", reason="ACCOUNT_CLOSED")
            await uow.execute(sa.update(accounts).where(accounts.c.account_id == target).values(roles=wanted, updated_at=now))
            self.live.forget_after_commit(uow, target)
            await account_table.record_status(
                uow, target, status=current.status, reason=f"roles set to [{', '.join(wanted)}]: {reason}", actor=actor, now=now
            )
            if wanted != sorted(current.roles or []):  # tokens carrying the old roles stop now
                revocations.announce(uow, str(target), now=now, reason="roles changed", local=self.revocations)
            await uow.commit()
        return wanted

    async def find_account(self, login: str, *, verified_only: bool = True) -> str:
        key = rules.login_key(login)
        query = sa.select(accounts.c.account_id, accounts.c.status).where(account_table.login_column(key) == key)
        if verified_only:
            query = query.where(account_table.verified_column(key).is_not(None))
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.status in CLOSED:
            # An unverified contact finds nobody: whoever typed it in first may not own it.
            raise NotFound("no cumulo account with this e-mail or phone", reason="ACCOUNT_NOT_FOUND")
        return str(row.account_id)

    async def get_contacts(self, account_id: str) -> Contacts:
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_table.account_uuid(account_id))
            guardian = None
            if row.guardian_account_id is not None:
                guardian = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == row.guardian_account_id))).first()
        # Verified contacts only: an unverified one (a typo, someone else's address) gets no notice.
        email, phone = verified(row)
        found = Contacts(email, phone, row.locale)
        if guardian is not None and row.minor and row.guardian_revoked_at is None and guardian.status not in ("deleted", "terminated"):
            until = ages.comes_of_age(row.birth_date, self.time_zone)
            if self.clock.now() < until:
                found.guardian_email, found.guardian_phone = verified(guardian)
                found.guardian_until = until
        return found
