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

The calls aim at the module's `world` (the owner's two copyright takedowns, one
counter-noticed; an open spam case about the owner; a legal hold with an evidence export; a
blocklisted digest); the last test looks that none of them changed anything."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import (
    PASSWORD,
    People,
    Person,
    assert_gated,
    expect_error,
    forge_token,
    gate_cases,
    invoke,
    method_id,
    new_member,
    public_services,
    token_claims,
    token_expiry,
    unique_email,
    with_client_id,
)
from cumulo_moderation.api.public import ANONYMOUS_METHODS
from cumulo_sdk import Cumulo

# "Service/Method" -> its descriptor: every method of the public API, from the proto.
METHODS = {method_id(m): m for service in public_services(pb) for m in service.methods}
FILE_COMPLAINT, LEGAL = "ComplaintService/FileComplaint", "ComplaintService/ReportLegalAction"
ANONYMOUS = [FILE_COMPLAINT, LEGAL]
MODERATOR_ONLY = [m for m in METHODS if m.startswith("ModerationService/")]


def test_the_anonymous_methods_are_the_services_own_list():
    assert sorted(ANONYMOUS_METHODS) == sorted(f"/{METHODS[m].containing_service.full_name}/{METHODS[m].name}" for m in ANONYMOUS)
    assert len(MODERATOR_ONLY) == 11


# --- people -------------------------------------------------------------------------------------


async def set_roles(auth_target: str, person: Person, roles: list[str]) -> None:
    async with grpc.aio.insecure_channel(auth_target) as channel:
        await auth_pb2_grpc.AuthInternalServiceStub(channel).SetAccountRoles(
            auth_pb2.SetAccountRolesRequest(account_id=person.account_id, roles=roles, reason="trust and safety team", actor="test"), timeout=10
        )


async def new_moderator(people: People, auth_target: str, device_name: str = "moderation desk") -> Person:
    person = await people.new(device_name)
    await set_roles(auth_target, person, ["moderator"])
    await person.client.login(person.email, PASSWORD, device_name=device_name)  # a token with the role
    return person


def copyright_claim(**changes: Any) -> pb.CopyrightClaim:
    fields: dict[str, Any] = dict(
        rights_holder="Lumen Pictures Ltd", rights_holder_contact="legal@lumen.example, +44 20 7946 0000",
        work="the photograph 'Harbour at Dawn' (2024)", location="the file named in the complaint",
        good_faith_statement=True, accuracy_statement=True, signature="Jane Roe",
    )
    fields.update(changes)
    return pb.CopyrightClaim(**fields)


def sha256_hex() -> str:
    return secrets.token_hex(32)


# --- the world the calls aim at ---------------------------------------------------------


@dataclasses.dataclass
class Snapshot:
    """What the moderator and the owner see of the world."""

    cases: dict[str, pb.GetCaseResponse]
    queued: list[pb.CaseSummary]
    audit: list[pb.AuditEntry]
    blocklist: list[pb.BlocklistEntry]
    verified: tuple[bool, list[str], int]
    mine: list[pb.CaseSummary]


@dataclasses.dataclass
class World:
    """The owner (two files, both taken down on the complainant's copyright notices: A, via
    the share link of the first, counter-noticed and waiting; C, about the second, not
    disputed yet); B, an open anonymous spam complaint about the owner's account; the owner's
    account under a legal hold with an evidence export; a digest on the blocklist. The
    moderator did all that; the stranger is an unrelated member."""

    owner: Person
    moderator: Person
    complainant: Person
    stranger: Person
    link_token: str
    case_a: str
    complaint_a: str
    receipt_a: str
    case_b: str
    case_c: str
    complaint_c: str
    receipt_c: str
    export_id: str
    listed: str  # on the blocklist
    unlisted: str  # never to be on it
    contact: str
    snapshot: Snapshot


async def snapshot_of(world_moderator: Person, owner: Person, case_ids: list[str], export_id: str, digests: set[str]) -> Snapshot:
    moderation = world_moderator.client.moderation
    verified = await moderation.verify(export_id)
    return Snapshot(
        cases={case_id: await moderation.case(case_id) for case_id in case_ids},
        queued=[c async for c in moderation.queue() if c.case_id in case_ids],
        audit=await moderation.audit(account_id=owner.account_id, limit=1000),
        blocklist=[e async for e in moderation.blocklist() if e.sha256 in digests],
        verified=(verified.intact, list(verified.problems), verified.parts_checked),
        mine=await owner.client.complaints.my_cases(),
    )


async def snapshot_of_world(world: World) -> Snapshot:
    return await snapshot_of(
        world.moderator, world.owner, [world.case_a, world.case_b, world.case_c], world.export_id, {world.listed, world.unlisted}
    )


