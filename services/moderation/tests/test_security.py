"""Who may call the moderation service's public API through the gateway, and what they reach.

Every method of ComplaintService (complainants and the owners concerned) and ModerationService
(moderators) is behind the platform's door: a registered client id, and a genuine, unexpired
access token for every one but FileComplaint and ReportLegalAction. Those two are anonymous by
design (a registered client app and a contact address file a complaint; its receipt, not an
account, proves who reports legal action), but a token sent with them is verified: an expired
or forged one is refused, never taken as "no token". Every ModerationService method refuses a
signed-in user without the moderator role (PERMISSION_DENIED NOT_A_MODERATOR). The owner's
side only ever reaches the caller's own cases, and a complaint only through its receipt. Bad
input: test_security_input.py; receipts and tokens in answers and logs: test_security_secrets.py.

The calls aim at the `world` of the package's conftest (the owner's two copyright takedowns,
one counter-noticed; an open spam case about the owner; a legal hold with an evidence export;
a blocklisted digest); the last test looks that none of them changed anything."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import grpc
import pytest

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import (
    Person,
    assert_gated,
    expect_error,
    forge_token,
    gate_cases,
    invoke,
    public_methods,
    public_services,
    token_claims,
    token_expiry,
    unique_email,
    with_client_id,
)
from cumulo_devstack.testing.accounts import new_moderator, set_roles
from cumulo_moderation.api.public import ANONYMOUS_METHODS

from .helpers import World

# "Service/Method" -> its descriptor: every method of the public API, from the proto.
METHODS = public_methods(pb)
FILE_COMPLAINT, LEGAL = "ComplaintService/FileComplaint", "ComplaintService/ReportLegalAction"
ANONYMOUS = [FILE_COMPLAINT, LEGAL]
MODERATOR_ONLY = [m for m in METHODS if m.startswith("ModerationService/")]


def test_the_anonymous_methods_are_the_services_own_list():
    assert sorted(ANONYMOUS_METHODS) == sorted(f"/{METHODS[m].containing_service.full_name}/{METHODS[m].name}" for m in ANONYMOUS)
    assert len(MODERATOR_ONLY) == 11


def request_for(method: str, world: World) -> Any:
    """Each method aimed at the world: had a refused call gone through, a case, the hold, the
    evidence or the blocklist would have changed (or, for the reads, been answered)."""
    requests = {
        "ComplaintService/FileComplaint": pb.FileComplaintRequest(
            target=pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account=world.owner.account_id), category=pb.CATEGORY_SPAM,
            description="more spam from this account", contact_address=world.contact,
        ),
        # C's own receipt: let through, it answers NO_COUNTER_NOTICE (C is not disputed) and
        # changes nothing. (With A's, a call let through would end A's waiting period.)
        "ComplaintService/ReportLegalAction": pb.ReportLegalActionRequest(
            complaint_id=world.complaint_c, receipt=world.receipt_c, description="we filed suit in the district court"
        ),
        "ComplaintService/ListMyCases": pb.ListMyCasesRequest(),
        "ComplaintService/FileCounterNotice": pb.FileCounterNoticeRequest(
            case_id=world.case_c, statement="my own photograph", name="Ann Owner", contact="ann@example.com",
            consent_to_jurisdiction=True, good_faith_statement=True,
        ),
        "ModerationService/ListQueue": pb.ListQueueRequest(),
        "ModerationService/GetCase": pb.GetCaseRequest(case_id=world.case_b),
        "ModerationService/ClaimCase": pb.ClaimCaseRequest(case_id=world.case_b, take_over=True),
        "ModerationService/DecideCase": pb.DecideCaseRequest(
            case_id=world.case_b, decision=pb.DECISION_SUSPEND, reason="spam", suspend_seconds=86400
        ),
        "ModerationService/SetLegalHold": pb.SetLegalHoldRequest(account_id=world.owner.account_id, held=False, reason="released"),
        "ModerationService/ExportEvidence": pb.ExportEvidenceRequest(account_id=world.owner.account_id, reason="curiosity"),
        "ModerationService/VerifyEvidence": pb.VerifyEvidenceRequest(export_id=world.export_id),
        "ModerationService/ListAudit": pb.ListAuditRequest(account_id=world.owner.account_id),
        "ModerationService/AddToBlocklist": pb.AddToBlocklistRequest(sha256=[world.unlisted], reason="a rival's file"),
        "ModerationService/RemoveFromBlocklist": pb.RemoveFromBlocklistRequest(sha256=world.listed, reason="let it through"),
        "ModerationService/ListBlocklist": pb.ListBlocklistRequest(),
    }
    return requests[method]


# --- the door -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, case", gate_cases(public_services(pb), ANONYMOUS_METHODS))
async def test_every_method_is_gated(moderation, signing_key, method, case):
    """Every kind of bad token is tried on the platform's interceptor (libs/cumulo_platform/tests)."""
    await assert_gated(moderation.target, method, case, signing_key)


