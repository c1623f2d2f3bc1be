"""Bad input to the moderation service's public API: refused INVALID_ARGUMENT naming the field,
never repeating the value, never an internal error (crafted page tokens included), and to a
signed-in user without the moderator role, refused NOT_A_MODERATOR before the input is looked
at. The door of every method, and what other members reach: test_security.py. The bad
requests name the `world` of the package's conftest (they are refused, so it stays as it is)."""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import (
    expect_error,
    invoke,
    public_methods,
    unique_email,
    with_client_id,
)
from cumulo_moderation.audit import NEWEST_FIRST
from cumulo_platform.paging import encode_token

from .helpers import World, copyright_claim, metadata_of

# "Service/Method" -> its descriptor: every method of the public API, from the proto.
METHODS = public_methods(pb)
FILE_COMPLAINT, LEGAL, COUNTER = "ComplaintService/FileComplaint", "ComplaintService/ReportLegalAction", "ComplaintService/FileCounterNotice"
M = "ModerationService/"
MODERATOR_ONLY = [m for m in METHODS if m.startswith(M)]
# Methods whose request has any field: each must have bad inputs in BAD_INPUT below.
TAKES_INPUT = [name for name, m in METHODS.items() if m.input_type.fields]


# --- bad input -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bad:
    method: str
    name: str
    who: str  # "anonymous" (no token), or the World attribute whose token is sent
    build: Callable[[World], Any]
    field: str
    echo: str = ""  # a value the answer must not repeat


def _complaint(world: World, **changes: Any) -> pb.FileComplaintRequest:
    fields: dict[str, Any] = dict(
        target=pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account=world.owner.account_id), category=pb.CATEGORY_SPAM,
        description="more spam from this account", contact_address=world.contact,
    )
    fields.update(changes)
    return pb.FileComplaintRequest(**fields)


def _copyright(world: World, **changes: Any) -> pb.FileComplaintRequest:
    return _complaint(world, category=pb.CATEGORY_COPYRIGHT, copyright=copyright_claim(**changes))


def _counter(world: World, **changes: Any) -> pb.FileCounterNoticeRequest:
    """A counter-notice on the open case, complete but for `changes` (the input is checked first)."""
    fields: dict[str, Any] = dict(
        case_id=world.case_b, statement="my own photograph", name="Ann Owner", contact="ann@example.com",
        consent_to_jurisdiction=True, good_faith_statement=True,
    )
    fields.update(changes)
    return pb.FileCounterNoticeRequest(**fields)


def _decide(world: World, **changes: Any) -> pb.DecideCaseRequest:
    fields: dict[str, Any] = dict(case_id=world.case_b, decision=pb.DECISION_WARN, reason="spam, first warning")
    fields.update(changes)
    return pb.DecideCaseRequest(**fields)


def _token_of(values: list[Any]) -> str:
    return encode_token(values)


BAD_LINK = "https://cumulo.example/s/sh0rt-Secret"
BAD_CONTACT = "call me at the harbour office"
GARBAGE_TOKEN = "not a token from anywhere!"
COPYRIGHT_ELEMENTS = ["rights_holder", "rights_holder_contact", "work", "location", "signature"]
COPYRIGHT_STATEMENTS = ["good_faith_statement", "accuracy_statement"]

