"""Legal holds, evidence bundles and the moderation part of an account's purge, against the
session's real servers and services."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import sqlalchemy.exc

from cumulo.auth.v1 import auth_pb2
from cumulo.lifecycle.v1 import lifecycle_pb2 as lpb
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_blob.adapters.tables import contents, nodes
from cumulo_devstack.testing import PASSWORD, Ages, Member, eventually, expect_error
from cumulo_lifecycle.adapters.tables import purge_participants, tombstones
from cumulo_moderation.adapters.tables import complaints, exports
from cumulo_platform.storage import Storage
from cumulo_sdk import Cumulo

from .helpers import me, sha256, upload

DOCUMENTS = ("account.json", "files.json", "cases.json", "audit.json")
# Written by the data services themselves (EvidenceInternalService).
SERVICE_PARTS = ("sync.jsonl", "locator.jsonl")


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
async def preserved(moderation) -> AsyncIterator[Storage]:
    """The preservation bucket, through a client of the test's own."""
    platform = moderation.app.settings.platform
    storage = Storage.of(platform, platform.preservation_bucket)
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


async def lifecycle_account(internal_lifecycle, account_id: str) -> lpb.GetAccountResponse | None:
    try:
        return await internal_lifecycle.GetAccount(lpb.GetAccountRequest(account_id=account_id), timeout=10)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def known_to_lifecycle(internal_lifecycle, account_id: str) -> lpb.GetAccountResponse:
    return await eventually(  # type: ignore[return-value]
        lambda: lifecycle_account(internal_lifecycle, account_id), what="the lifecycle to know the account"
    )


async def transition_recorded(internal_lifecycle, account_id: str, reason: str) -> lpb.GetAccountResponse:
    async def recorded() -> lpb.GetAccountResponse | None:
        found = await lifecycle_account(internal_lifecycle, account_id)
        return found if found is not None and any(t.reason == reason for t in found.transitions) else None

    return await eventually(recorded, timeout=30, what=f"the lifecycle to record '{reason}'")  # type: ignore[return-value]


async def deleted(internal_lifecycle, account_id: str) -> lpb.GetAccountResponse:
    async def gone() -> lpb.GetAccountResponse | None:
        found = await lifecycle_account(internal_lifecycle, account_id)
        return found if found is not None and found.account.state == lpb.ACCOUNT_STATE_DELETED else None

    return await eventually(gone, timeout=90, what=f"account {account_id} to be DELETED")  # type: ignore[return-value]


async def blob_keys(blob, account_id: str) -> list[str]:
    async with blob.app.db.read() as conn:
        return list((await conn.execute(sa.select(contents.c.s3_key).where(contents.c.account_id == uuid.UUID(account_id)))).scalars())


async def blob_nodes(blob, account_id: str) -> int:
    async with blob.app.db.read() as conn:
        return (
            await conn.execute(sa.select(sa.func.count()).select_from(nodes).where(nodes.c.account_id == uuid.UUID(account_id)))
        ).scalar_one()


async def keys_under(storage: Storage, prefix: str) -> list[str]:
    listed = await storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


async def read_object(storage: Storage, key: str) -> bytes:
    data = await storage.read_small(key, 64 * 1024 * 1024)
    assert data is not None, f"{key} is missing from s3://{storage.bucket}"
    return data


@dataclasses.dataclass
class Bundle:
    evidence: pb.Evidence
    manifest: dict[str, Any]
    parts: dict[str, dict[str, Any]]  # key -> part


async def export_and_read(moderator: Cumulo, preserved: Storage, account_id: str, reason: str) -> Bundle:
    evidence = await moderator.moderation.export(account_id, reason)
    raw = await read_object(preserved, evidence.manifest_key)
    assert sha256(raw) == evidence.manifest_sha256
    manifest = json.loads(raw)
    return Bundle(evidence, manifest, {part["key"]: part for part in manifest["parts"]})


async def assert_preserved(moderator: Cumulo, preserved: Storage, blob, member: Member, keys: list[str], reason: str) -> Bundle:
    """The held account's file comes out in a moderator's export, byte for byte, and its
    stored objects are still in blob's bucket."""
    bundle = await export_and_read(moderator, preserved, member.account_id, reason)
    key = f"{bundle.evidence.prefix}files/{sha256(member.content)}"
    assert key in bundle.parts
    assert await read_object(preserved, key) == member.content
    assert keys
    for stored in keys:
        assert await blob.app.storage.size_of(stored) is not None, stored
    return bundle


