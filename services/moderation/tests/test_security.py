"""Who may call the moderation service's public API through the gateway, and what they reach.

Every method of ComplaintService (complainants and the owners concerned) and ModerationService
(moderators) wants a registered client id; every one but FileComplaint and ReportLegalAction
also a genuine, unexpired access token. Those two are anonymous by design (a registered client
app and a contact address file a complaint; its receipt, not an account, proves who reports
legal action), but a token sent with them is verified: an expired or forged one is refused,
never taken as "no token". Every ModerationService method refuses a signed-in user
without the moderator role (PERMISSION_DENIED NOT_A_MODERATOR), before it looks at the input.
The owner's side only ever reaches the caller's own cases, and a complaint only through its
receipt. Bad input is refused naming the field, never repeating the value; receipts and tokens
never appear in an answer or a log line.

The refused calls aim at the module's `world` (the owner's two copyright takedowns, one
counter-noticed; an open spam case about the owner; a legal hold with an evidence export; a
blocklisted digest); the last test looks that none of them changed anything."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import jwt
import pytest
from google.rpc import error_details_pb2, status_pb2

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo.moderation.v1 import moderation_pb2_grpc
from cumulo_devstack.testing import FORGERIES, PASSWORD, b64json, expect_error, forge_token, new_member, unique_email
from cumulo_moderation.api.public import ANONYMOUS_METHODS
from cumulo_platform.errors import STATUS_DETAILS_KEY
from cumulo_platform.paging import encode_token
from cumulo_sdk import Cumulo, CumuloRpcError

PACKAGE = "cumulo.moderation.v1"
SERVICES = {name: pb.DESCRIPTOR.services_by_name[name] for name in ("ComplaintService", "ModerationService")}
STUBS = {"ComplaintService": moderation_pb2_grpc.ComplaintServiceStub, "ModerationService": moderation_pb2_grpc.ModerationServiceStub}
# "Service/Method" -> (client streaming, server streaming), from the descriptor.
SHAPES = {
    f"{service}/{method.name}": (method.client_streaming, method.server_streaming)
    for service, descriptor in SERVICES.items()
    for method in descriptor.methods
}
METHODS = list(SHAPES)
UNARY = (False, False)
# What this file tries, and in which call shape: a method added later must be added here.
TRIED = {
    "ComplaintService/FileComplaint": UNARY,
    "ComplaintService/ReportLegalAction": UNARY,
    "ComplaintService/ListMyCases": UNARY,
    "ComplaintService/FileCounterNotice": UNARY,
    "ModerationService/ListQueue": UNARY,
    "ModerationService/GetCase": UNARY,
    "ModerationService/ClaimCase": UNARY,
    "ModerationService/DecideCase": UNARY,
    "ModerationService/SetLegalHold": UNARY,
    "ModerationService/ExportEvidence": UNARY,
    "ModerationService/VerifyEvidence": UNARY,
    "ModerationService/ListAudit": UNARY,
    "ModerationService/AddToBlocklist": UNARY,
    "ModerationService/RemoveFromBlocklist": UNARY,
    "ModerationService/ListBlocklist": UNARY,
}
FILE_COMPLAINT, LEGAL, COUNTER = "ComplaintService/FileComplaint", "ComplaintService/ReportLegalAction", "ComplaintService/FileCounterNotice"
M = "ModerationService/"
ANONYMOUS = ["ComplaintService/FileComplaint", "ComplaintService/ReportLegalAction"]
AUTHENTICATED = [m for m in METHODS if m not in ANONYMOUS]
MODERATOR_ONLY = [f"ModerationService/{m.name}" for m in SERVICES["ModerationService"].methods]
# Methods whose request has any field: each must have bad inputs in BAD_INPUT below.
TAKES_INPUT = [m for m in METHODS if SERVICES[m.split("/")[0]].methods_by_name[m.split("/")[1]].input_type.fields]


def test_every_method_of_both_services_is_tried_in_its_call_shape():
    """A method (or service) added later must be added to TRIED, and so be tried below."""
    assert set(pb.DESCRIPTOR.services_by_name) == set(SERVICES)
    assert SHAPES == TRIED
    # The service's own list of methods that need no token is the one this file expects.
    assert sorted(ANONYMOUS_METHODS) == sorted(f"/{PACKAGE}.{m}" for m in ANONYMOUS)
    assert len(MODERATOR_ONLY) == len(SERVICES["ModerationService"].methods) == 11
    assert TAKES_INPUT == [m for m in METHODS if m != "ComplaintService/ListMyCases"]


# --- people -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Person:
    client: Cumulo
    email: str
    account_id: str

    async def token(self) -> str:
        return await self.client.access_token()

    async def metadata(self) -> list[tuple[str, str]]:
        return self.client.metadata(await self.token())


class People:
    """Accounts registered and logged in through the gateway."""

    def __init__(self, gateway: str, auth_target: str) -> None:
        self.gateway = gateway
        self.auth_target = auth_target
        self.clients: list[Cumulo] = []

    async def login(self, email: str, device_name: str) -> Person:
        client = Cumulo(self.gateway)
        self.clients.append(client)
        account = await client.login(email, PASSWORD, device_name=device_name)
        return Person(client, email, account.account_id)

    async def new(self, device_name: str = "security test") -> Person:
        address = unique_email()
        async with Cumulo(self.gateway) as client:
            await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
        return await self.login(address, device_name)

    async def set_roles(self, person: Person, roles: list[str]) -> None:
        async with grpc.aio.insecure_channel(self.auth_target) as channel:
            await auth_pb2_grpc.AuthInternalServiceStub(channel).SetAccountRoles(
                auth_pb2.SetAccountRolesRequest(account_id=person.account_id, roles=roles, reason="trust and safety team", actor="test"),
                timeout=10,
            )

    async def moderator(self, device_name: str = "moderation desk") -> Person:
        person = await self.new(device_name)
        await self.set_roles(person, ["moderator"])
        await person.client.login(person.email, PASSWORD, device_name=device_name)  # a token with the role
        return person

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def people(gateway, moderation, auth) -> AsyncIterator[People]:  # type: ignore[no-untyped-def]
    people = People(gateway, auth.target)
    yield people
    await people.close()


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


# --- the world the refused calls aim at ---------------------------------------------------------


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
    people = People(gateway, auth.target)
    folder = tmp_path_factory.mktemp("moderation-security")
    (folder / "owner").mkdir()
    member = await new_member(gateway, folder / "owner")
    people.clients.append(member.client)
    owner = Person(member.client, member.email, member.account_id)
    link = await owner.client.files.share(member.file_id)
    second = folder / "owner" / "second.jpg"
    second.write_bytes(secrets.token_bytes(20_000))
    node = await owner.client.files.upload(second)
    moderator = await people.moderator()
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


@pytest.fixture(scope="module")
async def signing_key(auth) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(auth.target) as channel:
        response = await auth_pb2_grpc.AuthInternalServiceStub(channel).GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=10)
    assert response.keys
    return response.keys[0].key_id, response.keys[0].public_key


@pytest.fixture
def moderation_clock(moderation):  # type: ignore[no-untyped-def]
    """The moderation service's clock (which judges token expiry); put back afterwards."""
    before = moderation.clock.offset
    yield moderation.clock
    moderation.clock.offset = before


