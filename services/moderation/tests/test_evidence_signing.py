"""Evidence bundles signed by moderation's own key and kept write-once where the store can:
VerifyEvidence trusts the manifest's bytes as stored and moderation's signature over them, not
the hash in the `exports` table alone; keys rotate without breaking what older ones signed;
two replicas making the first key at once make one. Against the session's real servers (the
embedded `rclone serve s3` has no Object Lock: a store that has it is stood in for where said)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import botocore.exceptions
import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import expect_error, invoke, public_methods, with_client_id
from cumulo_moderation.adapters.object_lock import BundleLock, ObjectLockUnavailable
from cumulo_moderation.adapters.tables import SCHEMA, audit_log, exports, signing_keys
from cumulo_moderation.bootstrap import MIGRATIONS
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.domain import signatures
from cumulo_moderation.preservation import Preservation
from cumulo_moderation.signing_keys import SigningKeys
from cumulo_platform import migrations
from cumulo_platform.clock import SystemClock
from cumulo_platform.db import Database, create_engine
from cumulo_platform.errors import FailedPrecondition
from cumulo_platform.secrets import NotSealed, ensure_keys
from cumulo_platform.settings import SettingsError
from cumulo_platform.storage import Storage
from cumulo_sdk import Cumulo

from .helpers import me

SIGNATURE = pb.EVIDENCE_CHECK_SIGNATURE
VERIFY = public_methods(pb)["ModerationService/VerifyEvidence"]


@pytest.fixture
async def preserved(moderation) -> AsyncIterator[Storage]:
    """The preservation bucket, through a client of the test's own (as someone with write
    access to the object store would reach it)."""
    platform = moderation.app.settings.platform
    storage = Storage.of(platform, platform.preservation_bucket)
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


async def held_bundle(moderator: Cumulo, desk, account_id: str, reason: str) -> pb.Evidence:
    await desk.known_to_lifecycle(account_id)
    await desk.place(account_id, reason)
    return await moderator.moderation.export(account_id, reason)


async def read(storage: Storage, key: str) -> bytes:
    data = await storage.read_small(key, 64 * 1024 * 1024)
    assert data is not None, key
    return data


async def set_export(moderation, export_id: str, **values: Any) -> None:
    """Writes the `exports` row as whoever can write moderation's tables could."""
    async with moderation.app.db.unit_of_work() as uow:
        await uow.execute(sa.update(exports).where(exports.c.export_id == uuid.UUID(export_id)).values(**values))
        await uow.commit()


def raw_public_key(pem: str) -> bytes:
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- an intact bundle ----------------------------------------------------------------------------