@pytest.fixture(scope="module")
async def world(gateway, moderation, auth, tmp_path_factory) -> AsyncIterator[World]:  # type: ignore[no-untyped-def]
    people = People(gateway)
    folder = tmp_path_factory.mktemp("moderation-security")
    (folder / "owner").mkdir()
    member = await new_member(gateway, folder / "owner")
    people.clients.append(member.client)
    owner = Person(member.client, member.email, member.account_id)
    link = await owner.client.files.share(member.file_id)
    second = folder / "owner" / "second.jpg"
    second.write_bytes(secrets.token_bytes(20_000))
    node = await owner.client.files.upload(second)
    moderator = await new_moderator(people, auth.target)
    complainant = await people.new("rights holder's laptop")
    stranger = await people.new("stranger")
    anonymous = Cumulo(gateway)
    people.clients.append(anonymous)

    complaints = complainant.client.complaints
    filed_a = await complaints.report(
        "link", f"https://cumulo.example/s/{link.token}", category="copyright", description="our photograph, shared without licence",
        copyright=copyright_claim(location=f"https://cumulo.example/s/{link.token}"),
    )
    filed_c = await complaints.report(
        "file", node.node_id, category="copyright", description="another of our photographs", copyright=copyright_claim(work="'Quay at Dusk'"),
    )
    filed_b = await anonymous.complaints.report(
        "account", owner.account_id, category="spam", description="this account sends me spam links every hour",
        contact_address=unique_email(), signed_in=False,
    )
    assert len({filed_a.case_id, filed_b.case_id, filed_c.case_id}) == 3

    desk = moderator.client.moderation
    assert (await desk.decide(filed_a.case_id, "block", "the complainant's photograph, unlicensed")).decision == pb.DECISION_BLOCK
    assert (await desk.decide(filed_c.case_id, "block", "the complainant's photograph, unlicensed")).decision == pb.DECISION_BLOCK
    waiting = await owner.client.complaints.counter_notice(
        filed_a.case_id, statement="I took this photograph myself", name="Ann Owner", contact="ann@example.com"
    )
    assert waiting.counter_notice == pb.COUNTER_NOTICE_STATE_WAITING
    await desk.hold(owner.account_id, held=True, reason="law enforcement preservation request 2025-118")
    evidence = await desk.export(owner.account_id, "law enforcement preservation request 2025-118")
    listed, unlisted = sha256_hex(), sha256_hex()
    assert await desk.block_hashes([listed], "known abuse material (hash list import)") == (1, 0)

    snapshot = await snapshot_of(
        moderator, owner, [filed_a.case_id, filed_b.case_id, filed_c.case_id], evidence.export_id, {listed, unlisted}
    )
    assert [c.case_id for c in snapshot.queued] == [filed_b.case_id]
    assert {c.case_id for c in snapshot.mine} == {filed_a.case_id, filed_c.case_id}
    assert snapshot.verified[0] and not snapshot.verified[1]
    assert [e.sha256 for e in snapshot.blocklist] == [listed]
    assert snapshot.cases[filed_b.case_id].case.state == pb.CASE_STATE_OPEN
    try:
        yield World(
            owner, moderator, complainant, stranger, link.token,
            filed_a.case_id, filed_a.complaint_id, filed_a.receipt, filed_b.case_id, filed_c.case_id, filed_c.complaint_id, filed_c.receipt,
            evidence.export_id, listed, unlisted, unique_email(), snapshot,
        )
    finally:
        await people.close()


@pytest.fixture
def moderation_clock(moderation):  # type: ignore[no-untyped-def]
    """The moderation service's clock (which judges token expiry); put back afterwards."""
    before = moderation.clock.offset
    yield moderation.clock
    moderation.clock.offset = before


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


async def test_the_world_is_untouched_by_everything_aimed_at_it(world):
    """Runs last: the cases, the queue, the owner's audit trail and cases, the blocklist and
    the evidence are as the setup left them. Then the controls: the very requests refused
    above, made by the people entitled to, go through."""
    assert await snapshot_of_world(world) == world.snapshot
    desk = world.moderator.client.moderation
    # The owner disputes C; the complainant reports legal action on A (with A's receipt).
    disputed = await world.owner.client.complaints.counter_notice(world.case_c, statement="my own photograph", name="Ann Owner", contact="ann@example.com")
    assert (disputed.case_id, disputed.counter_notice) == (world.case_c, pb.COUNTER_NOTICE_STATE_WAITING)
    await world.complainant.client.complaints.legal_action(world.complaint_a, world.receipt_a, "we filed suit in the district court")
    assert (await desk.case(world.case_a)).case.counter_notice == pb.COUNTER_NOTICE_STATE_LEGAL_ACTION
    claimed = await desk.claim(world.case_b)
    assert (claimed.state, claimed.claimed_by) == (pb.CASE_STATE_CLAIMED, world.moderator.account_id)
    assert await desk.block_hashes([world.unlisted], "a second hash list import") == (1, 0)
    assert {e.sha256 async for e in desk.blocklist() if e.sha256 in (world.listed, world.unlisted)} == {world.listed, world.unlisted}
