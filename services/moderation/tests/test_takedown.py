"""The copyright path end to end: a link reported, taken down, disputed and restored; the
repeat-infringer threshold, and the counter-notice and legal-action rules."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import eventually, expect_error, unique_email
from cumulo_moderation.adapters.tables import cases as case_rows
from cumulo_sdk import Cumulo, CumuloRpcError

from .helpers import complain_about_file, downloads, queued, restore_now, upload, waiting_period_over
from .test_owner_notices import lifecycle_knows, mail_about


async def test_copyright_takedown_counter_notice_and_restore(owner, anonymous, moderator, moderation, claim, tmp_path):
    filed = await anonymous.complaints.report(
        "link", f"https://cumulo.example/s/{owner.link_token}", category="copyright", description="my photograph, shared without licence",
        contact_address="legal@lumen.example", copyright=claim(), signed_in=False,
    )
    queue = [c async for c in moderator.moderation.queue()]
    case = next(c for c in queue if c.case_id == filed.case_id)
    assert case.category == pb.CATEGORY_COPYRIGHT and case.node_id == owner.file_id and case.account_id == owner.account_id
    await moderator.moderation.claim(case.case_id)
    decided = await moderator.moderation.decide(case.case_id, "block", "the complainant's photograph, unlicensed")
    assert decided.state == pb.CASE_STATE_DECIDED and decided.decision == pb.DECISION_BLOCK

    with pytest.raises(CumuloRpcError) as dead:
        await anonymous.files.open_link(owner.link_token)
    assert dead.value.reason in ("LINK_TAKEN_DOWN", "LINK_NOT_FOUND", "CONTENT_BLOCKED")
    with pytest.raises(CumuloRpcError) as refused:
        await owner.client.files.download(owner.file_id, tmp_path / "back.jpg")
    assert refused.value.reason == "CONTENT_BLOCKED"

    mine = await owner.client.complaints.my_cases()
    assert [c.case_id for c in mine] == [case.case_id]
    waiting = await owner.client.complaints.counter_notice(
        case.case_id, statement="I took this photograph myself", name="Ann Owner", contact="ann@example.com"
    )
    assert waiting.counter_notice == pb.COUNTER_NOTICE_STATE_WAITING

    await moderation.app.cases.restore_due()  # not before the waiting period
    assert (await moderator.moderation.case(case.case_id)).case.counter_notice == pb.COUNTER_NOTICE_STATE_WAITING
    assert await restore_now(moderation, case.case_id) >= 1
    await owner.client.files.download(owner.file_id, tmp_path / "back.jpg")
    assert (tmp_path / "back.jpg").read_bytes() == owner.content
    opened = await anonymous.files.open_link(owner.link_token)
    assert opened is not None
    assert (await moderator.moderation.case(case.case_id)).case.counter_notice == pb.COUNTER_NOTICE_STATE_RESTORED
    trail = [e.action for e in await moderator.moderation.audit(case_id=case.case_id)]
    assert {"case.opened", "complaint.filed", "case.claimed", "decision.block", "counter_notice.filed", "content.restored"} <= set(trail)


async def test_a_complainant_without_an_account_hears_of_the_counter_notice_and_can_keep_the_takedown(
    owner, anonymous, moderator, moderation, lifecycle, mail, claim, tmp_path
):
    await lifecycle_knows(lifecycle, owner.account_id)
    contact = unique_email()
    filed = await anonymous.complaints.report(
        "file", owner.file_id, category="copyright", description="our photograph", contact_address=contact,
        copyright=claim(), signed_in=False,
    )
    await moderator.moderation.decide(filed.case_id, "block", "the complainant's photograph")
    await owner.client.complaints.counter_notice(filed.case_id, statement="I took it myself", name="Ann Owner", contact="ann@example.com")

    async def told() -> list[Any]:
        return [m for m in mail.messages() if m["To"] == contact and filed.complaint_id in m.get_content()]

    (notice,) = await eventually(told, what="the counter-notice mailed to the complainant's contact address")
    body = notice.get_content()
    assert "I took it myself" in body and "Ann Owner" in body  # a copy of the counter-notice
    assert filed.receipt not in body  # the receipt is the complainant's secret

    with pytest.raises(CumuloRpcError) as wrong:
        await anonymous.complaints.legal_action(filed.complaint_id, "not-the-receipt", "suit filed")
    assert wrong.value.reason == "COMPLAINT_NOT_FOUND"
    await anonymous.complaints.legal_action(filed.complaint_id, filed.receipt, "suit filed at the district court")
    body = await mail_about(mail, owner.email, filed.case_id, "The complainant has taken legal action")
    assert f"The complainant reported legal action about your file /photo.jpg (case {filed.case_id})" in body
    await restore_now(moderation, filed.case_id)
    with pytest.raises(CumuloRpcError) as still:
        await owner.client.files.download(owner.file_id, tmp_path / "back.jpg")
    assert still.value.reason == "CONTENT_BLOCKED"
    shown = await moderator.moderation.case(filed.case_id)
    assert shown.case.counter_notice == pb.COUNTER_NOTICE_STATE_LEGAL_ACTION


async def test_a_shared_folder_is_taken_down_by_disconnecting_its_link_and_restored_with_it(
    owner, anonymous, moderator, moderation, claim, tmp_path
):
    folder = await owner.client.files.mkdir("", f"album-{uuid.uuid4().hex[:6]}")
    link = await owner.client.files.share(folder.node_id)
    other = await owner.client.files.share(folder.node_id)  # another link to it, not complained about
    filed = await anonymous.complaints.report(
        "link", link.token, category="copyright", description="our album", contact_address=unique_email(), copyright=claim(), signed_in=False,
    )
    with pytest.raises(CumuloRpcError) as refused:
        await moderator.moderation.decide(filed.case_id, "delete", "a folder")
    assert refused.value.reason == "INVALID_ARGUMENT" and "decision" in str(refused.value)
    await moderator.moderation.decide(filed.case_id, "block", "the complainant's album")
    with pytest.raises(CumuloRpcError) as dead:
        await anonymous.files.open_link(link.token)
    assert dead.value.reason == "LINK_TAKEN_DOWN" and "taken down" in str(dead.value)
    assert await anonymous.files.open_link(other.token) is not None  # only the reported link
    trail = [e.action for e in await moderator.moderation.audit(case_id=filed.case_id)]
    assert trail.index("decision.block") < trail.index("effect.block")  # a case's trail reads as it happened: cause first

    await owner.client.complaints.counter_notice(filed.case_id, statement="my own album", name="Ann Owner", contact="ann@example.com")
    await restore_now(moderation, filed.case_id)
    assert await anonymous.files.open_link(link.token) is not None


async def test_an_account_named_in_a_form_no_account_has_is_refused_by_field(anonymous):
    with pytest.raises(CumuloRpcError) as refused:
        await anonymous.complaints.report(
            "account", "bob", category="spam", description="spams me", contact_address=unique_email(), signed_in=False
        )
    assert refused.value.reason == "INVALID_ARGUMENT" and "target.account" in str(refused.value)


# --- 4. repeat infringers -------------------------------------------------------------------------


async def repeat_infringer_case(moderator: Cumulo, account_id: str) -> list[pb.CaseSummary]:
    return [c for c in await queued(moderator) if c.kind == pb.CASE_KIND_REPEAT_INFRINGER and c.account_id == account_id]


async def test_upheld_copyright_takedowns_up_to_the_threshold_queue_a_repeat_infringer_review(
    owner, reporter, moderator, moderation, claim, tmp_path
):
    strikes = moderation.app.settings.repeat_infringer_strikes
    files = [owner.file_id] + [(await upload(owner.client, tmp_path, f"copy-{i}.jpg")).node_id for i in range(strikes - 1)]
    decisions = ["block", "delete"]
    for index, node_id in enumerate(files[:-1]):
        filed = await complain_about_file(reporter, node_id, "copyright", claim())
        await moderator.moderation.decide(filed.case_id, decisions[index % 2], "unlicensed copy of the work")
    # A takedown for something else does not count.
    other_file = (await upload(owner.client, tmp_path, "other.jpg")).node_id
    harmful = await complain_about_file(reporter, other_file, "harmful")
    await moderator.moderation.decide(harmful.case_id, "block", "harmful material")
    assert await repeat_infringer_case(moderator, owner.account_id) == []  # one fewer than the threshold

    last = await complain_about_file(reporter, files[-1], "copyright", claim())
    await moderator.moderation.decide(last.case_id, decisions[(strikes - 1) % 2], "unlicensed copy of the work")
    (review,) = await repeat_infringer_case(moderator, owner.account_id)
    assert review.category == pb.CATEGORY_COPYRIGHT and review.target_kind == pb.TARGET_KIND_ACCOUNT
    assert review.state == pb.CASE_STATE_OPEN and review.node_id == ""
    trail = await moderator.moderation.audit(case_id=review.case_id)
    assert [e.actor for e in trail if e.action == "case.opened"] == ["system:repeat-infringer"]


# --- 5. counter-notices --------------------------------------------------------------------------


async def counter(owner, case_id: str) -> pb.CaseSummary:
    return await owner.client.complaints.counter_notice(
        case_id, statement="I made this myself", name="Ann Owner", contact="ann@example.com, 1 Main St"
    )


async def test_counter_notice_rules_and_legal_action_keeps_the_takedown(
    owner, reporter, anonymous, moderator, moderation, claim, tmp_path
):
    # Only a copyright BLOCK can be disputed: not a block for another reason, not a copyright delete.
    harmful_file = (await upload(owner.client, tmp_path, "harmful.jpg")).node_id
    harmful = await complain_about_file(reporter, harmful_file, "harmful")
    await moderator.moderation.decide(harmful.case_id, "block", "harmful material")
    await expect_error(counter(owner, harmful.case_id), grpc.StatusCode.FAILED_PRECONDITION, "NOT_COUNTERABLE")
    deleted_file = (await upload(owner.client, tmp_path, "deleted.jpg")).node_id
    deleted = await complain_about_file(reporter, deleted_file, "copyright", claim())
    await moderator.moderation.decide(deleted.case_id, "delete", "unlicensed copy")
    await expect_error(counter(owner, deleted.case_id), grpc.StatusCode.FAILED_PRECONDITION, "NOT_COUNTERABLE")

    filed = await complain_about_file(reporter, owner.file_id, "copyright", claim())
    await moderator.moderation.decide(filed.case_id, "block", "unlicensed copy of the photograph")
    # Before any counter-notice there is nothing to take legal action against.
    await expect_error(
        reporter.client.complaints.legal_action(filed.complaint_id, filed.receipt, "suit filed"),
        grpc.StatusCode.FAILED_PRECONDITION, "NO_COUNTER_NOTICE",
    )
    waiting = await counter(owner, filed.case_id)
    assert waiting.counter_notice == pb.COUNTER_NOTICE_STATE_WAITING and waiting.restore_at.seconds
    await expect_error(counter(owner, filed.case_id), grpc.StatusCode.FAILED_PRECONDITION, "COUNTER_NOTICE_FILED")

    # A wrong receipt looks like no complaint at all.
    await expect_error(
        reporter.client.complaints.legal_action(filed.complaint_id, secrets.token_urlsafe(24), "suit filed"),
        grpc.StatusCode.NOT_FOUND, "COMPLAINT_NOT_FOUND",
    )
    await reporter.client.complaints.legal_action(filed.complaint_id, filed.receipt, "suit filed at the district court, no. 24-1177")
    found = await moderator.moderation.case(filed.case_id)
    assert found.case.counter_notice == pb.COUNTER_NOTICE_STATE_LEGAL_ACTION
    assert [c.legal_action_at.seconds > 0 for c in found.complaints] == [True]

    # Legal action ends the waiting: even when its time comes, nothing of this case is restored.
    async with moderation.app.db.read() as conn:
        kept = (await conn.execute(sa.select(case_rows).where(case_rows.c.case_id == uuid.UUID(filed.case_id)))).one()
    assert kept.restore_at is None
    await restore_now(moderation, filed.case_id)

    await expect_error(owner.client.files.download(owner.file_id, tmp_path / "back"), grpc.StatusCode.PERMISSION_DENIED, "CONTENT_BLOCKED")
    with pytest.raises(CumuloRpcError) as dead:
        await anonymous.files.open_link(owner.link_token)
    assert dead.value.reason in ("LINK_TAKEN_DOWN", "LINK_NOT_FOUND", "CONTENT_BLOCKED"), dead.value
    after = await moderator.moderation.case(filed.case_id)
    assert after.case.counter_notice == pb.COUNTER_NOTICE_STATE_LEGAL_ACTION
    assert "content.restored" not in [e.action for e in after.audit]
    assert "counter_notice.legal_action" in [e.action for e in after.audit]


async def test_legal_action_reported_after_the_waiting_period_does_not_stop_the_restore(
    owner, reporter, moderator, moderation, claim, tmp_path
):
    filed = await complain_about_file(reporter, owner.file_id, "copyright", claim())
    await moderator.moderation.decide(filed.case_id, "block", "unlicensed copy of the photograph")
    await counter(owner, filed.case_id)
    await waiting_period_over(moderation, filed.case_id)  # (the periodic restore has not run yet)
    await expect_error(  # too late
        reporter.client.complaints.legal_action(filed.complaint_id, filed.receipt, "suit filed, late"),
        grpc.StatusCode.FAILED_PRECONDITION, "WAITING_PERIOD_OVER",
    )
    await moderation.app.cases.restore_due()
    assert await downloads(owner.client, owner.file_id, tmp_path) == owner.content