BAD_INPUT: list[Bad] = [
    # FileComplaint: the target
    Bad(FILE_COMPLAINT, "target-missing", "anonymous", lambda w: _complaint(w, target=None), "target.kind"),
    Bad(FILE_COMPLAINT, "target-kind-missing", "anonymous", lambda w: _complaint(w, target=pb.Target(account=w.owner.account_id)), "target.kind"),
    Bad(FILE_COMPLAINT, "target-kind-unknown", "anonymous", lambda w: _complaint(w, target=pb.Target(kind=9, account=w.owner.account_id)), "target.kind"),
    Bad(FILE_COMPLAINT, "link-too-short", "anonymous", lambda w: _complaint(w, target=pb.Target(kind=pb.TARGET_KIND_LINK, link=BAD_LINK)), "target.link", BAD_LINK),
    Bad(FILE_COMPLAINT, "link-empty", "anonymous", lambda w: _complaint(w, target=pb.Target(kind=pb.TARGET_KIND_LINK)), "target.link"),
    Bad(
        FILE_COMPLAINT, "link-bad-characters", "complainant",
        lambda w: _complaint(w, target=pb.Target(kind=pb.TARGET_KIND_LINK, link="https://cumulo.example/s/" + "<script>alert(1)</script>")),
        "target.link", "<script>",
    ),
    Bad(FILE_COMPLAINT, "node-id-empty", "anonymous", lambda w: _complaint(w, target=pb.Target(kind=pb.TARGET_KIND_FILE)), "target.node_id"),
    Bad(FILE_COMPLAINT, "node-id-malformed", "complainant", lambda w: _complaint(w, target=pb.Target(kind=pb.TARGET_KIND_FILE, node_id="photo-of-mine.jpg")), "target.node_id", "photo-of-mine"),
    Bad(FILE_COMPLAINT, "account-empty", "anonymous", lambda w: _complaint(w, target=pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account="  ")), "target.account"),
    Bad(FILE_COMPLAINT, "account-too-long", "anonymous", lambda w: _complaint(w, target=pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account="x" * 300 + "@example.com")), "target.account", "x" * 30),
    # FileComplaint: category, description, contact
    Bad(FILE_COMPLAINT, "category-missing", "anonymous", lambda w: _complaint(w, category=pb.CATEGORY_UNSPECIFIED), "category"),
    Bad(FILE_COMPLAINT, "category-unknown", "anonymous", lambda w: _complaint(w, category=42), "category"),
    Bad(FILE_COMPLAINT, "description-missing", "anonymous", lambda w: _complaint(w, description=""), "description"),
    Bad(FILE_COMPLAINT, "description-blank", "complainant", lambda w: _complaint(w, description=" \n\t "), "description"),
    Bad(FILE_COMPLAINT, "description-too-long", "anonymous", lambda w: _complaint(w, description="spam " * 1001), "description", "spam spam spam"),
    Bad(FILE_COMPLAINT, "description-control-character", "anonymous", lambda w: _complaint(w, description="ring \x07 the bell-of-doom"), "description", "bell-of-doom"),
    Bad(FILE_COMPLAINT, "anonymous-without-contact", "anonymous", lambda w: _complaint(w, contact_address=""), "contact_address"),
    Bad(FILE_COMPLAINT, "anonymous-blank-contact", "anonymous", lambda w: _complaint(w, contact_address="   "), "contact_address"),
    Bad(FILE_COMPLAINT, "contact-malformed", "anonymous", lambda w: _complaint(w, contact_address=BAD_CONTACT), "contact_address", BAD_CONTACT),
    Bad(FILE_COMPLAINT, "signed-in-contact-malformed", "complainant", lambda w: _complaint(w, contact_address=BAD_CONTACT), "contact_address", BAD_CONTACT),
    # FileComplaint: the copyright notice
    Bad(FILE_COMPLAINT, "copyright-without-notice", "anonymous", lambda w: _complaint(w, category=pb.CATEGORY_COPYRIGHT), "copyright"),
    *[
        Bad(FILE_COMPLAINT, f"copyright-without-{name}", "anonymous", lambda w, name=name: _copyright(w, **{name: ""}), f"copyright.{name}")
        for name in COPYRIGHT_ELEMENTS
    ],
    *[
        Bad(FILE_COMPLAINT, f"copyright-blank-{name}", "complainant", lambda w, name=name: _copyright(w, **{name: "   "}), f"copyright.{name}")
        for name in COPYRIGHT_ELEMENTS
    ],
    *[
        Bad(FILE_COMPLAINT, f"copyright-without-{name}", "anonymous", lambda w, name=name: _copyright(w, **{name: False}), f"copyright.{name}")
        for name in COPYRIGHT_STATEMENTS
    ],
    Bad(FILE_COMPLAINT, "copyright-work-too-long", "anonymous", lambda w: _copyright(w, work="Harbour " * 100), "copyright.work", "Harbour Harbour"),
    Bad(FILE_COMPLAINT, "copyright-notice-on-spam", "anonymous", lambda w: _complaint(w, copyright=copyright_claim()), "copyright"),
    Bad(FILE_COMPLAINT, "empty-copyright-notice-on-privacy", "complainant", lambda w: _complaint(w, category=pb.CATEGORY_PRIVACY, copyright=pb.CopyrightClaim()), "copyright"),
    # ReportLegalAction
    Bad(LEGAL, "description-missing", "complainant", lambda w: pb.ReportLegalActionRequest(complaint_id=w.complaint_a, receipt=w.receipt_a), "description"),
    Bad(LEGAL, "description-too-long", "complainant", lambda w: pb.ReportLegalActionRequest(complaint_id=w.complaint_a, receipt=w.receipt_a, description="suit " * 1001), "description"),
    Bad(LEGAL, "complaint-id-malformed", "complainant", lambda w: pb.ReportLegalActionRequest(complaint_id="complaint-1", receipt=w.receipt_a, description="suit"), "complaint_id"),
    Bad(LEGAL, "complaint-id-missing", "complainant", lambda w: pb.ReportLegalActionRequest(receipt=w.receipt_a, description="suit"), "complaint_id"),
    # FileCounterNotice (the owner's own, disputable case C)
    Bad(COUNTER, "statement-missing", "owner", lambda w: _counter(w, statement=""), "statement"),
    Bad(COUNTER, "statement-too-long", "owner", lambda w: _counter(w, statement="mine " * 1001), "statement"),
    Bad(COUNTER, "name-missing", "owner", lambda w: _counter(w, name=" "), "name"),
    Bad(COUNTER, "name-control-character", "owner", lambda w: _counter(w, name="Ann\x1bOwner"), "name"),
    Bad(COUNTER, "contact-missing", "owner", lambda w: _counter(w, contact=""), "contact"),
    Bad(COUNTER, "without-consent", "owner", lambda w: _counter(w, consent_to_jurisdiction=False), "consent_to_jurisdiction"),
    Bad(COUNTER, "without-good-faith", "owner", lambda w: _counter(w, good_faith_statement=False), "good_faith_statement"),
    Bad(COUNTER, "case-id-malformed", "owner", lambda w: _counter(w, case_id="case-C"), "case_id"),
    Bad(COUNTER, "case-id-missing", "owner", lambda w: _counter(w, case_id=""), "case_id"),
    # ListQueue
    Bad(M + "ListQueue", "state-unknown", "moderator", lambda w: pb.ListQueueRequest(state=7), "state"),
    Bad(M + "ListQueue", "page-size-negative", "moderator", lambda w: pb.ListQueueRequest(page_size=-1), "page_size"),
    Bad(M + "ListQueue", "page-size-too-big", "moderator", lambda w: pb.ListQueueRequest(page_size=501), "page_size"),
    Bad(M + "ListQueue", "page-token-garbage", "moderator", lambda w: pb.ListQueueRequest(page_token=GARBAGE_TOKEN), "page_token", GARBAGE_TOKEN),
    Bad(M + "ListQueue", "page-token-not-a-list", "moderator", lambda w: pb.ListQueueRequest(page_token=base64.urlsafe_b64encode(b'{"a": 1}').decode()), "page_token"),
    Bad(M + "ListQueue", "page-token-of-another-list", "moderator", lambda w: pb.ListQueueRequest(page_token=_token_of([41])), "page_token"),
    # GetCase, ClaimCase, DecideCase
    Bad(M + "GetCase", "case-id-malformed", "moderator", lambda w: pb.GetCaseRequest(case_id="1 OR 1=1"), "case_id", "1 OR 1=1"),
    Bad(M + "GetCase", "case-id-missing", "moderator", lambda w: pb.GetCaseRequest(), "case_id"),
    Bad(M + "ClaimCase", "case-id-malformed", "moderator", lambda w: pb.ClaimCaseRequest(case_id=w.case_b[:-1]), "case_id"),
    Bad(M + "ClaimCase", "case-id-missing", "moderator", lambda w: pb.ClaimCaseRequest(take_over=True), "case_id"),
    Bad(M + "DecideCase", "decision-unspecified", "moderator", lambda w: _decide(w, decision=pb.DECISION_UNSPECIFIED), "decision"),
    Bad(M + "DecideCase", "decision-unknown", "moderator", lambda w: _decide(w, decision=17), "decision"),
    Bad(M + "DecideCase", "reason-empty", "moderator", lambda w: _decide(w, reason=""), "reason"),
    Bad(M + "DecideCase", "reason-blank", "moderator", lambda w: _decide(w, reason=" \n "), "reason"),
    Bad(M + "DecideCase", "reason-too-long", "moderator", lambda w: _decide(w, reason="spam " * 201), "reason"),
    Bad(M + "DecideCase", "suspend-without-duration", "moderator", lambda w: _decide(w, decision=pb.DECISION_SUSPEND), "suspend_seconds"),
    Bad(M + "DecideCase", "suspend-negative", "moderator", lambda w: _decide(w, decision=pb.DECISION_SUSPEND, suspend_seconds=-60), "suspend_seconds"),
    Bad(
        M + "DecideCase", "suspend-too-long", "moderator",
        lambda w: _decide(w, decision=pb.DECISION_SUSPEND, suspend_seconds=365 * 86400 + 1), "suspend_seconds",
    ),
    Bad(M + "DecideCase", "suspend-a-century", "moderator", lambda w: _decide(w, decision=pb.DECISION_SUSPEND, suspend_seconds=100 * 365 * 86400), "suspend_seconds"),
    Bad(M + "DecideCase", "duration-on-a-warning", "moderator", lambda w: _decide(w, suspend_seconds=3600), "suspend_seconds"),
    Bad(M + "DecideCase", "duration-on-a-dismissal", "moderator", lambda w: _decide(w, decision=pb.DECISION_DISMISS, suspend_seconds=-1), "suspend_seconds"),
    Bad(M + "DecideCase", "block-on-an-account-case", "moderator", lambda w: _decide(w, decision=pb.DECISION_BLOCK), "decision"),
    Bad(M + "DecideCase", "case-id-malformed", "moderator", lambda w: _decide(w, case_id="B"), "case_id"),
    # SetLegalHold, ExportEvidence, VerifyEvidence
    Bad(M + "SetLegalHold", "account-id-malformed", "moderator", lambda w: pb.SetLegalHoldRequest(account_id=w.owner.email, held=True, reason="court order"), "account_id"),
    Bad(M + "SetLegalHold", "account-id-missing", "moderator", lambda w: pb.SetLegalHoldRequest(held=True, reason="court order"), "account_id"),
    Bad(M + "SetLegalHold", "reason-missing", "moderator", lambda w: pb.SetLegalHoldRequest(account_id=w.owner.account_id, held=False), "reason"),
    Bad(M + "ExportEvidence", "account-id-malformed", "moderator", lambda w: pb.ExportEvidenceRequest(account_id="owner", reason="court order"), "account_id"),
    Bad(M + "ExportEvidence", "reason-missing", "moderator", lambda w: pb.ExportEvidenceRequest(account_id=w.owner.account_id, reason="  "), "reason"),
    Bad(M + "VerifyEvidence", "export-id-malformed", "moderator", lambda w: pb.VerifyEvidenceRequest(export_id="../../etc/passwd"), "export_id", "passwd"),
    Bad(M + "VerifyEvidence", "export-id-missing", "moderator", lambda w: pb.VerifyEvidenceRequest(), "export_id"),
    # ListAudit
    Bad(M + "ListAudit", "account-id-malformed", "moderator", lambda w: pb.ListAuditRequest(account_id="everyone"), "account_id"),
    Bad(M + "ListAudit", "case-id-malformed", "moderator", lambda w: pb.ListAuditRequest(case_id="' OR ''='"), "case_id"),
    Bad(M + "ListAudit", "page-size-negative", "moderator", lambda w: pb.ListAuditRequest(page_size=-5), "page_size"),
    Bad(M + "ListAudit", "page-size-too-big", "moderator", lambda w: pb.ListAuditRequest(page_size=1001), "page_size"),
    Bad(M + "ListAudit", "page-token-garbage", "moderator", lambda w: pb.ListAuditRequest(page_token=GARBAGE_TOKEN), "page_token", GARBAGE_TOKEN),
    Bad(M + "ListAudit", "page-token-of-another-list", "moderator", lambda w: pb.ListAuditRequest(page_token=_token_of(["abc"])), "page_token"),
    Bad(M + "ListAudit", "page-token-a-boolean", "moderator", lambda w: pb.ListAuditRequest(page_token=_token_of([True])), "page_token"),
    # The blocklist
    Bad(M + "AddToBlocklist", "no-digest", "moderator", lambda w: pb.AddToBlocklistRequest(reason="hash list import"), "sha256"),
    Bad(M + "AddToBlocklist", "not-hex", "moderator", lambda w: pb.AddToBlocklistRequest(sha256=[w.unlisted, "z" * 64], reason="hash list import"), "sha256[1]"),
    Bad(M + "AddToBlocklist", "too-short", "moderator", lambda w: pb.AddToBlocklistRequest(sha256=[w.unlisted[:63]], reason="hash list import"), "sha256[0]"),
    Bad(M + "AddToBlocklist", "an-md5", "moderator", lambda w: pb.AddToBlocklistRequest(sha256=[w.unlisted, w.listed, "d41d8cd98f00b204e9800998ecf8427e"], reason="import"), "sha256[2]"),
    Bad(M + "AddToBlocklist", "too-many", "moderator", lambda w: pb.AddToBlocklistRequest(sha256=[w.unlisted] * 10_001, reason="hash list import"), "sha256"),
    Bad(M + "AddToBlocklist", "reason-missing", "moderator", lambda w: pb.AddToBlocklistRequest(sha256=[w.unlisted]), "reason"),
    Bad(M + "RemoveFromBlocklist", "not-hex", "moderator", lambda w: pb.RemoveFromBlocklistRequest(sha256="g" * 64, reason="false positive"), "sha256"),
    Bad(M + "RemoveFromBlocklist", "missing", "moderator", lambda w: pb.RemoveFromBlocklistRequest(reason="false positive"), "sha256"),
    Bad(M + "RemoveFromBlocklist", "reason-missing", "moderator", lambda w: pb.RemoveFromBlocklistRequest(sha256=w.listed), "reason"),
    Bad(M + "ListBlocklist", "page-size-negative", "moderator", lambda w: pb.ListBlocklistRequest(page_size=-1), "page_size"),
    Bad(M + "ListBlocklist", "page-size-too-big", "moderator", lambda w: pb.ListBlocklistRequest(page_size=1001), "page_size"),
    Bad(M + "ListBlocklist", "page-token-garbage", "moderator", lambda w: pb.ListBlocklistRequest(page_token=GARBAGE_TOKEN), "page_token", GARBAGE_TOKEN),
    Bad(M + "ListBlocklist", "page-token-of-another-list", "moderator", lambda w: pb.ListBlocklistRequest(page_token=_token_of([1, 2])), "page_token"),
]