# --- calls -------------------------------------------------------------------------------------


def with_client_id(token: str | None = None, client_id: str = "cumulo-cli") -> list[tuple[str, str]]:
    metadata = [("x-cumulo-client-id", client_id)]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    return metadata


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


def holder_of(method: str, world: World) -> Person:
    """Whose genuine token a call of `method` would be made with (what the forgeries copy)."""
    if method.startswith("ModerationService/"):
        return world.moderator
    if method in ("ComplaintService/ListMyCases", "ComplaintService/FileCounterNotice"):
        return world.owner
    return world.complainant


async def invoke(target: str, method: str, request: Any, metadata: list[tuple[str, str]] | None, *, timeout: float = 30) -> Any:
    """One unary call of `method` ("Service/Method") through a bare stub (no SDK: nothing is
    added to `metadata`); a failure is raised as a CumuloRpcError."""
    try:
        return await raw_invoke(target, method, request, metadata, timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


async def raw_invoke(target: str, method: str, request: Any, metadata: list[tuple[str, str]] | None, *, timeout: float = 30) -> Any:
    service, name = method.split("/")
    assert SHAPES[method] == UNARY
    async with grpc.aio.insecure_channel(target) as channel:
        return await getattr(STUBS[service](channel), name)(request, metadata=metadata, timeout=timeout)


async def raw_error(target: str, method: str, request: Any, metadata: list[tuple[str, str]] | None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw_invoke(target, method, request, metadata)
    return caught.value


def everything_said(exc: grpc.aio.AioRpcError) -> str:
    """The message, the trailing metadata and every detail of the status, as text."""
    parts = [exc.details() or ""]
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            parts.append(status.message)
            for detail in status.details:
                for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
                    unpacked = kind()
                    if detail.Unpack(unpacked):
                        parts.append(str(unpacked))
        else:
            parts.append(f"{key}={value!r}")
    return "\n".join(parts)


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def expiry_of(token: str) -> float:
    return float(claims_of(token)["exp"])


# --- client id -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [True, False], ids=["with-token", "without-token"])
@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_client_id_is_refused_at_the_gateway(gateway, world, method, token):
    metadata = [("authorization", f"Bearer {await holder_of(method, world).token()}")] if token else []
    err = await expect_error(
        invoke(gateway, method, request_for(method, world), metadata), grpc.StatusCode.PERMISSION_DENIED, reason="CLIENT_NOT_AUTHORIZED"
    )
    assert "x-cumulo-client-id" in err.message


@pytest.mark.parametrize("client_id", ["not-a-registered-app", ""], ids=["unregistered", "empty"])
@pytest.mark.parametrize("token", [True, False], ids=["with-token", "without-token"])
@pytest.mark.parametrize("method", METHODS)
async def test_a_client_id_that_names_no_registered_app_is_refused(gateway, world, method, token, client_id):
    """FileComplaint included: anonymous means no account, never no registered app."""
    bearer = await holder_of(method, world).token() if token else None
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(bearer, client_id)),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_client_id_is_refused_by_the_service_itself(moderation, world, method):
    """Behind the gateway too: the service checks the client id again."""
    await expect_error(
        invoke(moderation.target, method, request_for(method, world), [("authorization", f"Bearer {await holder_of(method, world).token()}")]),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )


# --- no token, expired token -------------------------------------------------------------------


def anonymous_complaint(world: World, *, contact_address: str | None = None) -> pb.FileComplaintRequest:
    """A complaint about the stranger's account (not the owner's: the world stays as it is)."""
    return pb.FileComplaintRequest(
        target=pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account=world.stranger.account_id), category=pb.CATEGORY_HARMFUL,
        description="threatening messages in this account's shared folder names",
        contact_address=unique_email() if contact_address is None else contact_address,
    )


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_a_token_is_unauthenticated_unless_it_is_anonymous(gateway, world, method):
    if method not in ANONYMOUS:
        await expect_error(
            invoke(gateway, method, request_for(method, world), with_client_id()), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_MISSING"
        )
        return
    if method == LEGAL:
        # Past the door: the receipt is checked (right, but C has no counter-notice; wrong).
        await expect_error(
            invoke(gateway, method, request_for(method, world), with_client_id()), grpc.StatusCode.FAILED_PRECONDITION, reason="NO_COUNTER_NOTICE"
        )
        wrong = pb.ReportLegalActionRequest(complaint_id=world.complaint_a, receipt=world.receipt_c, description="we filed suit")
        await expect_error(invoke(gateway, method, wrong, with_client_id()), grpc.StatusCode.NOT_FOUND, reason="COMPLAINT_NOT_FOUND")
        return
    request = anonymous_complaint(world)
    filed = await invoke(gateway, method, request, with_client_id())
    assert uuid.UUID(filed.complaint_id) and uuid.UUID(filed.case_id) and len(filed.receipt) >= 24
    case = await world.moderator.client.moderation.case(filed.case_id)
    (complaint,) = [c for c in case.complaints if c.complaint_id == filed.complaint_id]
    assert (complaint.reporter_account_id, complaint.contact_address) == ("", request.contact_address)
    assert case.case.account_id == world.stranger.account_id
    assert "anonymous" in [e.actor for e in case.audit if e.action == "complaint.filed"]


