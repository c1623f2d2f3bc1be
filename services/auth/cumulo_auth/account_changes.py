"""What the owner changes on their own account: contact methods, accepted terms, password,
and cancelling the account."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts, terms_acceptances
from cumulo_auth.config import AuthSettings
from cumulo_auth.contacts import ContactCodes
from cumulo_auth.domain import rules
from cumulo_auth.domain.accounts import refuse_unless_usable, view
from cumulo_auth.sessions import Sessions
from cumulo_auth.throttling import LoginThrottle, confirm_password
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Unauthenticated
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.passwords import Passwords
from cumulo_platform.tokens import Principal, require_recent_password

CANCELLED_SESSION_REASON = "account cancelled"
CONTACT_FIELDS = ("email", "phone")


class AccountChanges:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        settings: AuthSettings,
        passwords: Passwords,
        throttle: LoginThrottle,
        sessions: Sessions,
        codes: ContactCodes,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.passwords = passwords
        self.throttle = throttle
        self.sessions = sessions
        self.codes = codes

    def _view(self, row: Any) -> dict[str, Any]:
        return view(row, now=self.clock.now(), time_zone=self.settings.time_zone)

    async def update_contacts(self, principal: Principal, *, email: str, phone: str, mask: list[str]) -> dict[str, Any]:
        if not mask:
            raise InvalidArgument("update_mask", "name the contact methods to change: email, phone")
        unknown = set(mask) - set(CONTACT_FIELDS)
        if unknown:
            raise InvalidArgument("update_mask", f"unknown field {sorted(unknown)[0]!r}; use email or phone")
        changes: dict[str, str | None] = {}
        if "email" in mask:
            changes["email"] = rules.normalize_email(email) if email.strip() else None
        if "phone" in mask:
            changes["phone"] = rules.normalize_phone(phone) if phone.strip() else None
        # A session someone else holds (a phone left unlocked) must not redirect the notices
        # and the account's recovery: the password, entered lately, first.
        require_recent_password(
            principal, now=self.clock.now(), within=self.settings.contact_change_password_window, action="changing a contact"
        )
        account_id = uuid.UUID(principal.account_id)
        async with self.db.unit_of_work() as uow:
            current = await account_table.load(uow, account_id, lock=True)
            merged = {"email": current.email, "phone": current.phone, **changes}
            if merged["email"] is None and merged["phone"] is None:
                raise FailedPrecondition("an account keeps at least one contact method", reason="CONTACT_REQUIRED")
            changed = [f for f, v in changes.items() if v != getattr(current, f)]
            for field in changed:
                value = changes[field]
                if value is not None and await account_table.contact_taken(uow, field, value):
                    raise AlreadyExists(f"{field}: another account uses this {field}", reason="CONTACT_TAKEN", metadata={"field": field})
            if changed:
                try:
                    # A new contact is unverified until its owner enters the code sent to it.
                    await uow.execute(
                        sa.update(accounts)
                        .where(accounts.c.account_id == account_id)
                        .values(**{f: changes[f] for f in changed}, **{f"{f}_verified_at": None for f in changed}, updated_at=self.clock.now())
                    )
                    await self.codes.void(uow, account_id, changed)
                    self.sessions.live.forget_after_commit(uow, account_id)
                except IntegrityError as exc:
                    # Another account claimed the same contact between our check and this write.
                    raise account_table.contact_clash(exc, reason="CONTACT_TAKEN") from None
            row = await account_table.load(uow, account_id)
            if changed:
                uow.emit(
                    "account.contact_changed",
                    events_pb2.ContactChanged(account_id=str(account_id), changed=changed),
                    account_id=str(account_id),
                )
            await uow.commit()
        return self._view(row)

    async def accept_terms(self, principal: Principal, version: str) -> dict[str, Any]:
        if version != self.settings.terms_version:
            raise InvalidArgument("terms_version", f"must be the current terms version {self.settings.terms_version}")
        account_id = uuid.UUID(principal.account_id)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(accounts).where(accounts.c.account_id == account_id).values(terms_version=version, terms_accepted_at=now, updated_at=now)
            )
            await account_table.record_terms(uow, account_id, version, now=now, client_id=principal.client_id)
            self.sessions.live.forget_after_commit(uow, account_id)
            row = await account_table.load(uow, account_id)
            await uow.commit()
        return self._view(row)

    async def terms_acceptances(self, principal: Principal) -> list[Any]:
        async with self.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        sa.select(terms_acceptances)
                        .where(terms_acceptances.c.account_id == uuid.UUID(principal.account_id))
                        .order_by(terms_acceptances.c.accepted_at.desc())
                    )
                ).all()
            )

    async def change_password(self, principal: Principal, *, current_password: str, new_password: str) -> None:
        account_id = uuid.UUID(principal.account_id)
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_id)
        await confirm_password(
            self.throttle, self.passwords, row, current_password, session_id=principal.session_id, field="current_password"
        )
        normalized = rules.check_password(new_password, field="new_password", contacts=(row.email or "", row.phone or ""))
        new_hash = await self.passwords.hash(normalized)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.update(accounts).where(accounts.c.account_id == account_id).values(password_hash=new_hash, updated_at=now))
            self.sessions.live.forget_after_commit(uow, account_id)
            # Everyone else who knew the old password is signed out; this device stays.
            await account_table.revoke_all_sessions(
                uow, account_id, reason="password changed", now=now, keep=uuid.UUID(principal.session_id)
            )
            await uow.commit()

    async def cancel_account(self, principal: Principal, *, password: str) -> None:
        """Idempotent: a retry after a lost answer (its session is already revoked by the
        cancellation itself) confirms the password again and succeeds without doing more."""
        account_id = uuid.UUID(principal.account_id)
        row = await account_table.session_account(self.db, uuid.UUID(principal.session_id))
        retry = (
            row is not None
            and row.status == "cancelled"
            and str(row.account_id) == principal.account_id
            and row.revoke_reason == CANCELLED_SESSION_REASON
        )
        if not retry:
            # First-hand, not from this replica's memory: this method passes the platform's
            # revocations (see OWN_SESSION_CHECKS), so nothing else stands between a session
            # or an account closed a moment ago on another replica and its cancellation.
            if row is None or row.revoked_at is not None or str(row.account_id) != principal.account_id:
                raise Unauthenticated("this session has ended; log in again", reason="SESSION_REVOKED")
            refuse_unless_usable(row, self.clock.now())
        async with self.db.unit_of_work() as uow:
            account = await account_table.load(uow, account_id)
        await confirm_password(self.throttle, self.passwords, account, password, session_id=principal.session_id)
        if retry:
            return
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            current = await account_table.load(uow, account_id, lock=True)
            if current.status == "cancelled":
                return
            refuse_unless_usable(current, now)  # terminated or suspended meanwhile: it stays so
            await uow.execute(
                sa.update(accounts).where(accounts.c.account_id == account_id).values(status="cancelled", cancelled_at=now, updated_at=now)
            )
            self.sessions.live.forget_after_commit(uow, account_id)
            await account_table.record_status(
                uow, account_id, status="cancelled", reason="cancelled by the user", actor=str(account_id), now=now
            )
            await account_table.revoke_all_sessions(uow, account_id, reason=CANCELLED_SESSION_REASON, now=now)
            uow.emit(
                "account.cancelled",
                events_pb2.AccountCancelled(account_id=str(account_id), cancelled_at=timestamp(now)),
                account_id=str(account_id),
            )
            await uow.commit()