async def test_an_intact_bundle_verifies_names_its_key_and_can_be_checked_offline(moderator, held, moderation, desk, preserved):
    evidence = await held_bundle(moderator, desk, held.account_id, "court order 12/2025: preserve the account")
    current = await moderation.app.keys.current()
    assert evidence.signing_key_id == current.key_id and evidence.signing_key_fingerprint == current.fingerprint
    assert evidence.signature_key == evidence.prefix + "manifest.sig.json"
    assert evidence.lock_mode == "" and not evidence.retain_until.ByteSize()  # Object Lock is off by default

    verified = await moderator.moderation.verify(evidence.export_id)
    assert verified.intact and list(verified.problems) == [] and list(verified.failed_checks) == []
    assert verified.evidence.signing_key_id == current.key_id

    # Offline, with nothing but the bundle and the public key whose fingerprint was pinned.
    public_key = raw_public_key(verified.signing_public_key_pem)
    assert hashlib.sha256(public_key).hexdigest() == evidence.signing_key_fingerprint
    manifest = await read(preserved, evidence.manifest_key)
    document = json.loads(await read(preserved, evidence.signature_key))
    assert document["key_id"] == evidence.signing_key_id and document["public_key_sha256"] == evidence.signing_key_fingerprint
    assert document["signed"] == evidence.manifest_key and document["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(document["signature"]), manifest)  # raises if not

    # The key's fingerprint is in the append-only audit log, as is the export's signature.
    async with moderation.app.db.read() as conn:
        made = (
            await conn.execute(sa.select(audit_log).where(audit_log.c.action == "evidence.key_created", audit_log.c.target == f"key:{current.key_id}"))
        ).one()
    assert current.fingerprint in made.reason
    exported = [e for e in await moderator.moderation.audit(account_id=held.account_id) if e.action == "evidence.exported"]
    assert len(exported) == 1 and current.key_id in exported[0].reason and evidence.manifest_sha256 in exported[0].reason


# --- tampering -----------------------------------------------------------------------------------


async def test_a_manifest_rewritten_with_its_recorded_hash_updated_fails_on_the_signature(moderator, held, moderation, desk, preserved):
    evidence = await held_bundle(moderator, desk, held.account_id, "police request 7/2025")
    manifest = json.loads(await read(preserved, evidence.manifest_key))
    # A part dropped from the manifest, the manifest stored again and its hash recorded anew:
    # what the table alone could not tell.
    forged = json.dumps({**manifest, "parts": [p for p in manifest["parts"] if not p["key"].endswith("files.json")]}).encode()
    await preserved.put(evidence.manifest_key, forged)
    await set_export(moderation, evidence.export_id, manifest_sha256=hashlib.sha256(forged).hexdigest())

    verified = await moderator.moderation.verify(evidence.export_id)
    assert not verified.intact
    assert list(verified.failed_checks) == [SIGNATURE]
    assert len(verified.problems) == 1 and "signature" in verified.problems[0] and evidence.signing_key_id in verified.problems[0]


async def test_a_tampered_signature_fails_verification(moderator, held, moderation, desk, preserved):
    evidence = await held_bundle(moderator, desk, held.account_id, "police request 8/2025")
    original = await read(preserved, evidence.signature_key)
    document = json.loads(original)
    signature = base64.b64decode(document["signature"])
    flipped = bytes([signature[0] ^ 1]) + signature[1:]

    # The signature file in the bundle changed: it is not the one recorded at export.
    await preserved.put(evidence.signature_key, json.dumps({**document, "signature": base64.b64encode(flipped).decode()}).encode())
    verified = await moderator.moderation.verify(evidence.export_id)
    assert not verified.intact and list(verified.failed_checks) == [SIGNATURE]
    assert verified.problems[0].startswith(evidence.signature_key + ":")
    # Gone altogether.
    await preserved.delete(evidence.signature_key)
    verified = await moderator.moderation.verify(evidence.export_id)
    assert list(verified.failed_checks) == [SIGNATURE] and "missing" in verified.problems[0]
    # The file put back: intact again.
    await preserved.put(evidence.signature_key, original)
    assert (await moderator.moderation.verify(evidence.export_id)).intact

    # Both the file and the table given the same forged signature: it does not match the manifest.
    await preserved.put(evidence.signature_key, json.dumps({**document, "signature": base64.b64encode(flipped).decode()}).encode())
    await set_export(moderation, evidence.export_id, signature=flipped)
    verified = await moderator.moderation.verify(evidence.export_id)
    assert not verified.intact and list(verified.failed_checks) == [SIGNATURE]
    assert verified.problems[0].startswith(evidence.manifest_key + ":") and "signature" in verified.problems[0]

    # The signature taken off the record, as if the bundle predated signing: not intact either.
    await set_export(moderation, evidence.export_id, signature=None, signing_key_id=None, signing_key_fingerprint=None, signature_key=None)
    verified = await moderator.moderation.verify(evidence.export_id)
    assert not verified.intact and list(verified.failed_checks) == [SIGNATURE] and "not signed" in verified.problems[0]


async def test_a_key_swapped_in_the_table_under_the_same_id_fails_verification(moderator, held, moderation, desk):
    """Whoever writes the tables could replace a key's public half by their own and sign a
    forged manifest with it (updating the fingerprints too): the key's row no longer proves
    itself (its sealed private half is bound to its id and genuine public half)."""
    evidence = await held_bundle(moderator, desk, held.account_id, "police request 9/2025")
    own = signatures.public_key_of(signatures.new_private_key())
    async with moderation.app.db.unit_of_work() as uow:
        before = (await uow.execute(sa.select(signing_keys.c.public_key).where(signing_keys.c.key_id == evidence.signing_key_id))).scalar_one()
        await uow.execute(sa.update(signing_keys).where(signing_keys.c.key_id == evidence.signing_key_id).values(public_key=own))
        await uow.commit()
    try:
        verified = await moderator.moderation.verify(evidence.export_id)
        assert not verified.intact and list(verified.failed_checks) == [SIGNATURE]
        # The swapped row proves nothing: its sealed private half is bound to the genuine public half.
        assert evidence.signing_key_id in verified.problems[0] and "evidence-kek" in verified.problems[0], verified.problems
    finally:
        async with moderation.app.db.unit_of_work() as uow:
            await uow.execute(sa.update(signing_keys).where(signing_keys.c.key_id == evidence.signing_key_id).values(public_key=before))
            await uow.commit()
    assert (await moderator.moderation.verify(evidence.export_id)).intact


# --- rotation and the first key ------------------------------------------------------------------


async def test_a_bundle_signed_by_an_older_key_still_verifies_after_a_new_key_is_added(moderator, held, moderation, desk, infra):
    older = await held_bundle(moderator, desk, held.account_id, "preservation order 3/2025")
    # The operator's command (python -m cumulo_moderation rotate-evidence-key), on moderation's database.
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cumulo_moderation", "rotate-evidence-key",
        env={
            **os.environ, "DATABASE_URL": moderation.app.settings.platform.database_url, "CUMULO_LOG_LEVEL": "warning",
            "CUMULO_SECRETS_DIR": str(ensure_keys(infra.root / "secrets")),  # the same key-encryption key as the service's
        },
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(command.communicate(), 60)
    assert command.returncode == 0, err.decode()
    rotated = await moderation.app.keys.current()
    assert rotated.key_id != older.signing_key_id and f"key {rotated.key_id}" in out.decode() and rotated.fingerprint in out.decode()
    newer = await moderator.moderation.export(held.account_id, "preservation order 3/2025, second export")
    assert newer.signing_key_id == rotated.key_id

    checked = await moderator.moderation.verify(older.export_id)
    assert checked.intact and checked.evidence.signing_key_id == older.signing_key_id
    assert hashlib.sha256(raw_public_key(checked.signing_public_key_pem)).hexdigest() == older.signing_key_fingerprint
    checked = await moderator.moderation.verify(newer.export_id)
    assert checked.intact and hashlib.sha256(raw_public_key(checked.signing_public_key_pem)).hexdigest() == rotated.fingerprint


async def test_the_first_signing_key_is_made_once_when_two_replicas_race(infra):
    """Two replicas (engines of their own) on a database that has no key yet, each asked for
    the key several times at once: one key is made, and every answer is that key."""
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, SCHEMA, MIGRATIONS)
    replicas = [Database(create_engine(url, pool_size=4), schema=SCHEMA, producer="moderation", clock=SystemClock()) for _ in range(2)]
    try:
        kek = os.urandom(32)
        keys = [SigningKeys(db, SystemClock(), kek) for db in replicas]
        answers = await asyncio.gather(*(keys[i % 2].current() for i in range(8)))
        assert len({key.key_id for key in answers}) == 1
        # However the race went, a replica that found no key and inserts after another did
        # keeps the other's: as the loser of the race would.
        await keys[1]._add(generation=1)
        assert (await keys[1].current()).key_id == (await keys[0].current()).key_id == answers[0].key_id
        async with replicas[0].read() as conn:
            stored = (await conn.execute(sa.select(signing_keys))).all()
            made = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.action == "evidence.key_created"))).scalar_one()
        assert [(row.key_id, row.generation) for row in stored] == [(answers[0].key_id, 1)] and made == 1
        assert signatures.fingerprint(bytes(stored[0].public_key)) == answers[0].fingerprint == stored[0].fingerprint
        # Sealed at rest: the stored bytes are not the key, and open only with the key-encryption key.
        assert bytes(stored[0].private_key) != answers[0].private_key and bytes(stored[0].private_key).startswith(b"kek1")
        with pytest.raises(NotSealed):
            await SigningKeys(replicas[0], SystemClock(), os.urandom(32)).current()
        # A key written into the table by someone without the key-encryption key never signs.
        forged = signatures.new_private_key()
        async with replicas[0].unit_of_work() as uow:
            await uow.execute(
                sa.insert(signing_keys).values(
                    key_id="forged", generation=2, algorithm=signatures.ALGORITHM, private_key=forged,
                    public_key=signatures.public_key_of(forged), fingerprint=signatures.fingerprint(signatures.public_key_of(forged)),
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
            await uow.commit()
        with pytest.raises(NotSealed, match="evidence-kek"):
            await keys[0].current()
    finally:
        for db in replicas:
            await db.dispose()


# --- write-once storage -------------------------------------------------------------------------


def test_object_lock_is_off_by_default_and_its_settings_are_checked(tmp_path):
    base = {"DATABASE_URL": "postgresql://localhost/cumulo", "CUMULO_SECRETS_DIR": str(ensure_keys(tmp_path))}
    settings = ModerationSettings.from_env(base)
    assert settings.evidence_lock_mode is None and settings.evidence_lock_days == 0
    on = ModerationSettings.from_env({**base, "CUMULO_MODERATION_EVIDENCE_LOCK_MODE": "compliance", "CUMULO_MODERATION_EVIDENCE_LOCK_DAYS": "3650"})
    assert (on.evidence_lock_mode, on.evidence_lock_days) == ("COMPLIANCE", 3650)
    for environ, named in (
        ({"CUMULO_MODERATION_EVIDENCE_LOCK_MODE": "WORM", "CUMULO_MODERATION_EVIDENCE_LOCK_DAYS": "30"}, "EVIDENCE_LOCK_MODE"),
        ({"CUMULO_MODERATION_EVIDENCE_LOCK_MODE": "GOVERNANCE"}, "EVIDENCE_LOCK_DAYS"),
        ({"CUMULO_MODERATION_EVIDENCE_LOCK_MODE": "GOVERNANCE", "CUMULO_MODERATION_EVIDENCE_LOCK_DAYS": "0"}, "EVIDENCE_LOCK_DAYS"),
        ({"CUMULO_MODERATION_EVIDENCE_LOCK_DAYS": "30"}, "EVIDENCE_LOCK_MODE is off"),
    ):
        with pytest.raises(SettingsError, match=named):
            ModerationSettings.from_env({**base, **environ})


async def test_object_lock_on_a_store_without_it_stops_the_start_with_a_clear_error(moderation):
    """The embedded `rclone serve s3` takes a bucket "with Object Lock" and lock headers alike,
    and keeps nothing write-once: configured on against it, moderation refuses to start."""
    lock = BundleLock(moderation.app.storage, mode="COMPLIANCE", days=30)
    with pytest.raises(ObjectLockUnavailable) as refused:
        await lock.check()
    message = str(refused.value)
    assert moderation.app.storage.bucket in message and "Object Lock" in message and "EVIDENCE_LOCK_MODE" in message
    await BundleLock(moderation.app.storage, mode=None, days=0).check()  # off: nothing asked, nothing refused


class StoreWithObjectLock:
    """The preservation bucket's real client, as a store with Object Lock would answer: the
    bucket says Object Lock is enabled, and PutObjectRetention is recorded per key (or refused,
    as a store does for a bucket without a lock configuration)."""

    def __init__(self, client: Any, *, refuse: bool = False) -> None:
        self._client = client
        self.refuse = refuse
        self.retained: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def get_object_lock_configuration(self, *, Bucket: str) -> dict[str, Any]:
        return {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}}

    async def put_object_retention(self, *, Bucket: str, Key: str, Retention: dict[str, Any]) -> dict[str, Any]:
        if self.refuse:
            error = {"Error": {"Code": "InvalidRequest", "Message": "Bucket is missing Object Lock Configuration"}}
            raise botocore.exceptions.ClientError(error, "PutObjectRetention")
        self.retained[Key] = Retention
        return {}


@pytest.fixture
async def locking_store(moderation) -> AsyncIterator[tuple[Storage, StoreWithObjectLock]]:
    platform = moderation.app.settings.platform
    storage = Storage.of(platform, platform.preservation_bucket)
    await storage.open()
    store = StoreWithObjectLock(storage.client)
    storage.client = store
    try:
        yield storage, store
    finally:
        storage.client = store._client
        await storage.close()


def preservation_on(moderation, storage: Storage, days: int = 30) -> Preservation:
    """Moderation's evidence export, writing through `storage` with COMPLIANCE retention."""
    app = moderation.app
    lock = BundleLock(storage, mode="COMPLIANCE", days=days)
    return Preservation(app.db, moderation.clock, app.preservation.services, storage, app.keys, lock)


async def keys_under(storage: Storage, prefix: str) -> set[str]:
    listed = await storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=prefix)
    return {item["Key"] for item in listed.get("Contents", [])}


