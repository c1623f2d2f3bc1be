"""Legal holds, evidence bundles, and the moderation side of an account's purge.

A hold is placed (and released) in the lifecycle, the authority on holds: no deletion starts
and a cancellation or termination waits; every service that keeps data (blob, sync, the
locator, moderation itself) learns of it from the lifecycle's `account.hold_changed` event and
keeps what the account has. An evidence export (held accounts only, as the lifecycle answers)
writes, under evidence/<account>/<export_id>/ in the preservation bucket: the account's facts,
its file list with hashes, the files' bytes, its cases and its audit trail, then a manifest
naming every part with its size and SHA-256, and the manifest's signature by moderation's own
key (`signing_keys`). Sync and the locator write their own parts (`<service>.jsonl`: records,
devices, location history) through `EvidenceInternalService`. Where the store has S3 Object
Lock and it is configured, every object of the bundle is then kept write-once.

A bundle is verified against what is stored, not against what the table says alone: the
manifest as read back must carry moderation's signature (by the key the export names) and the
SHA-256 recorded at export, and every part must match the manifest. Whoever can change the
`exports` table can change a hash, but cannot sign without the key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from typing import Any

import botocore.exceptions
import sqlalchemy as sa
from google.protobuf import json_format

from cumulo_moderation import audit
from cumulo_moderation.adapters.object_lock import BundleLock
from cumulo_moderation.adapters.services import Services
from cumulo_moderation.adapters.tables import cases, complaints, counters, exports, owner_notices, strikes
from cumulo_moderation.domain import rules, signatures
from cumulo_moderation.signing_keys import SigningKey, SigningKeys
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import CumuloError, FailedPrecondition, NotFound, parse_id
from cumulo_platform.evidence import evidence_prefix
from cumulo_platform.logging import get_logger
from cumulo_platform.secrets import NotSealed
from cumulo_platform.storage import Storage

log = get_logger(__name__)
PURGE_ACTOR = "system:purge"
CLOSED_BY_PURGE = "the account was deleted"
MAX_MANIFEST = 256 * 1024 * 1024
MAX_SIGNATURE = 64 * 1024
# What VerifyEvidence checks, in order: the manifest as stored carries moderation's signature;
# it has the SHA-256 recorded at export; every part it names is stored as it says.
SIGNATURE, MANIFEST_HASH, PARTS = "signature", "manifest_hash", "parts"


def _account(value: str) -> uuid.UUID:
    return parse_id(value, "account_id", "an account id (UUID)")


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, indent=1, default=str, ensure_ascii=False).encode()


def _row(row: Any, *skip: str) -> dict[str, Any]:
    return {key: value for key, value in row._mapping.items() if key not in skip}


@dataclasses.dataclass(frozen=True)
class Verification:
    export: Any  # the `exports` row
    problems: list[str]  # one line per problem found
    failed: list[str]  # the checks that failed (SIGNATURE, MANIFEST_HASH, PARTS)
    parts_checked: int  # objects read back: the manifest and its parts
    key: SigningKey | None  # the key the export names, if moderation has it


def _parts(manifest: bytes) -> list[dict[str, Any]] | None:
    """The parts a manifest lists, each with a key, a size and a SHA-256; None if it lists none such."""
    try:
        parts = json.loads(manifest)["parts"]
        if all(isinstance(p["key"], str) and isinstance(p["size"], int) and isinstance(p["sha256"], str) for p in parts):
            return list(parts)
    except (ValueError, KeyError, TypeError):
        pass
    return None


class Preservation:
    def __init__(self, db: Database, clock: Clock, services: Services, storage: Storage, keys: SigningKeys, lock: BundleLock) -> None:
        self.db = db
        self.clock = clock
        self.services = services
        self.storage = storage
        self.keys = keys
        self.lock = lock

    async def set_hold(self, account_id: str, *, held: bool, reason: str, actor: str) -> None:
        account = _account(account_id)
        reason = rules.check_reason(reason)
        await self.services.set_hold(str(account), held=held, reason=reason, actor=actor)
        async with self.db.unit_of_work() as uow:
            await audit.record(
                uow, at=self.clock.now(), actor=actor, action="hold.placed" if held else "hold.released", account_id=account,
                target=f"account:{account}", reason=reason,
            )
            await uow.commit()

    async def _hold(self, account: uuid.UUID) -> Any | None:
        """The account as the lifecycle has it, if it is held now. Asked of the lifecycle
        rather than of the `legal_holds` table its event fills: a moderator exports right
        after placing a hold, before the event may have arrived."""
        try:
            found = await self.services.lifecycle_account(str(account))
        except NotFound:
            return None  # an account the lifecycle does not know is not held
        return found if found.account.held else None

    async def export(self, account_id: str, *, reason: str, actor: str) -> Any:
        account = _account(account_id)
        reason = rules.check_reason(reason)
        lifecycle = await self._hold(account)
        if lifecycle is None:
            raise FailedPrecondition("evidence is exported from held accounts only; place a legal hold first", reason="NOT_HELD")
        export_id = uuid.uuid4()
        prefix = evidence_prefix(account, export_id)
        created = self.clock.now()
        facts = {
            "account_id": str(account),
            "contacts": await self.services.contacts(str(account)),
            "lifecycle": json_format.MessageToDict(lifecycle, preserving_proto_field_name=True),
        }
        files: list[dict[str, Any]] = []
        objects: dict[str, tuple[str, int]] = {}  # key -> (sha256, size)
        token = ""
        while True:
            page = await self.services.export_files(str(account), str(export_id), token)
            for exported in page.files:
                entry = json_format.MessageToDict(exported.file, preserving_proto_field_name=True)
                entry["key"] = exported.key
                files.append(entry)
                objects[exported.key] = (exported.file.sha256, exported.file.size)
            token = page.next_page_token
            if not token:
                break
        async with self.db.read() as conn:
            case_rows = (await conn.execute(sa.select(cases).where(cases.c.account_id == account).order_by(cases.c.created_at))).all()
            filed = (
                await conn.execute(
                    sa.select(complaints).where(complaints.c.case_id.in_([row.case_id for row in case_rows])).order_by(complaints.c.created_at)
                )
            ).all()
        trail = await audit.of_account(self.db, account)
        placed = [entry.at for entry in trail if entry.action == "hold.placed"]
        parts: list[dict[str, Any]] = []
        documents = {
            "account.json": facts,
            "files.json": files,
            "cases.json": {"cases": [_row(r) for r in case_rows], "complaints": [_row(r, "receipt_hash") for r in filed]},
            "audit.json": [_row(r) for r in trail],
        }
        for name, document in documents.items():
            data = _json(document)
            await self.storage.put(prefix + name, data)
            parts.append({"key": prefix + name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        for part in await self.services.export_parts(str(account), str(export_id)):
            parts.append({"key": part.key, "size": part.size, "sha256": part.sha256, "items": part.items})
        for key, (sha256, size) in sorted(objects.items()):
            parts.append({"key": key, "size": size, "sha256": sha256})
        manifest = _json({
            "export_id": str(export_id), "account_id": str(account), "created_at": created.isoformat(), "actor": actor,
            "reason": reason, "bucket": self.storage.bucket,
            "hold": {"reason": lifecycle.account.hold_reason, "since": placed[-1].isoformat() if placed else ""},
            "parts": parts,
        })
        manifest_key = prefix + "manifest.json"
        await self.storage.put(manifest_key, manifest)
        digest = hashlib.sha256(manifest).hexdigest()
        signer = await self.keys.current()
        signature = signer.sign(manifest)
        signature_key = prefix + signatures.SIGNATURE_NAME
        await self.storage.put(
            signature_key,
            signatures.signature_document(
                key_id=signer.key_id, public_key=signer.public_key, manifest_key=manifest_key, manifest_sha256=digest, signature=signature
            ),
        )
        total = sum(size for _, size in objects.values())
        # Still held? A release (and the deletion it lets start) meanwhile must not leave
        # copies of the account's files behind: the bundle goes again.
        if await self._hold(account) is None:
            await self.storage.delete_prefix(prefix)
            raise FailedPrecondition("the legal hold was released during the export; nothing is kept", reason="NOT_HELD")
        retain_until = self.lock.retain_until(self.clock.now())
        if retain_until is not None:
            try:
                await self.lock.lock([*(part["key"] for part in parts), manifest_key, signature_key], retain_until)
            except CumuloError:
                await self._abandon(prefix)
                raise
        kept = f", {self.lock.mode} retention until {audit.when(retain_until)}" if retain_until else ""
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.insert(exports)
                    .values(
                        export_id=export_id, account_id=account, actor=actor, reason=reason, bucket=self.storage.bucket, prefix=prefix,
                        manifest_key=manifest_key, manifest_sha256=digest, files=len(files), bytes=total, created_at=created,
                        signature_key=signature_key, signature=signature, signing_key_id=signer.key_id, signing_key_fingerprint=signer.fingerprint,
                        lock_mode=self.lock.mode or "", retain_until=retain_until,
                    )
                    .returning(*exports.c)
                )
            ).one()
            await audit.record(
                uow, at=created, actor=actor, action="evidence.exported", account_id=account, target=f"s3://{self.storage.bucket}/{manifest_key}",
                reason=f"{reason} (manifest sha256 {digest}, signed by key {signer.key_id}, public key sha256 {signer.fingerprint}{kept})",
            )
            await uow.commit()
        log.info("evidence_exported", export_id=str(export_id), files=len(files))
        return row

    async def _abandon(self, prefix: str) -> None:
        """An export that cannot be kept as configured goes; if even that fails, the account's
        purge finds what is left (it deletes every bundle of the account, recorded or not)."""
        try:
            await self.storage.delete_prefix(prefix)
        except (CumuloError, botocore.exceptions.ClientError) as exc:
            log.warning("evidence_abandoned_bundle_left", prefix=prefix, error=type(exc).__name__)

    async def verify(self, export_id: str) -> Verification:
        """The bundle as stored, checked: the manifest's signature, its hash, then every part
        read back and hashed."""
        target = parse_id(export_id, "export_id", "an export id (UUID)")
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(exports).where(exports.c.export_id == target))).first()
        if row is None:
            raise NotFound("no such evidence export", reason="EXPORT_NOT_FOUND")
        key, key_problem = None, None
        if row.signing_key_id:
            try:
                key = await self.keys.get(row.signing_key_id)
            except NotSealed as refused:  # the key's row was tampered with: it proves nothing
                key_problem = str(refused)
        manifest = await self.storage.read_small(row.manifest_key, MAX_MANIFEST)
        if manifest is None:
            return Verification(row, [f"{row.manifest_key}: missing"], [SIGNATURE, MANIFEST_HASH, PARTS], 0, key)
        problems: list[str] = []
        failed: list[str] = []
        signature_problem = f"{row.signature_key}: {key_problem}" if key_problem else await self._signature_problem(row, key, manifest)
        if signature_problem:
            problems.append(signature_problem)
            failed.append(SIGNATURE)
        if hashlib.sha256(manifest).hexdigest() != row.manifest_sha256:
            problems.append(f"{row.manifest_key}: SHA-256 differs from the one recorded at export")
            failed.append(MANIFEST_HASH)
        if len(failed) == 2:
            # Neither moderation's signature nor the recorded hash vouches for this manifest:
            # what it lists proves nothing, and is not read.
            return Verification(row, [*problems, "parts: not checked against a manifest that is not the one exported"], [*failed, PARTS], 1, key)
        parts, found = _parts(manifest), []
        if parts is None:
            found.append(f"{row.manifest_key}: not a manifest")
            parts = []
        for part in parts:
            if not part["key"].startswith(row.prefix):
                found.append(f"{part['key']}: outside the bundle ({row.prefix})")
                continue
            stored = await self.storage.digest(part["key"])
            if stored is None:
                found.append(f"{part['key']}: missing")
            elif stored != (part["size"], part["sha256"]):
                found.append(f"{part['key']}: size or SHA-256 differs from the manifest")
        if found:
            failed.append(PARTS)
        return Verification(row, problems + found, failed, len(parts) + 1, key)

    async def _signature_problem(self, row: Any, key: SigningKey | None, manifest: bytes) -> str | None:
        """What is wrong with the manifest's signature, if anything: it must be the one recorded
        at export, lie in the bundle unchanged, come from the key the export names (whose public
        key is still the one that signed), and match the manifest's bytes as stored."""
        if row.signature is None or row.signature_key is None or row.signing_key_id is None:
            return f"{row.manifest_key}: not signed (exported before evidence manifests were signed)"
        if key is None:
            return f"{row.signature_key}: signed by key {row.signing_key_id}, which moderation does not have"
        if signatures.fingerprint(key.public_key) != row.signing_key_fingerprint:
            return (
                f"{row.signature_key}: key {key.key_id} is not the key that signed at export "
                f"(public key sha256 {row.signing_key_fingerprint} recorded, {signatures.fingerprint(key.public_key)} now)"
            )
        try:
            stored = await self.storage.read_small(row.signature_key, MAX_SIGNATURE)
        except ValueError:  # larger than any signature document
            stored = None
        if stored is None:
            return f"{row.signature_key}: missing or too large to be a signature"
        document = signatures.read_signature_document(stored)
        if document is None:
            return f"{row.signature_key}: not a signature document"
        if (document["key_id"], document["public_key_sha256"], document["signature"]) != (
            row.signing_key_id, row.signing_key_fingerprint, bytes(row.signature)
        ):
            return f"{row.signature_key}: differs from the signature recorded at export"
        if not signatures.valid(key.public_key, manifest, bytes(row.signature)):
            return f"{row.manifest_key}: moderation's signature (key {key.key_id}) does not match the manifest as stored"
        return None

    async def purge(self, account: uuid.UUID, reason: str = "") -> int:
        """The moderation part of the deletion saga (the platform's participant checks the
        holds first): the account's personal copies go (complaints it filed lose their
        contact, counter-notices their statements, strikes, evidence bundles and notices still
        waiting to be sent are deleted; cases about it still open are closed on the record and
        every case about it forgets the content's fingerprint);
        the audit log stays, as the law requires."""
        # Every bundle of the account, also one an interrupted export left without a row.
        items = await self.storage.delete_prefix(f"evidence/{account}/")
        async with self.db.unit_of_work() as uow:
            items += (await uow.execute(sa.delete(exports).where(exports.c.account_id == account))).rowcount or 0
            items += (
                await uow.execute(
                    sa.update(complaints).where(complaints.c.reporter_account_id == account).values(reporter_account_id=None, contact_address="")
                )
            ).rowcount or 0
            items += (
                await uow.execute(
                    sa.update(cases).where(cases.c.account_id == account, cases.c.counter_notice.is_not(None)).values(counter_notice=None)
                )
            ).rowcount or 0
            # Cases about the account that are still open go out of the queue, closed on the
            # record, without the fingerprint of content that no longer exists.
            now = self.clock.now()
            closed = (
                await uow.execute(
                    sa.update(cases)
                    .where(cases.c.account_id == account, cases.c.state != "decided")
                    .values(
                        state="decided", decision="dismiss", decided_by=PURGE_ACTOR, decided_at=now, reason=CLOSED_BY_PURGE,
                        sha256="", restore_at=None, counter_state=sa.case((cases.c.counter_state == "waiting", "none"), else_=cases.c.counter_state),
                    )
                    .returning(cases.c.case_id)
                )
            ).scalars().all()
            for case_id in closed:
                await audit.record(uow, at=now, actor=PURGE_ACTOR, action="case.closed", account_id=account, case_id=case_id, reason=CLOSED_BY_PURGE)
            items += len(closed)
            items += (
                await uow.execute(sa.update(cases).where(cases.c.account_id == account, cases.c.sha256 != "").values(sha256=""))
            ).rowcount or 0
            items += (await uow.execute(sa.delete(strikes).where(strikes.c.account_id == account))).rowcount or 0
            items += (await uow.execute(sa.delete(owner_notices).where(owner_notices.c.account_id == account))).rowcount or 0
            await uow.execute(sa.delete(counters).where(counters.c.key.in_([f"links:{account}", f"reporter:account:{account}"])))
            await uow.commit()
        return items