@pytest.mark.parametrize("method", AUTHENTICATED)
async def test_a_call_without_a_token_is_unauthenticated_by_the_service_itself(moderation, world, method):
    await expect_error(
        invoke(moderation.target, method, request_for(method, world), with_client_id()),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "bearer x", "Bearer", ""])
@pytest.mark.parametrize("method", AUTHENTICATED)
async def test_an_authorization_that_is_not_a_bearer_token_counts_as_missing(gateway, world, method, authorization):
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id() + [("authorization", authorization)]),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_with_an_expired_token_is_unauthenticated(gateway, world, moderation_clock, method):
    """The anonymous methods too: an expired token is refused, not taken for an anonymous
    call (the complaint has a contact address, with which it would be accepted anonymously;
    the legal action a receipt)."""
    token = await holder_of(method, world).token()
    # The service judges expiry by its own clock: a minute past the token's end.
    moderation_clock.advance(dt.timedelta(seconds=expiry_of(token) - time.time() + 60))
    err = await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(token)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_EXPIRED"
    )
    assert token not in err.message


@pytest.mark.parametrize("method", ["ComplaintService/ListMyCases", "ModerationService/ListQueue", "ModerationService/GetCase"])
async def test_a_token_shortly_before_its_expiry_still_works(gateway, world, moderation_clock, method):
    """The control for the expiry: the same token, half a minute before its end."""
    token = await holder_of(method, world).client.access_token(force_refresh=True)
    moderation_clock.advance(dt.timedelta(seconds=expiry_of(token) - time.time() - 30))
    answer = await invoke(gateway, method, request_for(method, world), with_client_id(token))
    if method == "ComplaintService/ListMyCases":
        assert list(answer.cases) == world.snapshot.mine
    elif method == "ModerationService/ListQueue":
        assert world.case_b in [c.case_id for c in answer.cases] or answer.next_page_token
    else:
        assert answer == world.snapshot.cases[world.case_b]


