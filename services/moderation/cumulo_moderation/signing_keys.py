"""Moderation's keys for signing evidence manifests, kept in its own schema, their private
halves sealed under the key-encryption key from configuration (cumulo_platform.secrets).

The newest generation signs. The first key is made on first need, by whichever replica gets
there first: each inserts generation 1 if there is none (`ON CONFLICT DO NOTHING`) and then
reads back the newest, so two replicas starting at once sign with the same key. `rotate` adds
the next generation; the older keys stay, found by id, to verify what they signed. Each new
key's fingerprint goes into the audit log, which no one can change through the service."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cumulo_moderation import audit
from cumulo_moderation.adapters.tables import signing_keys
from cumulo_moderation.domain import signatures
from cumulo_platform import secrets as secret_keys
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.logging import get_logger

log = get_logger(__name__)
ACTOR = "system:evidence-signing"


@dataclasses.dataclass(frozen=True)
class SigningKey:
    key_id: str
    generation: int
    public_key: bytes
    fingerprint: str
    created_at: dt.datetime
    private_key: bytes = dataclasses.field(repr=False)

    @property
    def public_pem(self) -> str:
        return signatures.public_pem(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return signatures.sign(self.private_key, message)


KEK_FILE = "CUMULO_SECRETS_DIR/moderation/evidence-kek.key"


class SigningKeys:
    """The private halves are sealed under the key-encryption key from configuration: a copy of
    the table signs nothing, and a key written into it by someone without the key-encryption
    key does not open (NotSealed), so it can neither sign nor be signed with."""

    def __init__(self, db: Database, clock: Clock, kek: bytes) -> None:
        self.db = db
        self.clock = clock
        self.kek = kek

    def _key(self, row: sa.Row) -> SigningKey:
        """The row's key, proven: sealed for its id and public half, the private half opening
        to that public half, which the id and fingerprint name. NotSealed otherwise."""
        public_key = bytes(row.public_key)
        private_key = secret_keys.unseal_signing_key(self.kek, row.key_id, public_key, bytes(row.private_key), variable=KEK_FILE)
        if (
            signatures.key_id_for(public_key) != row.key_id
            or signatures.fingerprint(public_key) != row.fingerprint
        ):
            raise secret_keys.NotSealed(f"evidence key {row.key_id}: its id, fingerprint and halves do not belong together")
        return SigningKey(
            key_id=row.key_id, generation=row.generation, public_key=public_key, fingerprint=row.fingerprint,
            created_at=row.created_at, private_key=private_key,
        )

    async def current(self) -> SigningKey:
        """The key that signs now, made if there is none yet."""
        newest = await self._newest()
        if newest is None:
            await self._add(generation=1)
            newest = await self._newest()
        assert newest is not None, "a signing key was just inserted or found in place"
        return newest

    async def rotate(self) -> SigningKey:
        """A new key signs from now on; the previous ones keep verifying."""
        newest = await self._newest()
        await self._add(generation=1 if newest is None else newest.generation + 1)
        current = await self._newest()
        assert current is not None
        return current

    async def get(self, key_id: str) -> SigningKey | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key_id))).first()
        return None if row is None else self._key(row)

    async def _newest(self) -> SigningKey | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(signing_keys).order_by(signing_keys.c.generation.desc()).limit(1))).first()
        return None if row is None else self._key(row)

    async def _add(self, *, generation: int) -> None:
        """Inserts a fresh key as `generation` unless another replica got there first."""
        private_key = signatures.new_private_key()
        public_key = signatures.public_key_of(private_key)
        key_id, fingerprint = signatures.key_id_for(public_key), signatures.fingerprint(public_key)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            inserted = (
                await uow.execute(
                    postgresql.insert(signing_keys)
                    .values(
                        key_id=key_id, generation=generation, algorithm=signatures.ALGORITHM,
                        private_key=secret_keys.seal_signing_key(self.kek, key_id, public_key, private_key),
                        public_key=public_key, fingerprint=fingerprint, created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["generation"])
                    .returning(signing_keys.c.key_id)
                )
            ).first()
            if inserted is None:
                return  # another replica made this generation: theirs is the one
            await audit.record(
                uow, at=now, actor=ACTOR, action="evidence.key_created", target=f"key:{key_id}",
                reason=f"{signatures.ALGORITHM} key for evidence manifests, generation {generation}, public key sha256 {fingerprint}",
            )
            await uow.commit()
        log.info("evidence_signing_key_created", key_id=key_id, generation=generation, fingerprint=fingerprint)
