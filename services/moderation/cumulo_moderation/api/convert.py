"""Rows to protobuf messages."""

from __future__ import annotations

from typing import Any

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_moderation.domain.rules import CATEGORIES, DECISIONS, TARGET_KINDS
from cumulo_moderation.preservation import MANIFEST_HASH, PARTS, SIGNATURE, Verification
from cumulo_platform.grpc_convert import timestamp

CATEGORY_VALUES = {name: value for value, name in CATEGORIES.items()}
TARGET_VALUES = {name: value for value, name in TARGET_KINDS.items()}
DECISION_VALUES = {name: value for value, name in DECISIONS.items()}
KINDS = {
    "complaint": pb.CASE_KIND_COMPLAINT,
    "blocklist_match": pb.CASE_KIND_BLOCKLIST_MATCH,
    "link_burst": pb.CASE_KIND_LINK_BURST,
    "repeat_infringer": pb.CASE_KIND_REPEAT_INFRINGER,
}
STATES = {"open": pb.CASE_STATE_OPEN, "claimed": pb.CASE_STATE_CLAIMED, "decided": pb.CASE_STATE_DECIDED}
STATE_NAMES = {value: name for name, value in STATES.items()}
COUNTER_STATES = {
    "none": pb.COUNTER_NOTICE_STATE_NONE,
    "waiting": pb.COUNTER_NOTICE_STATE_WAITING,
    "restored": pb.COUNTER_NOTICE_STATE_RESTORED,
    "legal_action": pb.COUNTER_NOTICE_STATE_LEGAL_ACTION,
}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def case(row: Any, *, for_owner: bool = False) -> pb.CaseSummary:
    """`for_owner`: the person a case is about does not learn which moderators handled it."""
    return pb.CaseSummary(
        case_id=str(row.case_id),
        kind=KINDS.get(row.kind, pb.CASE_KIND_UNSPECIFIED),
        category=CATEGORY_VALUES.get(row.category, pb.CATEGORY_UNSPECIFIED),
        target_kind=TARGET_VALUES.get(row.target_kind, pb.TARGET_KIND_UNSPECIFIED),
        account_id=_text(row.account_id),
        node_id=_text(row.node_id),
        link_id=_text(row.link_id),
        sha256=row.sha256,
        state=STATES[row.state],
        claimed_by="" if for_owner else row.claimed_by,
        decision=DECISION_VALUES.get(row.decision, pb.DECISION_UNSPECIFIED),
        decided_by="" if for_owner else row.decided_by,
        reason=row.reason,
        created_at=timestamp(row.created_at),
        decided_at=timestamp(row.decided_at),
        complaints=row.complaints,
        counter_notice=COUNTER_STATES.get(row.counter_state, pb.COUNTER_NOTICE_STATE_UNSPECIFIED),
        restore_at=timestamp(row.restore_at),
        suspended_until=timestamp(row.suspended_until),
    )


def complaint(row: Any) -> pb.Complaint:
    claim = pb.CopyrightClaim(**row.copyright) if row.copyright else None
    return pb.Complaint(
        complaint_id=str(row.complaint_id),
        category=CATEGORY_VALUES.get(row.category, pb.CATEGORY_UNSPECIFIED),
        description=row.description,
        reporter_account_id=_text(row.reporter_account_id),
        contact_address=row.contact_address,
        copyright=claim,
        created_at=timestamp(row.created_at),
        legal_action_at=timestamp(row.legal_action_at),
    )


def audit_entry(row: Any) -> pb.AuditEntry:
    return pb.AuditEntry(
        audit_id=row.audit_id, at=timestamp(row.at), actor=row.actor, action=row.action, account_id=_text(row.account_id),
        target=row.target, reason=row.reason, case_id=_text(row.case_id),
    )


def evidence(row: Any) -> pb.Evidence:
    return pb.Evidence(
        export_id=str(row.export_id), account_id=str(row.account_id), bucket=row.bucket, prefix=row.prefix,
        manifest_key=row.manifest_key, manifest_sha256=row.manifest_sha256, files=row.files, bytes=row.bytes,
        created_at=timestamp(row.created_at), actor=row.actor, signature_key=row.signature_key or "",
        signing_key_id=row.signing_key_id or "", signing_key_fingerprint=row.signing_key_fingerprint or "", lock_mode=row.lock_mode,
        retain_until=timestamp(row.retain_until),
    )


EVIDENCE_CHECKS = {SIGNATURE: pb.EVIDENCE_CHECK_SIGNATURE, MANIFEST_HASH: pb.EVIDENCE_CHECK_MANIFEST_HASH, PARTS: pb.EVIDENCE_CHECK_PARTS}


def verification(checked: Verification) -> pb.VerifyEvidenceResponse:
    return pb.VerifyEvidenceResponse(
        evidence=evidence(checked.export), intact=not checked.problems, problems=checked.problems, parts_checked=checked.parts_checked,
        failed_checks=[EVIDENCE_CHECKS[name] for name in checked.failed],
        signing_public_key_pem=checked.key.public_pem if checked.key else "",
    )


def blocklist_entry(row: Any) -> pb.BlocklistEntry:
    return pb.BlocklistEntry(sha256=row.sha256, reason=row.reason, added_by=row.added_by, added_at=timestamp(row.added_at))