# --- forged tokens -------------------------------------------------------------------------------


async def forged(kind: str, holder: Person, world: World, signing_key: tuple[str, bytes]) -> str:
    intruder = world.stranger if holder is not world.stranger else world.complainant
    token = forge_token(
        kind,
        genuine=await holder.token(),
        signing_key=signing_key,
        intruder_token=await intruder.token(),
        refresh_token=holder.client.store.tokens.refresh_token,
    )
    assert token
    return token


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("method", METHODS)
async def test_a_call_with_a_forged_token_is_unauthenticated(gateway, world, signing_key, method, forgery):
    """A token naming the holder (for the moderators' side, a moderator: the forgeries carry
    the role) that auth never issued. The anonymous methods too: never taken for no token."""
    token = await forged(forgery, holder_of(method, world), world, signing_key)
    err = await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(token)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID"
    )
    assert token not in err.message


@pytest.mark.parametrize("method", MODERATOR_ONLY)
async def test_a_users_own_token_with_the_moderator_role_written_in_is_no_token(gateway, world, method):
    """The stranger's genuine token, the role added to its claims: no token at all. The
    control: the same token unedited is a non-moderator's."""
    token = await world.stranger.token()
    header, _, signature = token.split(".")
    edited = f"{header}.{b64json({**claims_of(token), 'roles': ['moderator']})}.{signature}"
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(edited)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID"
    )
    unsigned = f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': jwt.get_unverified_header(token)['kid']})}.{b64json({**claims_of(token), 'roles': ['moderator']})}."
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(unsigned)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID"
    )
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(token)), grpc.StatusCode.PERMISSION_DENIED, reason="NOT_A_MODERATOR"
    )


