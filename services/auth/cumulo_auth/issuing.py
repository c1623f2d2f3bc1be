"""Sessions opened and tokens issued: a refresh token (stored as its digest) per session
turn, and a signed access token carrying the account's claims."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo_auth.adapters.signing import SigningKeys
from cumulo_auth.adapters.tables import refresh_tokens, sessions
from cumulo_auth.config import AuthSettings
from cumulo_auth.domain import credentials
from cumulo_platform import ages
from cumulo_platform.ages import local_date
from cumulo_platform.clock import Clock
from cumulo_platform.db import UnitOfWork
from cumulo_platform.tokens import TAKEOUT_SCOPE


@dataclasses.dataclass(frozen=True)
class Tokens:
    access_token: str
    access_token_expires_at: dt.datetime
    refresh_token: str
    refresh_token_expires_at: dt.datetime
    session_id: uuid.UUID
    account_id: uuid.UUID


class TokenIssuer:
    def __init__(self, *, keys: SigningKeys, clock: Clock, settings: AuthSettings) -> None:
        self.keys = keys
        self.clock = clock
        self.settings = settings

    async def open_session(self, uow: UnitOfWork, account: Any, *, client_id: str, device_name: str) -> Tokens:
        """A new session of `account` after its password was entered, and its first tokens."""
        now = self.clock.now()
        session_id = uuid.uuid4()
        expires_at = now + self.settings.session_ttl
        await uow.execute(
            sa.insert(sessions).values(
                session_id=session_id,
                account_id=account.account_id,
                client_id=client_id,
                device_name=device_name.strip(),
                created_at=now,
                last_used_at=now,
                expires_at=expires_at,
                password_at=now,
            )
        )
        return await self.issue(uow, account, session_id=session_id, client_id=client_id, expires_at=expires_at, password_at=now)

    async def issue(
        self, uow: UnitOfWork, account: Any, *, session_id: uuid.UUID, client_id: str, expires_at: dt.datetime,
        password_at: dt.datetime | None,
    ) -> Tokens:
        refresh = credentials.new_refresh_token()
        await uow.execute(
            sa.insert(refresh_tokens).values(
                token_hash=credentials.refresh_token_hash(refresh),
                account_id=account.account_id,
                session_id=session_id,
                issued_at=self.clock.now(),
            )
        )
        access, access_expires = self.access_token(account, session_id=session_id, client_id=client_id, password_at=password_at)
        return Tokens(access, access_expires, refresh, expires_at, session_id, account.account_id)

    def access_token(
        self, account: Any, *, session_id: uuid.UUID, client_id: str, password_at: dt.datetime | None
    ) -> tuple[str, dt.datetime]:
        now = self.clock.now()
        return self.keys.sign_access_token(
            account_id=account.account_id,
            session_id=session_id,
            client_id=client_id,
            minor=ages.is_minor(account.birth_date, local_date(now, self.settings.time_zone)),
            roles=list(account.roles),
            issued_at=now,
            ttl=self.settings.access_token_ttl,
            password_at=password_at,
            # A terminated account in its take-out window: its tokens reach the take-out only.
            scope=TAKEOUT_SCOPE if account.status == "terminated" else "",
        )