# --- the anonymous methods: no token is let in, a bad token is not ----------------------------


def anonymous_complaint(world: World, *, contact_address: str | None = None) -> pb.FileComplaintRequest:
    """A complaint about the stranger's account (not the owner's: the world stays as it is)."""
    return pb.FileComplaintRequest(
        target=pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account=world.stranger.account_id), category=pb.CATEGORY_HARMFUL,
        description="threatening messages in this account's shared folder names",
        contact_address=unique_email() if contact_address is None else contact_address,
    )


async def test_a_complaint_without_a_token_is_filed_anonymously(gateway, world):
    request = anonymous_complaint(world)
    filed = await invoke(gateway, METHODS[FILE_COMPLAINT], request, with_client_id())
    assert uuid.UUID(filed.complaint_id) and uuid.UUID(filed.case_id) and len(filed.receipt) >= 24
    case = await world.moderator.client.moderation.case(filed.case_id)
    (complaint,) = [c for c in case.complaints if c.complaint_id == filed.complaint_id]
    assert (complaint.reporter_account_id, complaint.contact_address) == ("", request.contact_address)
    assert case.case.account_id == world.stranger.account_id
    assert "anonymous" in [e.actor for e in case.audit if e.action == "complaint.filed"]

@pytest.mark.parametrize("token", ["expired", "signature-stripped", "tampered-claims", "alg-none"])
@pytest.mark.parametrize("method", ANONYMOUS)
async def test_an_anonymous_method_with_a_bad_token_is_refused_not_taken_as_anonymous(gateway, world, signing_key, moderation_clock, method, token):
    """Either request would be accepted without a token (the complaint has a contact address,
    the legal action a receipt); with an expired or forged one it is refused, and nothing is
    filed. (The whole matrix of forgeries: libs/cumulo_platform/tests/test_call_door.py.)"""
    before = await world.moderator.client.moderation.case(world.case_b)
    holder, offset = world.complainant, moderation_clock.offset
    if token == "expired":
        bearer = await holder.token()
        moderation_clock.advance(dt.timedelta(seconds=token_expiry(bearer) - time.time() + 60))
    else:
        bearer = forge_token(token, genuine=await holder.token(), signing_key=signing_key)
    err = await expect_error(
        invoke(gateway, METHODS[method], request_for(method, world), with_client_id(bearer)),
        grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_EXPIRED" if token == "expired" else "TOKEN_INVALID",
    )
    assert bearer not in err.message
    moderation_clock.offset = offset  # (the moderator's own token is judged by the same clock)
    after = await world.moderator.client.moderation.case(world.case_b)
    assert after == before and after.case.complaints == 1


# --- signed in, but not a moderator ----------------------------------------------------------


@pytest.mark.parametrize("who", ["stranger", "owner", "complainant"])
@pytest.mark.parametrize("method", MODERATOR_ONLY)
async def test_a_user_who_is_not_a_moderator_is_refused(gateway, world, method, who):
    """Every ModerationService method, to the stranger, the owner concerned and the
    complainant alike (with bad input: test_security_input.py)."""
    person: Person = getattr(world, who)
    err = await expect_error(
        invoke(gateway, METHODS[method], request_for(method, world), await person.metadata()), grpc.StatusCode.PERMISSION_DENIED, reason="NOT_A_MODERATOR"
    )
    assert err.field == ""