def test_every_method_that_takes_input_has_bad_inputs_tried():
    assert sorted({bad.method for bad in BAD_INPUT}) == sorted(TAKES_INPUT)
    assert len({(bad.method, bad.name) for bad in BAD_INPUT}) == len(BAD_INPUT)
    # Every element of a copyright notice the proto declares is tried missing.
    declared = {f.name for f in pb.CopyrightClaim.DESCRIPTOR.fields}
    assert declared == set(COPYRIGHT_ELEMENTS) | set(COPYRIGHT_STATEMENTS)


@pytest.mark.parametrize("bad", BAD_INPUT, ids=[f"{b.method.split('/')[1]}-{b.name}" for b in BAD_INPUT])
async def test_bad_input_is_refused_naming_the_field(gateway, world, bad):
    err = await expect_error(
        invoke(gateway, METHODS[bad.method], bad.build(world), await metadata_of(world, bad.who)), grpc.StatusCode.INVALID_ARGUMENT, field=bad.field
    )
    assert err.message.startswith(f"{bad.field}: "), err
    if bad.echo:
        assert bad.echo not in err.message, err


# Page tokens that decode to a list of the right length and types but the wrong content: a
# client (or an attacker) makes them as easily as garbage. Each is refused as a page_token.
CRAFTED_TOKENS = [
    pytest.param(
        "ListQueue", lambda: pb.ListQueueRequest(page_token=_token_of(["yesterday", str(uuid.uuid4())])),
        id="ListQueue-not-a-time",
    ),
    pytest.param(
        "ListQueue", lambda: pb.ListQueueRequest(page_token=_token_of(["2025-01-01T00:00:00+00:00", "case-7"])),
        id="ListQueue-not-a-case-id",
    ),
    pytest.param(
        "ListAudit", lambda: pb.ListAuditRequest(page_token=_token_of([NEWEST_FIRST, 2**70])),
        id="ListAudit-beyond-64-bits",
    ),
    pytest.param(
        "ListAudit", lambda: pb.ListAuditRequest(page_token=_token_of([2**62])),
        id="ListAudit-without-its-order",
    ),
]