# --- FileComplaint: anonymous, but a token sent is a token --------------------------------------


async def test_an_anonymous_complaint_needs_a_registered_app_and_a_contact_address(gateway, world):
    request = anonymous_complaint(world, contact_address="")
    await expect_error(
        invoke(gateway, "ComplaintService/FileComplaint", request, with_client_id()),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="contact_address",
    )
    await expect_error(
        invoke(gateway, "ComplaintService/FileComplaint", anonymous_complaint(world), with_client_id(client_id="not-a-registered-app")),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )
    # Signed in, no contact address is needed, and the complaint is the user's.
    filed = await invoke(gateway, "ComplaintService/FileComplaint", request, with_client_id(await world.complainant.token()))
    case = await world.moderator.client.moderation.case(filed.case_id)
    (complaint,) = [c for c in case.complaints if c.complaint_id == filed.complaint_id]
    assert (complaint.reporter_account_id, complaint.contact_address) == (world.complainant.account_id, "")


@pytest.mark.parametrize("forgery", ["expired", *FORGERIES])
async def test_a_complaint_with_a_bad_token_is_refused_not_filed_anonymously(gateway, world, signing_key, moderation_clock, forgery):
    """The complaint would be accepted without a token (it has a contact address); with an
    expired or forged one it is refused, and nothing is filed."""
    before = await world.moderator.client.moderation.case(world.case_b)
    offset = moderation_clock.offset
    if forgery == "expired":
        token = await world.complainant.token()
        moderation_clock.advance(dt.timedelta(seconds=expiry_of(token) - time.time() + 60))
        reason = "TOKEN_EXPIRED"
    else:
        token = await forged(forgery, world.complainant, world, signing_key)
        reason = "TOKEN_INVALID"
    request = request_for("ComplaintService/FileComplaint", world)
    assert request.contact_address
    await expect_error(
        invoke(gateway, "ComplaintService/FileComplaint", request, with_client_id(token)), grpc.StatusCode.UNAUTHENTICATED, reason=reason
    )
    moderation_clock.offset = offset  # (the moderator's own token is judged by the same clock)
    after = await world.moderator.client.moderation.case(world.case_b)
    assert after == before and after.case.complaints == 1


# --- signed in, but not a moderator ----------------------------------------------------------


def first_bad_request(method: str, world: World) -> Any:
    return next(bad.build(world) for bad in BAD_INPUT if bad.method == method)


@pytest.mark.parametrize("input", ["aimed-at-the-world", "bad-input"])
@pytest.mark.parametrize("who", ["stranger", "owner", "complainant"])
@pytest.mark.parametrize("method", MODERATOR_ONLY)
async def test_a_user_who_is_not_a_moderator_is_refused(gateway, world, method, who, input):
    """Every ModerationService method, to the stranger, the owner concerned and the
    complainant alike; a bad request is refused the same (nothing learnt from validation)."""
    person: Person = getattr(world, who)
    request = request_for(method, world) if input == "aimed-at-the-world" else first_bad_request(method, world)
    err = await expect_error(
        invoke(gateway, method, request, await person.metadata()), grpc.StatusCode.PERMISSION_DENIED, reason="NOT_A_MODERATOR"
    )
    assert err.field == ""