async def test_with_object_lock_every_object_of_the_bundle_is_retained(moderator, held, moderation, desk, locking_store):
    storage, store = locking_store
    await desk.known_to_lifecycle(held.account_id)
    await desk.place(held.account_id, "court order 21/2025")
    preservation = preservation_on(moderation, storage, days=3650)
    await preservation.lock.check()
    before = moderation.clock.now()
    row = await preservation.export(held.account_id, reason="court order 21/2025", actor=me(moderator))

    stored = await keys_under(storage, row.prefix)
    assert row.manifest_key in stored and row.signature_key in stored and any("/files/" in key for key in stored)
    assert set(store.retained) == stored  # the files blob copied in and the services' parts too
    until = {r["RetainUntilDate"] for r in store.retained.values()}
    assert {r["Mode"] for r in store.retained.values()} == {"COMPLIANCE"} and until == {row.retain_until}
    assert before + dt.timedelta(days=3650) <= row.retain_until
    evidence = (await moderator.moderation.verify(str(row.export_id))).evidence
    assert evidence.lock_mode == "COMPLIANCE" and evidence.retain_until.ToDatetime(tzinfo=dt.UTC) == row.retain_until
    exported = [e for e in await moderator.moderation.audit(account_id=held.account_id) if e.action == "evidence.exported"]
    assert "COMPLIANCE retention until" in exported[0].reason