@pytest.mark.parametrize("method,build", CRAFTED_TOKENS)
async def test_a_crafted_page_token_is_invalid_argument_not_an_internal_error(gateway, world, method, build):
    await expect_error(
        invoke(gateway, METHODS[M + method], build(), await world.moderator.metadata()), grpc.StatusCode.INVALID_ARGUMENT, field="page_token"
    )


@pytest.mark.parametrize(
    "method,request_",
    [
        ("ListQueue", pb.ListQueueRequest(page_token=encode_token(["2000-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000"]))),
        ("ListAudit", pb.ListAuditRequest(page_size=1000, page_token=encode_token([NEWEST_FIRST, 2**62]))),
        ("ListBlocklist", pb.ListBlocklistRequest(page_token=encode_token(["0"]))),
    ],
    ids=["ListQueue", "ListAudit", "ListBlocklist"],
)
async def test_a_well_formed_page_token_of_ones_own_making_is_just_a_position(gateway, world, method, request_):
    """The control for the crafted tokens: well-formed values are a place in the list, from
    which the page goes on (the world's entries are after it)."""
    answer = await invoke(gateway, METHODS[M + method], request_, await world.moderator.metadata())
    if method == "ListQueue":
        assert world.case_b in [c.case_id for c in answer.cases] or answer.next_page_token
    elif method == "ListAudit":
        assert world.owner.account_id in {e.account_id for e in answer.entries}
    else:
        assert answer.entries and all(e.sha256 > "0" for e in answer.entries)


