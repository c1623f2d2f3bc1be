"""Auth use cases. Plain async methods over a unit of work; the gRPC layer only translates."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters.signing import SigningKeys
from cumulo_auth.adapters.tables import (
    accounts,
    client_apps,
    deleted_logins,
    login_throttle,
    refresh_tokens,
    sessions,
    status_changes,
)
from cumulo_auth.config import AuthSettings
from cumulo_auth.domain import rules
from cumulo_auth.domain.throttle import ThrottlePolicy
from cumulo_platform.account_states import AccountDeleted, AccountStates
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    parse_id,
    require_audit,
)
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.passwords import Passwords
from cumulo_platform.tokens import Principal

REFRESH_TOKEN_PREFIX = "crt_"
CANCELLED_SESSION_REASON = "account cancelled"
STATUSES = ("active", "suspended", "terminated", "cancelled", "deleted")
# Roles an account can be given; tokens carry them in the "roles" claim.
ROLES = ("moderator",)
LOCALES = ("zh-CN", "en")


@dataclasses.dataclass(frozen=True)
class Tokens:
    access_token: str
    access_token_expires_at: dt.datetime
    refresh_token: str
    refresh_token_expires_at: dt.datetime
    session_id: uuid.UUID
    account_id: uuid.UUID


def _login_digest(login: str) -> bytes:
    return hashlib.sha256(login.encode()).digest()


def _hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def _contact_clash(exc: IntegrityError, *, reason: str) -> AlreadyExists:
    """The unique constraint a concurrent writer hit names the contact method."""
    field = "phone" if "accounts_phone_key" in str(exc.orig) else "email"
    return AlreadyExists(f"{field}: another account uses this {field}", reason=reason, metadata={"field": field})


def _account_uuid(value: str) -> uuid.UUID:
    return parse_id(value, "account_id", "an account id (UUID)")


# Built once: the hottest statement (every authenticated auth call) skips SQL construction.
_SESSION_ACCOUNT = (
    sa.select(accounts, sessions.c.revoked_at, sessions.c.revoke_reason)
    .join(sessions, accounts.c.account_id == sessions.c.account_id)
    .where(sessions.c.session_id == sa.bindparam("session_id"))
)


class AuthHandlers:
    def __init__(
        self,
        *,
        db: Database,
        settings: AuthSettings,
        passwords: Passwords,
        keys: SigningKeys,
        clock: Clock,
        states: AccountStates | None = None,
    ) -> None:
        self.db = db
        self.states = states
        self.settings = settings
        self.passwords = passwords
        self.keys = keys
        self.clock = clock
        self.account_throttle = ThrottlePolicy(
            settings.throttle_free_failures_per_account,
            settings.throttle_base_delay,
            settings.throttle_max_delay,
            settings.throttle_forget_after,
        )
        self.address_throttle = ThrottlePolicy(
            settings.throttle_free_failures_per_address,
            settings.throttle_base_delay,
            settings.throttle_max_delay,
            settings.throttle_forget_after,
        )

    def today(self) -> dt.date:
        return self.clock.now().astimezone(self.settings.time_zone).date()

    def _view(self, row: Any) -> dict[str, Any]:
        """An account as callers see it: minor by today's age (the stored flag says only how
        the account was created), and a suspension that has run out as active."""
        view = {c.name: getattr(row, c.name) for c in accounts.c}
        view["minor"] = rules.is_minor(row.birth_date, self.today())
        if view["status"] == "suspended" and view["suspended_until"] is not None and view["suspended_until"] <= self.clock.now():
            view["status"] = "active"
        return view

    # --- registration ---------------------------------------------------------------

    def _contacts(self, email: str, phone: str) -> tuple[str | None, str | None]:
        email_n = rules.normalize_email(email) if email.strip() else None
        phone_n = rules.normalize_phone(phone) if phone.strip() else None
        if email_n is None and phone_n is None:
            raise InvalidArgument("email", "give an e-mail address or a phone number (or both)")
        return email_n, phone_n

    async def register(
        self,
        *,
        email: str,
        phone: str,
        password: str,
        birth_date: tuple[int, int, int],
        accepted_terms_version: str,
        locale: str = "",
    ) -> dict[str, Any]:
        locale = locale or LOCALES[0]
        if locale not in LOCALES:
            raise InvalidArgument("locale", f"must be one of {', '.join(LOCALES)}")
        email_n, phone_n = self._contacts(email, phone)
        born = rules.check_birth_date(*birth_date, today=self.today())
        if accepted_terms_version != self.settings.terms_version:
            raise InvalidArgument(
                "accepted_terms_version",
                f"must be the current terms version {self.settings.terms_version}",
                reason="TERMS_NOT_ACCEPTED",
            )
        if rules.is_minor(born, self.today()):
            raise PermissionDenied(
                "people under 18 cannot register themselves; a guardian creates the account",
                reason="GUARDIAN_REQUIRED",
            )
        normalized = rules.check_password(password, contacts=(email_n or "", phone_n or ""))
        return await self._create_account(
            email=email_n, phone=phone_n, password=normalized, born=born, minor=False, guardian=None, locale=locale
        )

    async def create_minor_account(
        self,
        guardian: Principal,
        *,
        email: str,
        phone: str,
        password: str,
        birth_date: tuple[int, int, int],
        guardian_consent: bool,
    ) -> dict[str, Any]:
        email_n, phone_n = self._contacts(email, phone)
        born = rules.check_birth_date(*birth_date, today=self.today())
        if not guardian_consent:
            raise InvalidArgument("guardian_consent", "the guardian must consent to create a minor's account")
        if not rules.is_minor(born, self.today()):
            raise InvalidArgument("birth_date", "this person is an adult and registers themselves")
        async with self.db.unit_of_work() as uow:
            row = await self._load_account(uow, uuid.UUID(guardian.account_id))
            if rules.is_minor(row.birth_date, self.today()):
                raise PermissionDenied("only an adult can create a minor's account", reason="GUARDIAN_MUST_BE_ADULT")
        normalized = rules.check_password(password, contacts=(email_n or "", phone_n or ""))
        return await self._create_account(
            email=email_n, phone=phone_n, password=normalized, born=born, minor=True, guardian=row.account_id,
            locale=row.locale,
        )

    async def _create_account(
        self,
        *,
        email: str | None,
        phone: str | None,
        password: str,
        born: dt.date,
        minor: bool,
        guardian: uuid.UUID | None,
        locale: str,
    ) -> dict[str, Any]:
        # Refuse a taken contact before paying for a hash; the insert below still guards races.
        async with self.db.read() as conn:
            for field, value in (("email", email), ("phone", phone)):
                if value is not None and (await conn.execute(sa.select(sa.literal(1)).where(accounts.c[field] == value))).first():
                    raise AlreadyExists(f"{field}: an account with this {field} exists", reason="ACCOUNT_EXISTS", metadata={"field": field})
        password_hash = await self.passwords.hash(password)
        now = self.clock.now()
        account_id = uuid.uuid4()
        async with self.db.unit_of_work() as uow:
            try:
                row = (
                    await uow.execute(
                        sa.insert(accounts)
                        .values(
                            account_id=account_id,
                            email=email,
                            phone=phone,
                            password_hash=password_hash,
                            birth_date=born,
                            minor=minor,
                            guardian_account_id=guardian,
                            guardian_consent_at=now if guardian else None,
                            terms_version=self.settings.terms_version,
                            terms_accepted_at=now,
                            created_at=now,
                            updated_at=now,
                            locale=locale,
                        )
                        .returning(*accounts.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise _contact_clash(exc, reason="ACCOUNT_EXISTS") from None
            uow.emit(
                "account.created",
                events_pb2.AccountCreated(
                    account_id=str(account_id),
                    minor=minor,
                    guardian_account_id=str(guardian) if guardian else "",
                    created_at=timestamp(now),
                ),
                account_id=str(account_id),
            )
            await uow.commit()
        return self._view(row)

    async def _contact_taken(self, uow: UnitOfWork, field: str, value: str) -> bool:
        column = accounts.c[field]
        return (await uow.execute(sa.select(sa.literal(1)).where(column == value))).first() is not None

    # --- login, refresh, logout -----------------------------------------------------

    async def login(
        self, *, login: str, password: str, device_name: str, client_id: str, client_address: str
    ) -> tuple[Tokens, dict[str, Any]]:
        key = rules.login_key(login)
        if not password:
            raise InvalidArgument("password", "must not be empty")
        if len(device_name) > 100:
            raise InvalidArgument("device_name", "must be at most 100 characters")
        column = accounts.c.email if "@" in key else accounts.c.phone
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(column == key))).first()
            deleted = row is None and (
                await conn.execute(sa.select(deleted_logins.c.account_id).where(deleted_logins.c.login_digest == _login_digest(key)))
            ).first() is not None
        # Unknown logins are throttled like real ones, so throttling does not tell which exist.
        throttles = [
            self._account_throttle_key(row.account_id if row else None, key),
            ("address", client_address, self.address_throttle),
        ]
        await self._claim_attempt(throttles)
        if deleted:
            raise AccountDeleted()
        if not await self.passwords.verify(row.password_hash if row else None, rules.normalize_password(password)):
            raise Unauthenticated("the login or the password is wrong", reason="INVALID_CREDENTIALS")
        assert row is not None
        await self._attempt_succeeded(throttles)
        self._refuse_unless_usable(row)
        await self._ensure_usable(row.account_id)  # logging in reactivates a frozen account
        async with self.db.unit_of_work() as uow:
            tokens = await self._open_session(uow, row, client_id=client_id, device_name=device_name)
            uow.emit(
                "account.logged_in",
                events_pb2.LoggedIn(account_id=str(row.account_id), session_id=str(tokens.session_id), client_id=client_id),
                account_id=str(row.account_id),
            )
            await uow.commit()
        return tokens, self._view(row)

    async def _ensure_usable(self, account_id: uuid.UUID) -> None:
        if self.states is not None:
            await self.states.ensure_usable(str(account_id))

    def _refuse_unless_usable(self, row: Any) -> None:
        now = self.clock.now()
        if row.status == "deleted":
            raise AccountDeleted()
        if row.status == "suspended" and (row.suspended_until is None or row.suspended_until > now):
            until = f" until {row.suspended_until.isoformat()}" if row.suspended_until else ""
            raise PermissionDenied(f"this account is suspended{until}", reason="ACCOUNT_SUSPENDED")
        if row.status == "terminated":
            raise PermissionDenied("this account has been terminated", reason="ACCOUNT_TERMINATED")
        if row.status == "cancelled":
            raise PermissionDenied("this account has been cancelled", reason="ACCOUNT_CANCELLED")

    # --- throttling of password guesses ------------------------------------------------

    def _account_throttle_key(self, account_id: uuid.UUID | None, login: str) -> tuple[str, str, ThrottlePolicy]:
        return ("account", f"id:{account_id}" if account_id else f"login:{login}", self.account_throttle)

    async def _claim_attempt(self, throttles: list[tuple[str, str, ThrottlePolicy]]) -> None:
        """Counts a password attempt as a failure *before* the (slow) check, under a row lock,
        so concurrent guesses cannot slip past the limit; a success takes it back."""
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            for scope, key, policy in throttles:
                await uow.execute(
                    pg_insert(login_throttle)
                    .values(scope=scope, key=key, failures=0, last_failure_at=now)
                    .on_conflict_do_nothing()
                )
                current = (
                    await uow.execute(
                        sa.select(login_throttle)
                        .where(login_throttle.c.scope == scope, login_throttle.c.key == key)
                        .with_for_update()
                    )
                ).one()
                if current.blocked_until is not None and current.blocked_until > now:
                    raise ResourceExhausted(
                        "too many failed password attempts; try again later",
                        reason="LOGIN_THROTTLED",
                        retry_after=current.blocked_until - now,
                    )
                failures = policy.failures_after_new_failure(current.failures, current.last_failure_at, now)
                await uow.execute(
                    sa.update(login_throttle)
                    .where(login_throttle.c.scope == scope, login_throttle.c.key == key)
                    .values(failures=failures, last_failure_at=now, blocked_until=policy.blocked_until(failures, now))
                )
            await uow.commit()

    async def _attempt_succeeded(self, throttles: list[tuple[str, str, ThrottlePolicy]]) -> None:
        async with self.db.unit_of_work() as uow:
            for scope, key, policy in throttles:
                if scope == "account":
                    # The account's owner proved the password: its slate is clean.
                    await uow.execute(
                        sa.delete(login_throttle).where(login_throttle.c.scope == scope, login_throttle.c.key == key)
                    )
                    continue
                # An address shared by many people only gets back the attempt it just used.
                current = (
                    await uow.execute(
                        sa.select(login_throttle)
                        .where(login_throttle.c.scope == scope, login_throttle.c.key == key)
                        .with_for_update()
                    )
                ).first()
                if current is not None:
                    failures = max(current.failures - 1, 0)
                    await uow.execute(
                        sa.update(login_throttle)
                        .where(login_throttle.c.scope == scope, login_throttle.c.key == key)
                        .values(failures=failures, blocked_until=policy.blocked_until(failures, current.last_failure_at))
                    )
            await uow.commit()

    async def forget_old_throttles(self, batch_size: int = 1000) -> int:
        """Deletes throttle rows whose failures are forgotten anyway (unknown logins leave one
        each); in batches with SKIP LOCKED, so replicas share the work and never wait."""
        horizon = self.clock.now() - max(self.account_throttle.forget_after, self.address_throttle.forget_after)
        now = self.clock.now()
        stale = (
            sa.select(login_throttle.c.scope, login_throttle.c.key)
            .where(
                login_throttle.c.last_failure_at < horizon,
                sa.or_(login_throttle.c.blocked_until.is_(None), login_throttle.c.blocked_until < now),
            )
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).cte("stale")
        async with self.db.unit_of_work() as uow:
            deleted = await uow.execute(
                sa.delete(login_throttle).where(
                    sa.tuple_(login_throttle.c.scope, login_throttle.c.key).in_(sa.select(stale.c.scope, stale.c.key))
                )
            )
            await uow.commit()
        return deleted.rowcount or 0

    async def _confirm_password(self, account: Any, password: str) -> None:
        """A password confirmation (change password, cancel) counts against the same limit."""
        throttles = [self._account_throttle_key(account.account_id, "")]
        await self._claim_attempt(throttles)
        if not await self.passwords.verify(account.password_hash, rules.normalize_password(password)):
            raise PermissionDenied("the password is wrong", reason="INVALID_CREDENTIALS")
        await self._attempt_succeeded(throttles)

    async def _open_session(self, uow: UnitOfWork, account: Any, *, client_id: str, device_name: str) -> Tokens:
        now = self.clock.now()
        session_id = uuid.uuid4()
        await uow.execute(
            sa.insert(sessions).values(
                session_id=session_id,
                account_id=account.account_id,
                client_id=client_id,
                device_name=device_name.strip(),
                created_at=now,
                last_used_at=now,
                expires_at=now + self.settings.session_ttl,
                password_at=now,
            )
        )
        return await self._issue(
            uow, account, session_id=session_id, client_id=client_id, expires_at=now + self.settings.session_ttl, password_at=now
        )

    def _access_token(
        self, account: Any, *, session_id: uuid.UUID, client_id: str, password_at: dt.datetime | None
    ) -> tuple[str, dt.datetime]:
        return self.keys.sign_access_token(
            account_id=account.account_id,
            session_id=session_id,
            client_id=client_id,
            minor=rules.is_minor(account.birth_date, self.today()),
            roles=list(account.roles),
            issued_at=self.clock.now(),
            ttl=self.settings.access_token_ttl,
            password_at=password_at,
        )

    async def _issue(
        self, uow: UnitOfWork, account: Any, *, session_id: uuid.UUID, client_id: str, expires_at: dt.datetime,
        password_at: dt.datetime | None,
    ) -> Tokens:
        now = self.clock.now()
        refresh = _new_refresh_token()
        await uow.execute(
            sa.insert(refresh_tokens).values(
                token_hash=_hash_refresh_token(refresh), session_id=session_id, issued_at=now
            )
        )
        access, access_expires = self._access_token(account, session_id=session_id, client_id=client_id, password_at=password_at)
        return Tokens(access, access_expires, refresh, expires_at, session_id, account.account_id)

    async def confirm_password(self, principal: Principal, password: str) -> tuple[str, dt.datetime, dt.datetime]:
        """The password again, in a live session: a fresh access token saying so (pwd_at)."""
        if not password:
            raise InvalidArgument("password", "must not be empty")
        await self.require_live_session(principal)
        account_id = uuid.UUID(principal.account_id)
        async with self.db.unit_of_work() as uow:
            row = await self._load_account(uow, account_id)
        await self._confirm_password(row, password)
        now = self.clock.now()
        session_id = uuid.UUID(principal.session_id)
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.update(sessions).where(sessions.c.session_id == session_id).values(password_at=now))
            await uow.commit()
        token, expires = self._access_token(row, session_id=session_id, client_id=principal.client_id, password_at=now)
        return token, expires, now

    async def refresh(self, *, refresh_token: str, client_id: str) -> Tokens:
        if not refresh_token.startswith(REFRESH_TOKEN_PREFIX):
            raise InvalidArgument("refresh_token", "is not a cumulo refresh token")
        token_hash = _hash_refresh_token(refresh_token)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            found = (
                await uow.execute(
                    sa.select(refresh_tokens.c.used_at, sessions, accounts.c.status, accounts.c.suspended_until)
                    .join(sessions, sessions.c.session_id == refresh_tokens.c.session_id)
                    .join(accounts, accounts.c.account_id == sessions.c.account_id)
                    .where(refresh_tokens.c.token_hash == token_hash)
                )
            ).first()
            if found is None:
                raise Unauthenticated("the refresh token is not valid; log in again", reason="REFRESH_TOKEN_INVALID")
            if found.revoked_at is not None:
                raise Unauthenticated("this session has ended; log in again", reason="SESSION_REVOKED")
            if found.expires_at <= now:
                raise Unauthenticated("this session has expired; log in again", reason="SESSION_EXPIRED")
            if found.client_id != client_id:
                raise Unauthenticated("this refresh token belongs to another client app", reason="REFRESH_TOKEN_INVALID")
            # Exactly one presentation of a refresh token can win; any other is a reuse.
            claimed = (
                await uow.execute(
                    sa.update(refresh_tokens)
                    .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None))
                    .values(used_at=now)
                    .returning(refresh_tokens.c.session_id)
                )
            ).first()
            if claimed is None:
                await self._revoke(uow, found.session_id, reason="refresh token reused")
                await uow.commit()
                raise Unauthenticated(
                    "this refresh token was already used; the session is revoked for safety",
                    reason="REFRESH_TOKEN_REUSED",
                )
            account = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == found.account_id))).one()
            self._refuse_unless_usable(account)
            await self._ensure_usable(account.account_id)
            expires_at = now + self.settings.session_ttl
            await uow.execute(
                sa.update(sessions)
                .where(sessions.c.session_id == found.session_id)
                .values(last_used_at=now, expires_at=expires_at)
            )
            tokens = await self._issue(
                uow, account, session_id=found.session_id, client_id=found.client_id, expires_at=expires_at,
                password_at=found.password_at,
            )
            await uow.commit()
        return tokens

    async def _revoke(self, uow: UnitOfWork, session_id: uuid.UUID, *, reason: str) -> None:
        await uow.execute(
            sa.update(sessions)
            .where(sessions.c.session_id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=self.clock.now(), revoke_reason=reason)
        )

    async def _revoke_all(self, uow: UnitOfWork, account_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None) -> None:
        query = sa.update(sessions).where(sessions.c.account_id == account_id, sessions.c.revoked_at.is_(None))
        if keep is not None:
            query = query.where(sessions.c.session_id != keep)
        await uow.execute(query.values(revoked_at=self.clock.now(), revoke_reason=reason))

    async def logout(self, principal: Principal) -> None:
        async with self.db.unit_of_work() as uow:
            await self._revoke(uow, uuid.UUID(principal.session_id), reason="logout")
            await uow.commit()

    # --- the caller's own account ---------------------------------------------------

    async def require_live_session(self, principal: Principal) -> dict[str, Any]:
        """Auth knows sessions first-hand: a revoked session's tokens stop at auth at once.

        Returns the caller's account, read in the same single statement."""
        async with self.db.read() as conn:
            row = (await conn.execute(_SESSION_ACCOUNT, {"session_id": uuid.UUID(principal.session_id)})).first()
        if row is None or row.revoked_at is not None or str(row.account_id) != principal.account_id:
            raise Unauthenticated("this session has ended; log in again", reason="SESSION_REVOKED")
        self._refuse_unless_usable(row)
        return self._view(row)

    async def _load_account(self, uow: UnitOfWork, account_id: uuid.UUID, *, lock: bool = False) -> Any:
        query = sa.select(accounts).where(accounts.c.account_id == account_id)
        if lock:
            query = query.with_for_update()
        row = (await uow.execute(query)).first()
        if row is None:
            raise NotFound("no such account", reason="ACCOUNT_NOT_FOUND")
        return row

    async def list_sessions(self, principal: Principal) -> list[dict[str, Any]]:
        async with self.db.sessions() as session:
            rows = (
                await session.execute(
                    sa.select(sessions)
                    .where(
                        sessions.c.account_id == uuid.UUID(principal.account_id),
                        sessions.c.revoked_at.is_(None),
                        sessions.c.expires_at > self.clock.now(),
                    )
                    .order_by(sessions.c.last_used_at.desc())
                )
            ).all()
        return [r._asdict() for r in rows]

    async def revoke_session(self, principal: Principal, session_id: str) -> None:
        target = parse_id(session_id, "session_id", "a session id from ListSessions")
        async with self.db.unit_of_work() as uow:
            owner = (
                await uow.execute(sa.select(sessions.c.account_id).where(sessions.c.session_id == target))
            ).first()
            # Another account's session looks exactly like a missing one.
            if owner is None or str(owner.account_id) != principal.account_id:
                raise NotFound("no such session", reason="SESSION_NOT_FOUND")
            await self._revoke(uow, target, reason="revoked by owner")
            await uow.commit()

    async def update_contacts(self, principal: Principal, *, email: str, phone: str, mask: list[str]) -> dict[str, Any]:
        if not mask:
            raise InvalidArgument("update_mask", "name the contact methods to change: email, phone")
        unknown = set(mask) - {"email", "phone"}
        if unknown:
            raise InvalidArgument("update_mask", f"unknown field {sorted(unknown)[0]!r}; use email or phone")
        changes: dict[str, str | None] = {}
        if "email" in mask:
            changes["email"] = rules.normalize_email(email) if email.strip() else None
        if "phone" in mask:
            changes["phone"] = rules.normalize_phone(phone) if phone.strip() else None
        account_id = uuid.UUID(principal.account_id)
        async with self.db.unit_of_work() as uow:
            current = await self._load_account(uow, account_id, lock=True)
            merged = {"email": current.email, "phone": current.phone, **changes}
            if merged["email"] is None and merged["phone"] is None:
                raise FailedPrecondition("an account keeps at least one contact method", reason="CONTACT_REQUIRED")
            changed = [f for f, v in changes.items() if v != getattr(current, f)]
            for field in changed:
                value = changes[field]
                if value is not None and await self._contact_taken(uow, field, value):
                    raise AlreadyExists(f"{field}: another account uses this {field}", reason="CONTACT_TAKEN", metadata={"field": field})
            if changed:
                try:
                    await uow.execute(
                        sa.update(accounts)
                        .where(accounts.c.account_id == account_id)
                        .values(**{f: changes[f] for f in changed}, updated_at=self.clock.now())
                    )
                except IntegrityError as exc:
                    # Another account claimed the same contact between our check and this write.
                    raise _contact_clash(exc, reason="CONTACT_TAKEN") from None
            row = await self._load_account(uow, account_id)
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
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == account_id)
                .values(terms_version=version, terms_accepted_at=self.clock.now(), updated_at=self.clock.now())
            )
            row = await self._load_account(uow, account_id)
            await uow.commit()
        return self._view(row)

    async def change_password(self, principal: Principal, *, current_password: str, new_password: str) -> None:
        account_id = uuid.UUID(principal.account_id)
        async with self.db.unit_of_work() as uow:
            row = await self._load_account(uow, account_id)
        await self._confirm_password(row, current_password)
        normalized = rules.check_password(new_password, field="new_password", contacts=(row.email or "", row.phone or ""))
        new_hash = await self.passwords.hash(normalized)
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == account_id)
                .values(password_hash=new_hash, updated_at=self.clock.now())
            )
            # Everyone else who knew the old password is signed out; this device stays.
            await self._revoke_all(uow, account_id, reason="password changed", keep=uuid.UUID(principal.session_id))
            await uow.commit()

    async def cancel_account(self, principal: Principal, *, password: str) -> None:
        """Idempotent: a retry after a lost answer (its session is already revoked by the
        cancellation itself) confirms the password again and succeeds without doing more."""
        account_id = uuid.UUID(principal.account_id)
        async with self.db.read() as conn:
            row = (await conn.execute(_SESSION_ACCOUNT, {"session_id": uuid.UUID(principal.session_id)})).first()
        retry = (
            row is not None
            and row.status == "cancelled"
            and str(row.account_id) == principal.account_id
            and row.revoke_reason == CANCELLED_SESSION_REASON
        )
        if not retry:
            await self.require_live_session(principal)
        async with self.db.unit_of_work() as uow:
            account = await self._load_account(uow, account_id)
        await self._confirm_password(account, password)
        if retry:
            return
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            current = await self._load_account(uow, account_id, lock=True)
            if current.status == "cancelled":
                return
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == account_id)
                .values(status="cancelled", cancelled_at=now, updated_at=now)
            )
            await uow.execute(
                sa.insert(status_changes).values(
                    account_id=account_id, status="cancelled", reason="cancelled by the user", actor=str(account_id), changed_at=now
                )
            )
            await self._revoke_all(uow, account_id, reason=CANCELLED_SESSION_REASON)
            uow.emit(
                "account.cancelled",
                events_pb2.AccountCancelled(account_id=str(account_id), cancelled_at=timestamp(now)),
                account_id=str(account_id),
            )
            await uow.commit()

    # --- internal -------------------------------------------------------------------

    async def set_account_status(
        self, *, account_id: str, status: str, suspended_until: dt.datetime | None, reason: str, actor: str
    ) -> dict[str, Any]:
        target = _account_uuid(account_id)
        if status not in ("active", "suspended", "terminated"):
            raise InvalidArgument("status", "must be ACTIVE, SUSPENDED or TERMINATED")
        require_audit(reason, actor)
        now = self.clock.now()
        if status == "suspended" and suspended_until is not None and suspended_until <= now:
            raise InvalidArgument("suspended_until", "must be in the future")
        async with self.db.unit_of_work() as uow:
            current = await self._load_account(uow, target, lock=True)
            if current.status in ("terminated", "cancelled", "deleted") and status != current.status:
                raise FailedPrecondition(f"the account is {current.status}; that cannot be undone here", reason="ACCOUNT_CLOSED")
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == target)
                .values(
                    status=status,
                    status_reason=reason,
                    suspended_until=suspended_until if status == "suspended" else None,
                    updated_at=now,
                )
            )
            await uow.execute(
                sa.insert(status_changes).values(account_id=target, status=status, reason=reason, actor=actor, changed_at=now)
            )
            if status == "terminated":
                await self._revoke_all(uow, target, reason="account terminated")
            uow.emit(
                "account.status_changed",
                events_pb2.AccountStatusChanged(
                    account_id=str(target),
                    status=status,
                    reason=reason,
                    suspended_until=timestamp(suspended_until) if status == "suspended" else None,
                    actor=actor,
                ),
                account_id=str(target),
            )
            row = await self._load_account(uow, target)
            await uow.commit()
        return self._view(row)

    async def purge(self, envelope: events_pb2.Envelope, uow: UnitOfWork) -> None:
        """The `purge.requested` handler (the lifecycle's deletion saga): sessions and tokens
        go, the contact methods and password go, the login's SHA-256 stays so that logging in
        answers ACCOUNT_DELETED. Idempotent: a repeated request reports completion again."""
        request = events_pb2.PurgeRequested()
        envelope.payload.Unpack(request)
        if request.services and self.settings.platform.service not in request.services:
            return
        account_id = uuid.UUID(request.account_id)
        now = self.clock.now()
        row = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == account_id).with_for_update())).first()
        deleted = 0
        if row is not None and row.status != "deleted":
            for login in (row.email, row.phone):
                if login:
                    await uow.execute(
                        pg_insert(deleted_logins)
                        .values(login_digest=_login_digest(login), account_id=account_id, deleted_at=now)
                        .on_conflict_do_update(
                            index_elements=[deleted_logins.c.login_digest],
                            set_={"account_id": account_id, "deleted_at": now},
                        )
                    )
            session_ids = sa.select(sessions.c.session_id).where(sessions.c.account_id == account_id).scalar_subquery()
            await uow.execute(sa.delete(refresh_tokens).where(refresh_tokens.c.session_id.in_(session_ids)))
            deleted = (await uow.execute(sa.delete(sessions).where(sessions.c.account_id == account_id))).rowcount
            await uow.execute(sa.delete(login_throttle).where(login_throttle.c.key == f"id:{account_id}"))
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == account_id)
                .values(email=None, phone=None, password_hash=None, roles=[], status="deleted", status_reason=request.reason, updated_at=now)
            )
            await uow.execute(
                sa.insert(status_changes).values(
                    account_id=account_id, status="deleted", reason=request.reason or "deleted", actor="lifecycle", changed_at=now
                )
            )
            deleted += 1
        uow.emit(
            "purge.completed",
            events_pb2.PurgeCompleted(account_id=str(account_id), service=self.settings.platform.service, items_deleted=deleted),
            account_id=str(account_id),
        )

    async def find_account(self, login: str) -> str:
        key = rules.login_key(login)
        column = accounts.c.email if "@" in key else accounts.c.phone
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(accounts.c.account_id, accounts.c.status).where(column == key))).first()
        if row is None or row.status in ("terminated", "cancelled", "deleted"):
            raise NotFound("no cumulo account with this e-mail or phone", reason="ACCOUNT_NOT_FOUND")
        return str(row.account_id)

    async def set_roles(self, account_id: str, roles: list[str], *, reason: str, actor: str) -> list[str]:
        """An account's roles from now on; its tokens carry them from the next login or refresh."""
        target = _account_uuid(account_id)
        require_audit(reason, actor)
        wanted = sorted(set(roles))
        for i, role in enumerate(roles):
            if role not in ROLES:
                raise InvalidArgument(f"roles[{i}]", f"unknown role; known roles: {', '.join(ROLES)}")
        async with self.db.unit_of_work() as uow:
            current = await self._load_account(uow, target, lock=True)
            if current.status in ("terminated", "cancelled", "deleted"):
                raise FailedPrecondition(f"the account is {current.status}", reason="ACCOUNT_CLOSED")
            await uow.execute(sa.update(accounts).where(accounts.c.account_id == target).values(roles=wanted, updated_at=self.clock.now()))
            await uow.execute(
                sa.insert(status_changes).values(
                    account_id=target, status=current.status, reason=f"roles set to [{', '.join(wanted)}]: {reason}", actor=actor,
                    changed_at=self.clock.now(),
                )
            )
            await uow.commit()
        return wanted

    async def get_contacts(self, account_id: str) -> tuple[str, str, str]:
        async with self.db.unit_of_work() as uow:
            row = await self._load_account(uow, _account_uuid(account_id))
        return row.email or "", row.phone or "", row.locale

    async def client_app(self, client_id: str) -> tuple[str, bool] | None:
        async with self.db.sessions() as session:
            row = (await session.execute(sa.select(client_apps).where(client_apps.c.client_id == client_id))).first()
        return (row.name, row.enabled) if row else None

    async def client_registered(self, client_id: str) -> bool:
        found = await self.client_app(client_id)
        return bool(found and found[1])

    async def register_client_app(self, client_id: str, name: str, *, enable: bool = True) -> None:
        """Registers (or renames) a client app. `enable=False` leaves an existing app's
        enabled flag alone, so start-up registration never re-enables one an operator turned off."""
        if not client_id or len(client_id) > 64 or not all(c.isalnum() or c in "-_." for c in client_id):
            raise InvalidArgument("client_id", "must be 1-64 letters, digits, '-', '_' or '.'")
        if not name.strip():
            raise InvalidArgument("name", "must not be empty")
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                pg_insert(client_apps)
                .values(client_id=client_id, name=name.strip())
                .on_conflict_do_update(
                    index_elements=["client_id"],
                    set_={"name": name.strip(), **({"enabled": True} if enable else {})},
                )
            )
            await uow.commit()