async def test_a_moderator_whose_role_is_withdrawn_is_refused_after_the_next_refresh(gateway, world, people):
    former = await people.moderator("former moderator")
    assert [c.case_id async for c in former.client.moderation.queue() if c.case_id == world.case_b] == [world.case_b]
    await people.set_roles(former, [])
    token = await former.client.access_token(force_refresh=True)
    assert "moderator" not in claims_of(token).get("roles", [])
    for method in MODERATOR_ONLY:
        await expect_error(
            invoke(gateway, method, request_for(method, world), with_client_id(token)), grpc.StatusCode.PERMISSION_DENIED, reason="NOT_A_MODERATOR"
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
            invoke(gateway, "ComplaintService/FileCounterNotice", request, metadata), grpc.StatusCode.NOT_FOUND, reason="CASE_NOT_FOUND"
        )
        assert case_id not in err.message
        answers.append((err.code, err.reason, err.message, err.metadata))
    assert len(set(map(str, answers))) == 1, answers


@pytest.mark.parametrize("who", ["anonymous", "stranger", "complainant", "owner"])
async def test_legal_action_with_a_wrong_receipt_is_complaint_not_found(gateway, world, who):
    """A wrong receipt, another complaint's receipt, an empty one, and the right receipt for
    a complaint that never was: one and the same answer, with or without an account."""
    metadata = await metadata_of(world, who)
    attempts = [
        (world.complaint_a, secrets.token_urlsafe(24)),
        (world.complaint_a, world.receipt_c),
        (world.complaint_c, world.receipt_a),
        (world.complaint_a, ""),
        (world.complaint_a, world.receipt_a.upper()),
        (str(uuid.uuid4()), world.receipt_a),
    ]
    answers = set()
    for complaint_id, receipt in attempts:
        request = pb.ReportLegalActionRequest(complaint_id=complaint_id, receipt=receipt, description="we filed suit")
        err = await expect_error(
            invoke(gateway, "ComplaintService/ReportLegalAction", request, metadata), grpc.StatusCode.NOT_FOUND, reason="COMPLAINT_NOT_FOUND"
        )
        answers.add((err.code, err.reason, err.message, tuple(sorted(err.metadata.items()))))
    assert len(answers) == 1, answers


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
    request = request_for("ComplaintService/FileCounterNotice", world)
    for key, value in changes.items():
        setattr(request, key, value)
    return request


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


async def metadata_of(world: World, who: str) -> list[tuple[str, str]]:
    return with_client_id() if who == "anonymous" else await getattr(world, who).metadata()


@pytest.mark.parametrize("bad", BAD_INPUT, ids=[f"{b.method.split('/')[1]}-{b.name}" for b in BAD_INPUT])
async def test_bad_input_is_refused_naming_the_field(gateway, world, bad):
    err = await expect_error(
        invoke(gateway, bad.method, bad.build(world), await metadata_of(world, bad.who)), grpc.StatusCode.INVALID_ARGUMENT, field=bad.field
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
        "ListAudit", lambda: pb.ListAuditRequest(page_token=_token_of([2**70])),
        id="ListAudit-beyond-64-bits",
    ),
]


@pytest.mark.parametrize("method,build", CRAFTED_TOKENS)
async def test_a_crafted_page_token_is_invalid_argument_not_an_internal_error(gateway, world, method, build):
    await expect_error(
        invoke(gateway, M + method, build(), await world.moderator.metadata()), grpc.StatusCode.INVALID_ARGUMENT, field="page_token"
    )


