"""Receipts and tokens given to the moderation service are never repeated: a complaint's
receipt is shown once, to whoever filed it, and never again (not in an answer, the case, the
audit log or the evidence bundle); every wrong receipt gets one and the same answer; a bad
token sent to an anonymous method is refused without being echoed; and none of them, nor a
complainant's contact address, reaches the logs. The door of every method: test_security.py.
The calls aim at the `world` of the package's conftest."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
import uuid
from typing import Any

import grpc
import pytest

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import (
    Person,
    everything_said,
    expect_error,
    forge_token,
    invoke,
    new_member,
    open_channel,
    public_methods,
    rpc_method,
    token_expiry,
    with_client_id,
)

from .helpers import World, metadata_of

# "Service/Method" -> its descriptor: every method of the public API, from the proto.
METHODS = public_methods(pb)
FILE_COMPLAINT, LEGAL = "ComplaintService/FileComplaint", "ComplaintService/ReportLegalAction"
M = "ModerationService/"


async def raw_error(target: str, method: str, request: Any, metadata: list[tuple[str, str]] | None) -> grpc.aio.AioRpcError:
    """The grpc error itself (everything it says), of a call that must fail."""
    path = rpc_method(METHODS[method])
    async with open_channel(target) as channel:
        call = channel.unary_unary(
            f"/{path.containing_service.full_name}/{path.name}", request_serializer=lambda m: m.SerializeToString(), response_deserializer=lambda b: b
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=metadata, timeout=30)
    return caught.value


async def forged(kind: str, holder: Person, world: World, signing_key: tuple[str, bytes]) -> str:
    intruder = world.stranger if holder is not world.stranger else world.complainant
    return forge_token(
        kind, genuine=await holder.token(), signing_key=signing_key, intruder_token=await intruder.token(),
        refresh_token=holder.client.store.tokens.refresh_token,
    )


# --- receipts ---------------------------------------------------------------------------------


async def test_a_legal_action_without_a_token_is_judged_by_its_receipt(gateway, world):
    """Past the door: the receipt is checked (right, but C has no counter-notice; wrong)."""
    await expect_error(
        invoke(gateway, METHODS[LEGAL], pb.ReportLegalActionRequest(complaint_id=world.complaint_c, receipt=world.receipt_c, description="we filed suit"), with_client_id()), grpc.StatusCode.FAILED_PRECONDITION, reason="NO_COUNTER_NOTICE"
    )
    wrong = pb.ReportLegalActionRequest(complaint_id=world.complaint_a, receipt=world.receipt_c, description="we filed suit")
    await expect_error(invoke(gateway, METHODS[LEGAL], wrong, with_client_id()), grpc.StatusCode.NOT_FOUND, reason="COMPLAINT_NOT_FOUND")


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
            invoke(gateway, METHODS[LEGAL], request, metadata), grpc.StatusCode.NOT_FOUND, reason="COMPLAINT_NOT_FOUND"
        )
        answers.add((err.code, err.reason, err.message, tuple(sorted(err.metadata.items()))))
    assert len(answers) == 1, answers


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


# --- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["expired", "signature-stripped", "expiry-extended", "tampered-claims", "alg-none", "refresh-token"])
@pytest.mark.parametrize("method", [FILE_COMPLAINT, LEGAL])
async def test_a_token_sent_to_an_anonymous_method_is_never_repeated_in_the_answer(gateway, world, signing_key, moderation_clock, method, kind):
    """The service verifies these itself (the door lets them through unread: every other
    method's answers are the platform's, tried in libs/cumulo_platform/tests/test_call_door.py)."""
    if kind == "expired":
        token = await world.complainant.token()
        moderation_clock.advance(dt.timedelta(seconds=token_expiry(token) - time.time() + 60))
    else:
        token = await forged(kind, world.complainant, world, signing_key)
    request = (
        pb.FileComplaintRequest(target=pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account=world.stranger.account_id), category=pb.CATEGORY_SPAM,
                                description="spam", contact_address="someone@example.com")
        if method == FILE_COMPLAINT else pb.ReportLegalActionRequest(complaint_id=world.complaint_c, receipt=world.receipt_c, description="suit")
    )
    err = await raw_error(gateway, method, request, with_client_id(token))
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
    filed = await invoke(gateway, METHODS[FILE_COMPLAINT], request, with_client_id())
    wrong = secrets.token_urlsafe(24)
    metadata = await world.stranger.metadata()
    await expect_error(
        invoke(gateway, METHODS[LEGAL], pb.ReportLegalActionRequest(complaint_id=filed.complaint_id, receipt=wrong, description="suit"), metadata),
        grpc.StatusCode.NOT_FOUND, reason="COMPLAINT_NOT_FOUND",
    )
    await expect_error(
        invoke(gateway, METHODS[LEGAL], pb.ReportLegalActionRequest(complaint_id=filed.complaint_id, receipt=filed.receipt, description="suit"), metadata),
        grpc.StatusCode.FAILED_PRECONDITION, reason="NO_COUNTER_NOTICE",
    )
    case = await world.moderator.client.moderation.case(filed.case_id)
    assert [c.contact_address for c in case.complaints] == [contact]
    tokens = [await forged(kind, world.moderator, world, signing_key) for kind in ("expiry-extended", "tampered-claims", "alg-none")]
    for token in tokens:
        await expect_error(
            invoke(gateway, METHODS[M + "GetCase"], pb.GetCaseRequest(case_id=filed.case_id), with_client_id(token)),
            grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID",
        )
    forged_complaint = await forged("signature-stripped", world.complainant, world, signing_key)
    await expect_error(
        invoke(gateway, METHODS[FILE_COMPLAINT], request, with_client_id(forged_complaint)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID"
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
