"""Signing keys and access tokens. The private key never leaves the auth schema; services get
the public half by key id through AuthInternalService.GetSigningKeys."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from cumulo_auth.adapters.tables import signing_keys
from cumulo_platform.db import Database
from cumulo_platform.tokens import access_claims, sign


class SigningKeys:
    """The active key signs; every unretired key verifies."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._active: tuple[str, Ed25519PrivateKey] | None = None

    async def ensure_active_key(self) -> None:
        async with self._db.sessions() as session, session.begin():
            await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('auth:signing-key'))"))
            row = (
                await session.execute(
                    sa.select(signing_keys.c.key_id, signing_keys.c.private_key)
                    .where(signing_keys.c.retired_at.is_(None))
                    .order_by(signing_keys.c.created_at.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                private = Ed25519PrivateKey.generate()
                key_id = f"k{dt.date.today():%Y%m%d}-{secrets.token_hex(4)}"
                await session.execute(
                    sa.insert(signing_keys).values(
                        key_id=key_id,
                        private_key=private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
                        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
                        created_at=self._db.clock.now(),
                    )
                )
            else:
                key_id, private = row.key_id, Ed25519PrivateKey.from_private_bytes(row.private_key)
        self._active = (key_id, private)

    async def public_keys(self, key_id: str = "") -> list[tuple[str, bytes]]:
        query = sa.select(signing_keys.c.key_id, signing_keys.c.public_key).where(signing_keys.c.retired_at.is_(None))
        if key_id:
            query = query.where(signing_keys.c.key_id == key_id)
        async with self._db.sessions() as session:
            return [(r.key_id, r.public_key) for r in (await session.execute(query)).all()]

    async def verification_keys(self) -> dict[str, bytes]:
        """Every unretired public key: what auth's own KeyCache fetches."""
        return dict(await self.public_keys())

    def sign_access_token(
        self,
        *,
        account_id: uuid.UUID,
        session_id: uuid.UUID,
        client_id: str,
        minor: bool,
        roles: list[str],
        issued_at: dt.datetime,
        ttl: dt.timedelta,
        password_at: dt.datetime | None = None,
    ) -> tuple[str, dt.datetime]:
        if self._active is None:
            raise RuntimeError("ensure_active_key() was not called")
        key_id, private = self._active
        expires_at = issued_at + ttl
        claims = access_claims(
            account_id=str(account_id),
            session_id=str(session_id),
            client_id=client_id,
            minor=minor,
            roles=roles,
            issued_at=issued_at,
            expires_at=expires_at,
            password_at=password_at,
        )
        return sign(claims, key_id, private), expires_at