@pytest.mark.parametrize(
    "method,request_",
    [
        ("ListQueue", pb.ListQueueRequest(page_token=encode_token(["2000-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000"]))),
        ("ListAudit", pb.ListAuditRequest(page_size=1000, page_token=encode_token([2**62]))),
        ("ListBlocklist", pb.ListBlocklistRequest(page_token=encode_token(["0"]))),
    ],
    ids=["ListQueue", "ListAudit", "ListBlocklist"],
)
async def test_a_well_formed_page_token_of_ones_own_making_is_just_a_position(gateway, world, method, request_):
    """The control for the crafted tokens: well-formed values are a place in the list, from
    which the page goes on (the world's entries are after it)."""
    answer = await invoke(gateway, M + method, request_, await world.moderator.metadata())
    if method == "ListQueue":
        assert world.case_b in [c.case_id for c in answer.cases] or answer.next_page_token
    elif method == "ListAudit":
        assert world.owner.account_id in {e.account_id for e in answer.entries}
    else:
        assert answer.entries and all(e.sha256 > "0" for e in answer.entries)


# --- secrets: receipts and tokens are never repeated --------------------------------------------


async def test_a_receipt_is_never_repeated_in_an_answer(gateway, world):
    metadata = await world.complainant.metadata()
    wrong = secrets.token_urlsafe(24)
    attempts = [
        pb.ReportLegalActionRequest(complaint_id=world.complaint_a, receipt=wrong, description="we filed suit"),
        pb.ReportLegalActionRequest(complaint_id=world.complaint_a, receipt=world.receipt_c, description="we filed suit"),
        pb.ReportLegalActionRequest(complaint_id=world.complaint_a, receipt=world.receipt_a, description=""),
        pb.ReportLegalActionRequest(complaint_id="not-a-complaint", receipt=world.receipt_a, description="we filed suit"),
        pb.ReportLegalActionRequest(complaint_id=world.complaint_c, receipt=world.receipt_c, description="suit"),  # C: no counter-notice
    ]
    codes = []
    for request in attempts:
        err = await raw_error(gateway, LEGAL, request, metadata)
        said = everything_said(err)
        codes.append(err.code())
        for receipt in (wrong, world.receipt_a, world.receipt_c):
            assert receipt not in said, said
    assert codes == [
        grpc.StatusCode.NOT_FOUND, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    ]


async def test_a_receipt_is_shown_once_and_never_again(world, moderation):
    """Not in the case the moderator reads, the audit log, the owner's cases, nor the
    evidence bundle written to the preservation bucket."""
    receipts = (world.receipt_a, world.receipt_c)
    desk = world.moderator.client.moderation
    shown = [
        str(await desk.case(world.case_a)), str(await desk.case(world.case_c)),
        str(await desk.audit(account_id=world.owner.account_id, limit=1000)),
        str(await world.owner.client.complaints.my_cases()), str(await world.complainant.client.complaints.my_cases()),
        str([c async for c in desk.queue(pb.CASE_STATE_DECIDED) if c.case_id in (world.case_a, world.case_c)]),
    ]
    assert world.complaint_a in shown[0]  # the control: the complaint is there, its receipt not
    evidence = await desk.verify(world.export_id)
    bundle = await moderation.app.storage.read_small(evidence.evidence.prefix + "cases.json", 16 * 1024 * 1024)
    assert bundle is not None and world.complaint_a.encode() in bundle
    manifest = await moderation.app.storage.read_small(evidence.evidence.manifest_key, 16 * 1024 * 1024)
    assert manifest is not None
    for receipt in receipts:
        for text in shown:
            assert receipt not in text
        assert receipt.encode() not in bundle and receipt.encode() not in manifest
    assert b"receipt" not in bundle


