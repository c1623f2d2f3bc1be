"""Signing keys and access tokens. The private key never leaves the auth schema, and there only
encrypted: AES-256-GCM under the key-encryption key from configuration
(`CUMULO_SECRETS_DIR/auth/signing-kek.key`, cumulo_platform.secrets), the key id bound in as
associated data, so a copy of the database (or of another service's login) signs nothing.
Services get the public half by key id through AuthInternalService.GetSigningKeys.

Rotation (`rotate`, `cumulo-admin auth rotate-signing-key`): a new key is announced at once (it
is among the public keys every service fetches) and signs from `signs_from`, an announcement
period later, so that every verifier knows it before the first token it signs arrives (their
key caches look again at least every minute). Every replica of auth picks the newest key whose
time has come (`refresh`, every 30 s). A key a newer one has replaced is retired once the newer
one has signed for longer than an access token lives: every token it signed has expired."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from cumulo_auth.adapters.tables import signing_keys
from cumulo_platform import secrets as secret_keys
from cumulo_platform.db import Database
from cumulo_platform.logging import get_logger
from cumulo_platform.tokens import access_claims, sign

log = get_logger(__name__)

_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtext('auth:signing-key'))")
_RAW_LENGTH = 32  # an Ed25519 private key as stored before keys were sealed
KEK_FILE = "CUMULO_SECRETS_DIR/auth/signing-kek.key"


def seal(kek: bytes, key_id: str, private: bytes) -> bytes:
    return secret_keys.seal(kek, key_id, private)


def unseal(kek: bytes, key_id: str, stored: bytes) -> bytes:
    return secret_keys.unseal(kek, key_id, stored, variable=KEK_FILE)


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    key_id: str
    created_at: dt.datetime
    signs_from: dt.datetime
    retired_at: dt.datetime | None


class SigningKeys:
    """The newest key whose time has come signs; every unretired key verifies."""

    def __init__(self, db: Database, *, kek: bytes, announce: dt.timedelta, token_ttl: dt.timedelta) -> None:
        self._db = db
        self._kek = kek
        self._announce = announce
        self._token_ttl = token_ttl
        self._active: tuple[str, Ed25519PrivateKey] | None = None

    def _new_row(self, now: dt.datetime, signs_from: dt.datetime) -> dict[str, Any]:
        private = Ed25519PrivateKey.generate()
        key_id = f"k{now:%Y%m%d}-{secrets.token_hex(4)}"
        return {
            "key_id": key_id,
            "private_key": seal(self._kek, key_id, private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())),
            "public_key": private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
            "created_at": now,
            "signs_from": signs_from,
        }

    async def ensure_active_key(self) -> None:
        """At start: a first key if there is none (signing at once: nobody has tokens yet), keys
        stored before sealing sealed now, and the key to sign with."""
        now = self._db.clock.now()
        async with self._db.sessions() as session, session.begin():
            await session.execute(_LOCK)
            rows = (await session.execute(sa.select(signing_keys.c.key_id, signing_keys.c.private_key))).all()
            for row in rows:
                if len(row.private_key) == _RAW_LENGTH:
                    await session.execute(
                        sa.update(signing_keys).where(signing_keys.c.key_id == row.key_id).values(private_key=seal(self._kek, row.key_id, row.private_key))
                    )
                    log.info("signing_key_sealed", key_id=row.key_id)
            if not rows:
                await session.execute(sa.insert(signing_keys).values(**self._new_row(now, now)))
        await self.refresh()

    async def refresh(self) -> None:
        """The key to sign with now (every replica, every 30 s), and the retirement of keys
        whose tokens have all expired."""
        now = self._db.clock.now()
        async with self._db.sessions() as session, session.begin():
            row = (
                await session.execute(
                    sa.select(signing_keys.c.key_id, signing_keys.c.private_key, signing_keys.c.signs_from)
                    .where(signing_keys.c.retired_at.is_(None), signing_keys.c.signs_from <= now)
                    .order_by(signing_keys.c.signs_from.desc(), signing_keys.c.created_at.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                raise RuntimeError("no signing key can sign yet")
            # Older keys retire once the signing one has signed for longer than a token lives.
            if row.signs_from + self._token_ttl + dt.timedelta(minutes=1) <= now:
                retired = (
                    await session.execute(
                        sa.update(signing_keys)
                        .where(signing_keys.c.retired_at.is_(None), signing_keys.c.signs_from < row.signs_from)
                        .values(retired_at=now)
                        .returning(signing_keys.c.key_id)
                    )
                ).scalars().all()
                for key_id in retired:
                    log.info("signing_key_retired", key_id=key_id)
        if self._active is None or self._active[0] != row.key_id:
            self._active = (row.key_id, Ed25519PrivateKey.from_private_bytes(unseal(self._kek, row.key_id, row.private_key)))
            log.info("signing_key_active", key_id=row.key_id)

    async def rotate(self) -> tuple[KeyInfo, list[KeyInfo]]:
        """A new key, announced now and signing after the announcement period."""
        now = self._db.clock.now()
        async with self._db.sessions() as session, session.begin():
            await session.execute(_LOCK)
            values = self._new_row(now, now + self._announce)
            await session.execute(sa.insert(signing_keys).values(**values))
        log.info("signing_key_added", key_id=values["key_id"], signs_from=values["signs_from"].isoformat())
        keys = await self.keys()
        return next(k for k in keys if k.key_id == values["key_id"]), keys

    async def keys(self) -> list[KeyInfo]:
        async with self._db.sessions() as session:
            rows = (
                await session.execute(
                    sa.select(signing_keys.c.key_id, signing_keys.c.created_at, signing_keys.c.signs_from, signing_keys.c.retired_at)
                    .order_by(signing_keys.c.signs_from.desc(), signing_keys.c.created_at.desc())
                )
            ).all()
        return [KeyInfo(r.key_id, r.created_at, r.signs_from, r.retired_at) for r in rows]

    @property
    def active_key_id(self) -> str:
        if self._active is None:
            raise RuntimeError("ensure_active_key() was not called")
        return self._active[0]

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