async def assert_purged(blob, account_id: str, keys: list[str]) -> None:
    assert await blob_nodes(blob, account_id) == 0
    assert await blob_keys(blob, account_id) == []
    for stored in keys:
        assert await blob.app.storage.size_of(stored) is None, stored


async def cancel(member: Member) -> None:
    """The owner closes their own account, as the SDK calls it."""
    await member.client.call(member.client.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=PASSWORD))


# --- 3. legal holds ------------------------------------------------------------------------------


async def test_a_held_account_survives_its_owners_cancellation_until_released(
    moderator, member, moderation, blob, internal_lifecycle, preserved
):
    await known_to_lifecycle(internal_lifecycle, member.account_id)
    keys = await blob_keys(blob, member.account_id)
    await moderator.moderation.hold(member.account_id, held=True, reason="preservation request from the prosecutor, ref 2024/17")
    state = await lifecycle_account(internal_lifecycle, member.account_id)
    assert state.account.held and state.account.hold_reason == "preservation request from the prosecutor, ref 2024/17"

    await cancel(member)
    waiting = await transition_recorded(internal_lifecycle, member.account_id, "cancellation waits for a legal hold")
    assert waiting.account.state == lpb.ACCOUNT_STATE_ACTIVE and waiting.account.held
    await assert_preserved(moderator, preserved, blob, member, keys, "the prosecutor asked for the files")

    await moderator.moderation.hold(member.account_id, held=False, reason="preservation period over")
    final = await deleted(internal_lifecycle, member.account_id)
    assert final.account.deletion_reason == "cancellation" and not final.account.held
    await assert_purged(blob, member.account_id, keys)
    actions = [e.action for e in await moderator.moderation.audit(account_id=member.account_id)]
    assert {"hold.placed", "hold.released", "evidence.exported"} <= set(actions)


async def test_a_held_account_survives_the_inactivity_deletion_until_released(
    moderator, member, moderation, blob, auth, lifecycle, internal_lifecycle, preserved, infra
):
    await known_to_lifecycle(internal_lifecycle, member.account_id)
    keys = await blob_keys(blob, member.account_id)
    await moderator.moderation.hold(member.account_id, held=True, reason="court order 88/2024")
    ages = Ages(lifecycle, (auth, blob), infra.nats.url)
    await ages.freeze(member.account_id)
    await ages.grace_over(member.account_id)  # the sweep would delete it now, were it not held
    await lifecycle.app.cases.sweeper.sweep()
    held = await lifecycle_account(internal_lifecycle, member.account_id)
    assert held.account.state == lpb.ACCOUNT_STATE_FROZEN and held.account.held
    assert held.account.delete_at.ToDatetime(tzinfo=dt.UTC) < lifecycle.clock.now()
    await assert_preserved(moderator, preserved, blob, member, keys, "court order 88/2024: the account's files")

    await moderator.moderation.hold(member.account_id, held=False, reason="court order lifted")
    await lifecycle.app.cases.sweeper.sweep()
    final = await deleted(internal_lifecycle, member.account_id)
    assert final.account.deletion_reason == "inactivity"
    await assert_purged(blob, member.account_id, keys)


async def test_a_held_account_survives_termination_until_released(
    moderator, member, reporter, moderation, blob, internal_lifecycle, preserved
):
    await known_to_lifecycle(internal_lifecycle, member.account_id)
    keys = await blob_keys(blob, member.account_id)
    filed = await reporter.client.complaints.report(
        "account", member.account_id, category="harmful", description="this account sends threats through its shared files",
    )
    await moderator.moderation.hold(member.account_id, held=True, reason="threats case: police inquiry 5521")
    await moderator.moderation.claim(filed.case_id)
    decided = await moderator.moderation.decide(filed.case_id, "terminate", "repeated threats against other members")
    assert decided.decision == pb.DECISION_TERMINATE and decided.state == pb.CASE_STATE_DECIDED

    waiting = await transition_recorded(internal_lifecycle, member.account_id, "termination waits for a legal hold")
    assert waiting.account.state in (lpb.ACCOUNT_STATE_ACTIVE, lpb.ACCOUNT_STATE_FROZEN) and waiting.account.held
    await assert_preserved(moderator, preserved, blob, member, keys, "police inquiry 5521")

    await moderator.moderation.hold(member.account_id, held=False, reason="inquiry closed")
    final = await deleted(internal_lifecycle, member.account_id)
    assert final.account.deletion_reason == "termination"
    await assert_purged(blob, member.account_id, keys)


