"""Legal holds, evidence bundles, and the moderation side of an account's purge.

A hold is placed (and released) in the lifecycle, the authority on holds: no deletion starts
and a cancellation or termination waits; every service that keeps data (blob, sync, the
locator, moderation itself) learns of it from the lifecycle's `account.hold_changed` event and
keeps what the account has. An evidence export (held accounts only, as the lifecycle answers)
writes, under evidence/<account>/<export_id>/ in the preservation bucket: the account's facts,
its file list with hashes, the files' bytes, its cases and its audit trail, then a manifest
naming every part with its size and SHA-256. The manifest's own SHA-256 is kept here, so the
bundle can be verified against it later. Sync and the locator write their own parts
(`<service>.jsonl`: records, devices, location history) through `EvidenceInternalService`."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import sqlalchemy as sa
from google.protobuf import json_format

from cumulo_moderation import audit
from cumulo_moderation.adapters.services import Services
from cumulo_moderation.adapters.tables import cases, complaints, counters, exports, owner_notices, strikes
from cumulo_moderation.domain import rules
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, NotFound, parse_id
from cumulo_platform.evidence import evidence_prefix
from cumulo_platform.logging import get_logger
from cumulo_platform.storage import Storage

log = get_logger(__name__)
MAX_MANIFEST = 256 * 1024 * 1024


def _account(value: str) -> uuid.UUID:
    return parse_id(value, "account_id", "an account id (UUID)")


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, indent=1, default=str, ensure_ascii=False).encode()


def _row(row: Any, *skip: str) -> dict[str, Any]:
    return {key: value for key, value in row._mapping.items() if key not in skip}


class Preservation:
    def __init__(self, db: Database, clock: Clock, services: Services, storage: Storage) -> None:
        self.db = db
        self.clock = clock
        self.services = services
        self.storage = storage

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
        total = sum(size for _, size in objects.values())
        # Still held? A release (and the deletion it lets start) meanwhile must not leave
        # copies of the account's files behind: the bundle goes again.
        if await self._hold(account) is None:
            await self.storage.delete_prefix(prefix)
            raise FailedPrecondition("the legal hold was released during the export; nothing is kept", reason="NOT_HELD")
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.insert(exports)
                    .values(
                        export_id=export_id, account_id=account, actor=actor, reason=reason, bucket=self.storage.bucket, prefix=prefix,
                        manifest_key=manifest_key, manifest_sha256=digest, files=len(files), bytes=total, created_at=created,
                    )
                    .returning(*exports.c)
                )
            ).one()
            await audit.record(
                uow, at=created, actor=actor, action="evidence.exported", account_id=account, target=f"s3://{self.storage.bucket}/{manifest_key}",
                reason=f"{reason} (manifest sha256 {digest})",
            )
            await uow.commit()
        log.info("evidence_exported", export_id=str(export_id), files=len(files))
        return row

    async def verify(self, export_id: str) -> tuple[Any, list[str], int]:
        """(the export, problems found, parts checked): every part read back and hashed."""
        target = parse_id(export_id, "export_id", "an export id (UUID)")
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(exports).where(exports.c.export_id == target))).first()
        if row is None:
            raise NotFound("no such evidence export", reason="EXPORT_NOT_FOUND")
        manifest = await self.storage.read_small(row.manifest_key, MAX_MANIFEST)
        if manifest is None:
            return row, [f"{row.manifest_key}: missing"], 0
        if hashlib.sha256(manifest).hexdigest() != row.manifest_sha256:
            return row, [f"{row.manifest_key}: SHA-256 differs from the one recorded at export"], 1
        problems = []
        parts = json.loads(manifest)["parts"]
        for part in parts:
            found = await self.storage.digest(part["key"])
            if found is None:
                problems.append(f"{part['key']}: missing")
            elif found != (part["size"], part["sha256"]):
                problems.append(f"{part['key']}: size or SHA-256 differs from the manifest")
        return row, problems, len(parts) + 1

    async def purge(self, account: uuid.UUID, reason: str = "") -> int:
        """The moderation part of the deletion saga (the platform's participant checks the
        holds first): the account's personal copies go (complaints it filed lose their
        contact, counter-notices their statements, strikes, evidence bundles and notices still
        waiting to be sent are deleted);
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
            items += (await uow.execute(sa.delete(strikes).where(strikes.c.account_id == account))).rowcount or 0
            items += (await uow.execute(sa.delete(owner_notices).where(owner_notices.c.account_id == account))).rowcount or 0
            await uow.execute(sa.delete(counters).where(counters.c.key.in_([f"links:{account}", f"reporter:account:{account}"])))
            await uow.commit()
        return items
