"""A session's life after login: refresh-token rotation, the live-session check, listing and
revoking sessions, logging out, and confirming the password again inside a session."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
import zoneinfo
from typing import Any

import sqlalchemy as sa

from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts, refresh_tokens, sessions
from cumulo_auth.config import AuthSettings
from cumulo_auth.domain import credentials
from cumulo_auth.domain.accounts import refuse_unless_usable, view
from cumulo_auth.domain.password_work import PasswordWork
from cumulo_auth.issuing import TokenIssuer, Tokens
from cumulo_auth.live_sessions import LiveSessions
from cumulo_auth.throttling import LoginThrottle, confirm_password
from cumulo_platform.account_states import FROZEN, AccountStates
from cumulo_platform.call_limit import CallLimit, spend
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument, NotFound, Unauthenticated, parse_id
from cumulo_platform.logging import get_logger
from cumulo_platform.passwords import Passwords
from cumulo_platform.tokens import Principal

log = get_logger(__name__)


class _Frozen(Exception):
    """The account must be reactivated (by the lifecycle) before its refresh goes on."""

    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id


class Sessions:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        settings: AuthSettings,
        issuer: TokenIssuer,
        states: AccountStates,
        throttle: LoginThrottle,
        passwords: Passwords,
        live: LiveSessions,
        password_checks: CallLimit,
    ) -> None:
        self.password_checks = password_checks  # the anonymous calls' one allowance per address
        self.live = live
        self.db = db
        self.clock = clock
        self.session_ttl = settings.session_ttl
        self.time_zone: zoneinfo.ZoneInfo = settings.time_zone
        self.issuer = issuer
        self.states = states
        self.throttle = throttle
        self.passwords = passwords

    async def refresh(self, *, refresh_token: str, client_id: str) -> Tokens:
        if not refresh_token.startswith(credentials.REFRESH_TOKEN_PREFIX):
            raise InvalidArgument("refresh_token", "is not a cumulo refresh token")
        token_hash = credentials.refresh_token_hash(refresh_token)
        try:
            return await self._rotate(token_hash, client_id, reactivated=False)
        except _Frozen as frozen:
            # Reactivation asks the lifecycle: never while the token's rows are locked. The
            # first attempt rolled back, so the token is still unused.
            await self.states.ensure_usable(frozen.account_id)
        return await self._rotate(token_hash, client_id, reactivated=True)

    async def _rotate(self, token_hash: bytes, client_id: str, *, reactivated: bool) -> Tokens:
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
                await account_table.revoke_session(uow, found.session_id, reason="refresh token reused", now=now)
                self.live.forget_after_commit(uow, found.account_id)
                await uow.commit()
                raise Unauthenticated(
                    "this refresh token was already used; the session is revoked for safety",
                    reason="REFRESH_TOKEN_REUSED",
                )
            account = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == found.account_id))).one()
            refuse_unless_usable(account, now)
            account_id = str(account.account_id)
            if self.states.state_of(account_id) == FROZEN:
                if not reactivated:
                    raise _Frozen(account_id)
                # Still frozen after asking: served, as the platform's gate serves it.
            else:
                await self.states.ensure_usable(account_id)  # refuses a deleted account; asks no one
            expires_at = now + self.session_ttl
            await uow.execute(
                sa.update(sessions).where(sessions.c.session_id == found.session_id).values(last_used_at=now, expires_at=expires_at)
            )
            tokens = await self.issuer.issue(
                uow, account, session_id=found.session_id, client_id=found.client_id, expires_at=expires_at,
                password_at=found.password_at,
            )
            await uow.commit()
        return tokens

    async def revoke_with_link(self, token: str, client_network: str) -> tuple[str, dt.datetime, bool]:
        """The session a new-session notice's link names, ended: (its device, when it signed
        in, whether this ended it). Each try spends the address's allowance of anonymous calls,
        as a password check does: guessing tokens is refused long before it could succeed."""
        spend(self.password_checks, client_network, self.clock.now(), PasswordWork.CHECK, what="link tries from this address",
              reason="LINK_RATE_LIMITED")
        if not token.strip() or len(token) > 100:
            raise NotFound("this link is not valid (any more)", reason="LINK_INVALID")
        digest = hashlib.sha256(token.strip().encode()).digest()
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            found = (await uow.execute(sa.select(sessions).where(sessions.c.revoke_token_hash == digest))).first()
            if found is None:
                raise NotFound("this link is not valid (any more)", reason="LINK_INVALID")
            ended = found.revoked_at is None and found.expires_at > now
            if ended:
                await account_table.revoke_session(uow, found.session_id, reason="ended from the new-session notice", now=now)
                self.live.forget_after_commit(uow, found.account_id)
            await uow.commit()
        log.info("session_revoked_with_link", account_id=str(found.account_id), session_id=str(found.session_id), revoked=ended)
        return found.device_name, found.created_at, ended

    async def logout(self, principal: Principal) -> None:
        async with self.db.unit_of_work() as uow:
            await account_table.revoke_session(uow, uuid.UUID(principal.session_id), reason="logout", now=self.clock.now())
            self.live.forget_after_commit(uow, uuid.UUID(principal.account_id))
            await uow.commit()

    async def require_live_session(self, principal: Principal) -> dict[str, Any]:
        """Auth knows sessions first-hand: a revoked session's tokens stop at auth at once.

        Returns the caller's account, with the session's state: kept in memory per replica
        (cumulo_auth.live_sessions), forgotten when either changes."""
        row = await self.live.row(uuid.UUID(principal.session_id))
        if row is None or row.revoked_at is not None or str(row.account_id) != principal.account_id:
            raise Unauthenticated("this session has ended; log in again", reason="SESSION_REVOKED")
        now = self.clock.now()
        refuse_unless_usable(row, now)
        return view(row, now=now, time_zone=self.time_zone)

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
            owner = (await uow.execute(sa.select(sessions.c.account_id).where(sessions.c.session_id == target))).first()
            # Another account's session looks exactly like a missing one.
            if owner is None or str(owner.account_id) != principal.account_id:
                raise NotFound("no such session", reason="SESSION_NOT_FOUND")
            await account_table.revoke_session(uow, target, reason="revoked by owner", now=self.clock.now())
            self.live.forget_after_commit(uow, uuid.UUID(principal.account_id))
            await uow.commit()

    async def confirm_password(self, principal: Principal, password: str) -> tuple[str, dt.datetime, dt.datetime]:
        """The password again, in a live session: a fresh access token saying so (pwd_at)."""
        if not password:
            raise InvalidArgument("password", "must not be empty")
        await self.require_live_session(principal)
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, uuid.UUID(principal.account_id))
        await confirm_password(self.throttle, self.passwords, row, password, session_id=principal.session_id)
        now = self.clock.now()
        session_id = uuid.UUID(principal.session_id)
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.update(sessions).where(sessions.c.session_id == session_id).values(password_at=now))
            await uow.commit()
        token, expires = self.issuer.access_token(row, session_id=session_id, client_id=principal.client_id, password_at=now)
        return token, expires, now