def first_bad_request(method: str, world: World) -> Any:
    return next(bad.build(world) for bad in BAD_INPUT if bad.method == method)


@pytest.mark.parametrize("who", ["stranger", "owner", "complainant"])
@pytest.mark.parametrize("method", MODERATOR_ONLY)
async def test_a_bad_request_of_a_user_who_is_not_a_moderator_is_refused_as_any_other(gateway, world, method, who):
    """Nothing is learnt from validation without the role."""
    err = await expect_error(
        invoke(gateway, METHODS[method], first_bad_request(method, world), await getattr(world, who).metadata()),
        grpc.StatusCode.PERMISSION_DENIED, reason="NOT_A_MODERATOR",
    )
    assert err.field == ""


def anonymous_complaint(world: World, *, contact_address: str) -> pb.FileComplaintRequest:
    return pb.FileComplaintRequest(
        target=pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account=world.stranger.account_id), category=pb.CATEGORY_HARMFUL,
        description="threatening messages in this account's shared folder names", contact_address=contact_address,
    )


async def test_an_anonymous_complaint_needs_a_registered_app_and_a_contact_address(gateway, world):
    request = anonymous_complaint(world, contact_address="")
    await expect_error(
        invoke(gateway, METHODS[FILE_COMPLAINT], request, with_client_id()),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="contact_address",
    )
    await expect_error(
        invoke(gateway, METHODS[FILE_COMPLAINT], anonymous_complaint(world, contact_address=unique_email()), with_client_id(client_id="not-a-registered-app")),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )
    # Signed in, no contact address is needed, and the complaint is the user's.
    filed = await invoke(gateway, METHODS[FILE_COMPLAINT], request, with_client_id(await world.complainant.token()))
    case = await world.moderator.client.moderation.case(filed.case_id)
    (complaint,) = [c for c in case.complaints if c.complaint_id == filed.complaint_id]
    assert (complaint.reporter_account_id, complaint.contact_address) == (world.complainant.account_id, "")