async def test_a_moderator_whose_role_is_withdrawn_is_refused_after_the_next_refresh(gateway, world, people, auth):
    former = await new_moderator(people, auth.target, "former moderator")
    assert [c.case_id async for c in former.client.moderation.queue() if c.case_id == world.case_b] == [world.case_b]
    await set_roles(auth.target, former, [])
    token = await former.client.access_token(force_refresh=True)
    assert "moderator" not in token_claims(token).get("roles", [])
    for method in MODERATOR_ONLY:
        await expect_error(
            invoke(gateway, METHODS[method], request_for(method, world), with_client_id(token)), grpc.StatusCode.PERMISSION_DENIED, reason="NOT_A_MODERATOR"
        )


# --- another member's genuine token --------------------------------------------------------------


async def test_list_my_cases_shows_only_the_callers_own(world, people):
    owner_cases = await world.owner.client.complaints.my_cases()
    assert {c.case_id for c in owner_cases} == {world.case_a, world.case_c}
    assert {c.account_id for c in owner_cases} == {world.owner.account_id}
    newcomer = await people.new("newcomer")
    for person in (world.stranger, world.complainant, world.moderator, newcomer):
        mine = await person.client.complaints.my_cases()
        assert {c.account_id for c in mine} <= {person.account_id}, mine
        assert not {c.case_id for c in mine} & {world.case_a, world.case_b, world.case_c}
    # The complainant filed A and C, but they are the owner's cases, not the complainant's.
    assert await world.complainant.client.complaints.my_cases() == []


@pytest.mark.parametrize("who", ["stranger", "complainant", "moderator"])
async def test_a_counter_notice_on_another_owners_case_is_not_found(gateway, world, who):
    """C (disputable) and A (already disputed) answer as a case that never was: nothing
    tells the caller that the case exists or what state it is in."""
    person: Person = getattr(world, who)
    metadata = await person.metadata()
    answers = []
    for case_id in (world.case_c, world.case_a, world.case_b, str(uuid.uuid4())):
        request = request_for("ComplaintService/FileCounterNotice", world)
        request.case_id = case_id
        err = await expect_error(
            invoke(gateway, METHODS["ComplaintService/FileCounterNotice"], request, metadata), grpc.StatusCode.NOT_FOUND, reason="CASE_NOT_FOUND"
        )
        assert case_id not in err.message
        answers.append((err.code, err.reason, err.message, err.metadata))
    assert len(set(map(str, answers))) == 1, answers


# --- the world ---------------------------------------------------------------------------------


async def test_the_world_is_untouched_by_everything_aimed_at_it(world, fresh_world):
    """Runs last: the cases, the queue, the owner's audit trail and cases, the blocklist and
    the evidence are as the setup left them. Then the controls: the very requests refused
    above, made by the people entitled to, go through (in a world of the same making, of
    this test's own: the shared one stays as it is for the tests that run after)."""
    assert await world.snapshot_now() == world.snapshot
    own = fresh_world
    desk = own.moderator.client.moderation
    # The owner disputes C; the complainant reports legal action on A (with A's receipt).
    disputed = await own.owner.client.complaints.counter_notice(own.case_c, statement="my own photograph", name="Ann Owner", contact="ann@example.com")
    assert (disputed.case_id, disputed.counter_notice) == (own.case_c, pb.COUNTER_NOTICE_STATE_WAITING)
    await own.complainant.client.complaints.legal_action(own.complaint_a, own.receipt_a, "we filed suit in the district court")
    assert (await desk.case(own.case_a)).case.counter_notice == pb.COUNTER_NOTICE_STATE_LEGAL_ACTION
    claimed = await desk.claim(own.case_b)
    assert (claimed.state, claimed.claimed_by) == (pb.CASE_STATE_CLAIMED, own.moderator.account_id)
    assert await desk.block_hashes([own.unlisted], "a second hash list import") == (1, 0)
    assert {e.sha256 async for e in desk.blocklist() if e.sha256 in (own.listed, own.unlisted)} == {own.listed, own.unlisted}
