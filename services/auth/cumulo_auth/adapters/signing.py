"""Signing keys and access tokens. The private key never leaves the auth schema, and there only
encrypted: AES-256-GCM under the key-encryption key from configuration
(`CUMULO_SECRETS_DIR/auth/signing-kek.key`, cumulo_platform.secrets), the key id and the public
half bound in as associated data. A copy of the database signs nothing; and a row written into
the table by someone without the key-encryption key (their own public key, or a raw private
key) proves nothing: a key is used, and its public half handed out, only once its private half
opens for that id and public half and matches it. Services get the public half by key id
through AuthInternalService.GetSigningKeys.

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
from cumulo_platform.secrets import NotSealed
from cumulo_platform.tokens import access_claims, sign

log = get_logger(__name__)

_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtext('auth:signing-key'))")
KEK_FILE = "CUMULO_SECRETS_DIR/auth/signing-kek.key"


def seal(kek: bytes, key_id: str, public_key: bytes, private: bytes) -> bytes:
    return secret_keys.seal_signing_key(kek, key_id, public_key, private)


def unseal(kek: bytes, key_id: str, public_key: bytes, stored: bytes) -> Ed25519PrivateKey:
    """The private key of a row, proven (cumulo_platform.secrets.unseal_signing_key)."""
    return Ed25519PrivateKey.from_private_bytes(secret_keys.unseal_signing_key(kek, key_id, public_key, stored, variable=KEK_FILE))


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
        # Rows already proven (their stored bytes, and the key) and those that did not prove.
        self._proven_keys: dict[str, tuple[tuple[bytes, bytes], Ed25519PrivateKey]] = {}
        self._unproven: set[str] = set()

    def _new_row(self, now: dt.datetime, signs_from: dt.datetime) -> dict[str, Any]:
        private = Ed25519PrivateKey.generate()
        key_id = f"k{now:%Y%m%d}-{secrets.token_hex(4)}"
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "key_id": key_id,
            "private_key": seal(self._kek, key_id, public, private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())),
            "public_key": public,
            "created_at": now,
            "signs_from": signs_from,
        }

    def _proven(self, row: Any) -> Ed25519PrivateKey | None:
        """The row's private key if the row proves itself (cumulo_auth.adapters.signing.unseal);
        None, once logged, for a row that does not: a key written into the table by someone
        without the key-encryption key, or one stored before keys were sealed, neither signs
        nor verifies."""
        key_id = row.key_id
        known = self._proven_keys.get(key_id)
        if known is not None and known[0] == (bytes(row.public_key), bytes(row.private_key)):
            return known[1]
        try:
            private = unseal(self._kek, key_id, bytes(row.public_key), bytes(row.private_key))
        except NotSealed as refused:
            if key_id not in self._unproven:
                self._unproven.add(key_id)
                log.error("signing_key_unproven", key_id=key_id, problem=str(refused))
            return None
        self._proven_keys[key_id] = ((bytes(row.public_key), bytes(row.private_key)), private)
        return private

    async def ensure_active_key(self) -> None:
        """At start: a first key if none proves itself (signing at once: nobody holds tokens
        it should have signed), and the key to sign with. Keys stored before keys were sealed
        are not trusted (their tokens are refused; clients refresh once) and retire now."""
        now = self._db.clock.now()
        async with self._db.sessions() as session, session.begin():
            await session.execute(_LOCK)
            rows = (await session.execute(sa.select(signing_keys).where(signing_keys.c.retired_at.is_(None)))).all()
            unproven = [row.key_id for row in rows if self._proven(row) is None]
            if unproven:
                await session.execute(sa.update(signing_keys).where(signing_keys.c.key_id.in_(unproven)).values(retired_at=now))
                log.warning("signing_keys_retired_unproven", key_ids=unproven)
            if len(unproven) == len(rows):
                await session.execute(sa.insert(signing_keys).values(**self._new_row(now, now)))
        await self.refresh()

    async def refresh(self) -> None:
        """The key to sign with now (every replica, every 30 s): the newest proven key whose
        time has come; and the retirement of keys whose tokens have all expired."""
        now = self._db.clock.now()
        async with self._db.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(signing_keys)
                    .where(signing_keys.c.retired_at.is_(None), signing_keys.c.signs_from <= now)
                    .order_by(signing_keys.c.signs_from.desc(), signing_keys.c.created_at.desc())
                )
            ).all()
            chosen = next(((row, key) for row in rows if (key := self._proven(row)) is not None), None)
            if chosen is None:
                raise NotSealed(f"no signing key proves itself with the key-encryption key {KEK_FILE}")
            row, private = chosen
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
            self._active = (row.key_id, private)
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
        """Every unretired key that proves itself: a public key written into the table alone
        (to have services accept tokens its owner signs) is never handed out."""
        query = sa.select(signing_keys).where(signing_keys.c.retired_at.is_(None))
        if key_id:
            query = query.where(signing_keys.c.key_id == key_id)
        async with self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return [(row.key_id, bytes(row.public_key)) for row in rows if self._proven(row) is not None]

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
        scope: str = "",
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
            scope=scope,
        )
        return sign(claims, key_id, private), expires_at