@pytest.mark.parametrize("kind", ["expired", "signature-stripped", "expiry-extended", "tampered-claims", "alg-none", "refresh-token"])
@pytest.mark.parametrize("method", ["ComplaintService/FileComplaint", "ComplaintService/ListMyCases", "ModerationService/GetCase"])
async def test_a_token_is_never_repeated_in_an_answer(gateway, world, signing_key, moderation_clock, method, kind):
    holder = holder_of(method, world)
    if kind == "expired":
        token = await holder.token()
        moderation_clock.advance(dt.timedelta(seconds=expiry_of(token) - time.time() + 60))
    else:
        token = await forged(kind, holder, world, signing_key)
    err = await raw_error(gateway, method, request_for(method, world), with_client_id(token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    said = everything_said(err)
    for part in {token, *(p for p in token.split(".") if len(p) >= 16)}:
        assert part not in said, said


# --- secrets never reach the logs ---------------------------------------------------------------




async def test_receipts_tokens_and_contacts_never_reach_the_logs(gateway, world, signing_key, people, tmp_path, debug_logs):
    """An anonymous complaint about a share link (its token in a URL, a contact address),
    legal action reported with a wrong and with the right receipt, the moderator reading the
    case, and calls with forged tokens. Everything is logged at debug level, but none of
    those values."""
    subject = await new_member(gateway, tmp_path / "subject")
    people.clients.append(subject.client)
    link = await subject.client.files.share(subject.file_id)
    contact = f"whistle.{secrets.token_hex(6)}@example.org"
    request = pb.FileComplaintRequest(
        target=pb.Target(kind=pb.TARGET_KIND_LINK, link=f"https://cumulo.example/s/{link.token}"), category=pb.CATEGORY_PRIVACY,
        description="my passport scan, shared without my consent", contact_address=contact,
    )
    filed = await invoke(gateway, FILE_COMPLAINT, request, with_client_id())
    wrong = secrets.token_urlsafe(24)
    metadata = await world.stranger.metadata()
    await expect_error(
        invoke(gateway, LEGAL, pb.ReportLegalActionRequest(complaint_id=filed.complaint_id, receipt=wrong, description="suit"), metadata),
        grpc.StatusCode.NOT_FOUND, reason="COMPLAINT_NOT_FOUND",
    )
    await expect_error(
        invoke(gateway, LEGAL, pb.ReportLegalActionRequest(complaint_id=filed.complaint_id, receipt=filed.receipt, description="suit"), metadata),
        grpc.StatusCode.FAILED_PRECONDITION, reason="NO_COUNTER_NOTICE",
    )
    case = await world.moderator.client.moderation.case(filed.case_id)
    assert [c.contact_address for c in case.complaints] == [contact]
    tokens = [await forged(kind, world.moderator, world, signing_key) for kind in ("expiry-extended", "tampered-claims", "alg-none")]
    for token in tokens:
        await expect_error(
            invoke(gateway, M + "GetCase", pb.GetCaseRequest(case_id=filed.case_id), with_client_id(token)),
            grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID",
        )
    forged_complaint = await forged("signature-stripped", world.complainant, world, signing_key)
    await expect_error(
        invoke(gateway, FILE_COMPLAINT, request, with_client_id(forged_complaint)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID"
    )
    genuine = [await world.stranger.token(), await world.moderator.token(), await world.complainant.token()]
    text = debug_logs()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    # The control: the capture works, and saw the calls and their outcomes.
    calls = {(str(line.get("method", "")).rsplit("/", 1)[-1], line.get("code")) for line in lines if line.get("event") == "rpc"}
    assert {("FileComplaint", "OK"), ("ReportLegalAction", "NOT_FOUND"), ("ReportLegalAction", "FAILED_PRECONDITION"),
            ("GetCase", "OK"), ("GetCase", "UNAUTHENTICATED"), ("FileComplaint", "UNAUTHENTICATED")} <= calls, calls
    assert any(line.get("event") == "complaint_filed" and line.get("complaint_id") == filed.complaint_id for line in lines), text
    secret_values = [filed.receipt, wrong, contact, link.token, forged_complaint, *tokens, *genuine]
    secret_values += [part for token in [*tokens, *genuine] for part in token.split(".")[1:] if len(part) >= 16]
    for value in secret_values:
        assert value not in text, f"{value!r} logged"


# --- the world ---------------------------------------------------------------------------------


async def test_the_world_is_untouched_by_everything_refused(world):
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