async def test_a_store_refusing_the_lock_fails_the_export_and_keeps_no_unlocked_bundle(moderator, held, moderation, desk, locking_store):
    storage, store = locking_store
    store.refuse = True
    await desk.known_to_lifecycle(held.account_id)
    await desk.place(held.account_id, "court order 22/2025")
    preservation = preservation_on(moderation, storage)
    with pytest.raises(FailedPrecondition) as refused:
        await preservation.export(held.account_id, reason="court order 22/2025", actor=me(moderator))
    assert refused.value.reason == "EVIDENCE_LOCK_REFUSED" and "InvalidRequest" in refused.value.message
    assert await keys_under(storage, f"evidence/{held.account_id}/") == set()
    async with moderation.app.db.read() as conn:
        rows = (await conn.execute(sa.select(exports).where(exports.c.account_id == uuid.UUID(held.account_id)))).all()
    assert rows == []


# --- who may verify, and what ---------------------------------------------------------------------


async def test_verify_evidence_refuses_bad_ids_no_token_and_non_moderators(gateway, moderator, held, member, desk):
    """(Every kind of missing or bad token, and each malformed id, is also tried on every
    method by test_security.py and test_security_input.py.)"""
    evidence = await held_bundle(moderator, desk, held.account_id, "police request 10/2025")
    await expect_error(moderator.moderation.verify("not-an-export"), grpc.StatusCode.INVALID_ARGUMENT, field="export_id")
    await expect_error(moderator.moderation.verify(""), grpc.StatusCode.INVALID_ARGUMENT, field="export_id")
    await expect_error(moderator.moderation.verify(str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND, "EXPORT_NOT_FOUND")
    request = pb.VerifyEvidenceRequest(export_id=evidence.export_id)
    await expect_error(invoke(gateway, VERIFY, request, with_client_id()), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
    # The held account's owner, and any other member: not moderators.
    await expect_error(held.client.moderation.verify(evidence.export_id), grpc.StatusCode.PERMISSION_DENIED, "NOT_A_MODERATOR")
    await expect_error(member.client.moderation.verify(evidence.export_id), grpc.StatusCode.PERMISSION_DENIED, "NOT_A_MODERATOR")