# --- 4. evidence bundles ------------------------------------------------------------------------


async def test_evidence_is_exported_from_held_accounts_verified_and_tampering_found(
    moderator, owner, reporter, moderation, preserved, internal_lifecycle, tmp_path
):
    await known_to_lifecycle(internal_lifecycle, owner.account_id)
    await expect_error(
        moderator.moderation.export(owner.account_id, "before any hold"), grpc.StatusCode.FAILED_PRECONDITION, "NOT_HELD"
    )
    second = secrets.token_bytes(12_345)
    node = await upload(owner.client, tmp_path / "more", "notes.bin", second)
    filed = await reporter.client.complaints.report(
        "link", owner.link_token, category="privacy", description="my home address is in this shared photo",
    )
    await moderator.moderation.hold(owner.account_id, held=True, reason="privacy case under review")

    bundle = await export_and_read(moderator, preserved, owner.account_id, "privacy case under review: preserve")
    evidence = bundle.evidence
    assert evidence.account_id == owner.account_id and evidence.actor == me(moderator)
    assert evidence.bucket == moderation.app.settings.platform.preservation_bucket == bundle.manifest["bucket"]
    assert evidence.prefix == f"evidence/{owner.account_id}/{evidence.export_id}/"
    assert evidence.manifest_key == evidence.prefix + "manifest.json"
    assert (evidence.files, evidence.bytes) == (2, len(owner.content) + len(second))
    uploaded = {sha256(owner.content): owner.content, sha256(second): second}
    expected = {evidence.prefix + name for name in DOCUMENTS + SERVICE_PARTS} | {f"{evidence.prefix}files/{d}" for d in uploaded}
    assert set(bundle.parts) == expected
    for key, part in bundle.parts.items():
        data = await read_object(preserved, key)
        assert (len(data), sha256(data)) == (part["size"], part["sha256"]), key
    for digest, data in uploaded.items():
        assert await read_object(preserved, f"{evidence.prefix}files/{digest}") == data

    account = json.loads(await read_object(preserved, evidence.prefix + "account.json"))
    assert account["account_id"] == owner.account_id and account["contacts"]
    files = json.loads(await read_object(preserved, evidence.prefix + "files.json"))
    assert {f["node_id"] for f in files} == {owner.file_id, node.node_id}
    cases = json.loads(await read_object(preserved, evidence.prefix + "cases.json"))
    assert filed.case_id in [c["case_id"] for c in cases["cases"]]
    assert filed.complaint_id in [c["complaint_id"] for c in cases["complaints"]]
    assert all("receipt_hash" not in c for c in cases["complaints"])
    trail = json.loads(await read_object(preserved, evidence.prefix + "audit.json"))
    assert "hold.placed" in [e["action"] for e in trail]

    verified = await moderator.moderation.verify(evidence.export_id)
    assert verified.intact and list(verified.problems) == [] and verified.parts_checked == len(bundle.parts) + 1
    exported = [e for e in await moderator.moderation.audit(account_id=owner.account_id) if e.action == "evidence.exported"]
    assert len(exported) == 1 and evidence.manifest_sha256 in exported[0].reason

    # Tampering with one part: named, the rest found intact.
    tampered = evidence.prefix + "files.json"
    await preserved.put(tampered, b'[{"node_id": "nothing to see"}]')
    verified = await moderator.moderation.verify(evidence.export_id)
    assert not verified.intact
    assert len(verified.problems) == 1 and verified.problems[0].startswith(tampered + ":")
    # A file's bytes removed: named as missing too.
    gone = f"{evidence.prefix}files/{sha256(second)}"
    await preserved.delete(gone)
    verified = await moderator.moderation.verify(evidence.export_id)
    assert not verified.intact and len(verified.problems) == 2
    assert any(p.startswith(gone + ":") and "missing" in p for p in verified.problems)
    assert list(verified.failed_checks) == [pb.EVIDENCE_CHECK_PARTS]
    # The manifest itself rewritten: neither moderation's signature nor the hash recorded at
    # export vouches for it, and its (empty) list of parts is not taken for the bundle's.
    await preserved.put(evidence.manifest_key, json.dumps({**bundle.manifest, "parts": []}).encode())
    verified = await moderator.moderation.verify(evidence.export_id)
    assert not verified.intact
    assert list(verified.failed_checks) == [pb.EVIDENCE_CHECK_SIGNATURE, pb.EVIDENCE_CHECK_MANIFEST_HASH, pb.EVIDENCE_CHECK_PARTS]
    assert [p.split(": ")[0] for p in verified.problems] == [evidence.manifest_key, evidence.manifest_key, "parts"]
    await expect_error(moderator.moderation.verify(str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND, "EXPORT_NOT_FOUND")


# --- 6. the moderation part of an account's purge ---------------------------------------------------


async def test_a_deleted_complainants_personal_data_and_evidence_go_but_the_audit_stays(
    moderator, owner, member, moderation, lifecycle, internal_lifecycle, preserved
):
    await known_to_lifecycle(internal_lifecycle, member.account_id)
    filed = [
        await member.client.complaints.report(
            "link", owner.link_token, category="spam", description="advertising in a shared photo",
            contact_address="complainant@example.com",
        ),
        await member.client.complaints.report(
            "account", owner.account_id, category="harmful", description="keeps sharing harmful material",
            contact_address="+44 20 7946 0123",
        ),
    ]
    ids = [uuid.UUID(f.complaint_id) for f in filed]
    async with moderation.app.db.read() as conn:
        rows = (await conn.execute(sa.select(complaints).where(complaints.c.complaint_id.in_(ids)))).all()
    assert {str(r.reporter_account_id) for r in rows} == {member.account_id}
    assert {r.contact_address for r in rows} == {"complainant@example.com", "+44 20 7946 0123"}

    await moderator.moderation.hold(member.account_id, held=True, reason="complaints suspected to be abusive")
    bundle = await export_and_read(moderator, preserved, member.account_id, "complaints suspected to be abusive")
    assert await keys_under(preserved, bundle.evidence.prefix)
    await moderator.moderation.hold(member.account_id, held=False, reason="no abuse found")
    await expect_error(
        moderator.moderation.export(member.account_id, "after the release"), grpc.StatusCode.FAILED_PRECONDITION, "NOT_HELD"
    )
    trail_before = await moderator.moderation.audit(account_id=member.account_id)
    assert {"hold.placed", "evidence.exported", "hold.released"} <= {e.action for e in trail_before}

    await cancel(member)
    final = await deleted(internal_lifecycle, member.account_id)
    assert final.account.deletion_reason == "cancellation"

    async with lifecycle.app.db.read() as conn:
        tomb = (await conn.execute(sa.select(tombstones).where(tombstones.c.account_id == uuid.UUID(member.account_id)))).one()
        part = (
            await conn.execute(
                sa.select(purge_participants).where(
                    purge_participants.c.account_id == uuid.UUID(member.account_id), purge_participants.c.service == "moderation"
                )
            )
        ).one()
    assert "moderation" in tomb.participants and part.completed_at is not None
    assert part.items_deleted >= 3  # the export and the two complaints' contacts
    purges = await internal_lifecycle.ListPurges(lpb.ListPurgesRequest())
    assert member.account_id not in [p.account_id for p in purges.purges]  # finished, not pending

    async with moderation.app.db.read() as conn:
        rows = (await conn.execute(sa.select(complaints).where(complaints.c.complaint_id.in_(ids)))).all()
        left = (await conn.execute(sa.select(exports).where(exports.c.account_id == uuid.UUID(member.account_id)))).all()
    assert len(rows) == 2
    assert all(r.reporter_account_id is None and r.contact_address == "" for r in rows)
    assert {r.description for r in rows} == {"advertising in a shared photo", "keeps sharing harmful material"}
    assert left == []
    assert await keys_under(preserved, bundle.evidence.prefix) == []
    assert await keys_under(preserved, f"evidence/{member.account_id}/") == []
    trail_after = await moderator.moderation.audit(account_id=member.account_id)
    assert [e.audit_id for e in trail_after] == [e.audit_id for e in trail_before]
    # The complaints' own audit entries (about the owner's account) stay too.
    for complaint in filed:
        case_trail = await moderator.moderation.audit(case_id=complaint.case_id)
        assert f"user:{member.account_id}" in [e.actor for e in case_trail if e.action == "complaint.filed"]
