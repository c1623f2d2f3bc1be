"""Decisions and what they do in the other services, through the gateway on the session's real
servers: each decision's effect (blob, auth, the lifecycle's notices and deletion saga),
claiming, and dismissing a blocklist match."""

from __future__ import annotations

import datetime as dt
import pathlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.lifecycle.v1 import lifecycle_pb2
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_blob.adapters.tables import nodes
from cumulo_devstack.testing import PASSWORD, allowed_caller, eventually, expect_error
from cumulo_lifecycle.adapters.tables import accounts as lifecycle_accounts
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sdk.client import TokenStore

from .helpers import complain_about_file, downloads, make_moderator, queued, upload

SUSPEND_SECONDS = 3600


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
async def second_moderator(gateway: str, tmp_path: pathlib.Path, internal_auth) -> AsyncIterator[Cumulo]:
    """Another member of the trust and safety team (moderator B)."""
    member = await make_moderator(gateway, tmp_path / "moderator-b", internal_auth, "moderation desk B")
    try:
        yield member.client
    finally:
        await member.client.close()


async def blob_objects(blob, account_id: str) -> list[str]:
    storage = blob.app.storage
    listed = await storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=f"accounts/{account_id}/")
    return [item["Key"] for item in listed.get("Contents", [])]


async def blob_nodes(blob, account_id: str) -> int:
    async with blob.app.db.read() as conn:
        return (
            await conn.execute(sa.select(sa.func.count()).select_from(nodes).where(nodes.c.account_id == uuid.UUID(account_id)))
        ).scalar_one()


async def lifecycle_knows_contact(lifecycle, account_id: str, email: str) -> None:
    """Waits until the lifecycle has the account's e-mail address (where its notices go)."""

    async def known() -> bool:
        async with lifecycle.app.db.read() as conn:
            row = (
                await conn.execute(sa.select(lifecycle_accounts.c.email).where(lifecycle_accounts.c.account_id == uuid.UUID(account_id)))
            ).first()
        return row is not None and row.email == email

    await eventually(known, what="the lifecycle to know the account's e-mail address")


async def mails_to(mail, address: str, needle: str, *, timeout: float = 30) -> list[Any]:
    async def arrived() -> list[Any]:
        return [m for m in mail.messages() if m["To"] == address and needle in m.get_content()]

    return await eventually(arrived, timeout=timeout, what=f"an e-mail to {address} mentioning {needle}")  # type: ignore[return-value]


async def lifecycle_account(lifecycle, account_id: str) -> lifecycle_pb2.GetAccountResponse | None:
    from cumulo.lifecycle.v1 import lifecycle_pb2_grpc

    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as channel:
        try:
            return await channel.GetAccount(
                lifecycle_pb2.GetAccountRequest(account_id=account_id), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise


# --- 1. each decision's effect ---------------------------------------------------------------


async def test_dismiss_changes_nothing(owner, reporter, anonymous, moderator, tmp_path):
    filed = await complain_about_file(reporter, owner.file_id)
    await moderator.moderation.claim(filed.case_id)
    decided = await moderator.moderation.decide(filed.case_id, "dismiss", "holiday photo, nothing harmful")
    assert decided.state == pb.CASE_STATE_DECIDED and decided.decision == pb.DECISION_DISMISS

    assert await downloads(owner.client, owner.file_id, tmp_path) == owner.content
    opened = await anonymous.files.open_link(owner.link_token)
    assert opened.root.node_id == owner.file_id
    assert [n.node_id for n in await owner.client.files.ls()] == [owner.file_id]
    assert await owner.client.complaints.my_cases() == []  # a dismissal is not shown to the owner
    assert filed.case_id not in [c.case_id for c in await queued(moderator)]


async def test_block_refuses_downloads_and_kills_the_share_link(owner, reporter, anonymous, moderator, tmp_path):
    filed = await complain_about_file(reporter, owner.file_id, "illegal")
    decided = await moderator.moderation.decide(filed.case_id, "block", "unlawful material")
    assert decided.decision == pb.DECISION_BLOCK and decided.decided_by

    err = await expect_error(owner.client.files.download(owner.file_id, tmp_path / "back"), grpc.StatusCode.PERMISSION_DENIED, "CONTENT_BLOCKED")
    assert "blocked" in err.message
    assert not (tmp_path / "back").exists()
    with pytest.raises(CumuloRpcError) as dead:
        await anonymous.files.open_link(owner.link_token)
    assert dead.value.reason in ("LINK_TAKEN_DOWN", "LINK_NOT_FOUND", "CONTENT_BLOCKED"), dead.value
    with pytest.raises(CumuloRpcError) as no_download:
        await anonymous.files.download_link(owner.link_token, tmp_path / "shared")
    assert no_download.value.reason in ("LINK_TAKEN_DOWN", "LINK_NOT_FOUND", "CONTENT_BLOCKED"), no_download.value
    # The file itself stays (blocked, not deleted), and the owner is told which case did it.
    assert [n.node_id for n in await owner.client.files.ls()] == [owner.file_id]
    assert [(c.case_id, c.decision) for c in await owner.client.complaints.my_cases()] == [(filed.case_id, pb.DECISION_BLOCK)]


async def test_delete_removes_the_file(owner, reporter, moderator, blob, tmp_path):
    assert await blob_objects(blob, owner.account_id)
    filed = await complain_about_file(reporter, owner.file_id, "illegal")
    decided = await moderator.moderation.decide(filed.case_id, "delete", "unlawful material, removed")
    assert decided.decision == pb.DECISION_DELETE

    assert owner.file_id not in [n.node_id for n in await owner.client.files.ls()]
    assert owner.file_id not in [n.node_id for n in await owner.client.files.trash()]  # gone for good, not trashed
    await expect_error(owner.client.files.download(owner.file_id, tmp_path / "back"), grpc.StatusCode.NOT_FOUND)
    # Its only stored object goes too.
    assert await eventually(lambda: _no_objects(blob, owner.account_id), what="the deleted file's stored object to go")


async def _no_objects(blob, account_id: str) -> bool:
    return await blob_objects(blob, account_id) == []


async def test_warn_mails_the_owner_a_notice_naming_the_case(owner, reporter, moderator, lifecycle, mail, tmp_path):
    await lifecycle_knows_contact(lifecycle, owner.account_id, owner.email)
    filed = await reporter.client.complaints.report("account", owner.account_id, category="spam", description="sends me spam links")
    decided = await moderator.moderation.decide(filed.case_id, "warn", "spam sent through share links")
    assert decided.decision == pb.DECISION_WARN

    (notice,) = await mails_to(mail, owner.email, filed.case_id)
    assert "warning" in notice["Subject"].lower()
    assert "spam sent through share links" in notice.get_content()
    # Nothing else happens: the file still downloads.
    assert await downloads(owner.client, owner.file_id, tmp_path) == owner.content
    assert [c.decision for c in await owner.client.complaints.my_cases()] == [pb.DECISION_WARN]


async def test_suspend_refuses_login_and_refresh_until_the_period_ends(owner, reporter, moderator, auth, gateway, tmp_path):
    filed = await reporter.client.complaints.report("account", owner.account_id, category="harmful", description="harasses people")
    decided = await moderator.moderation.decide(filed.case_id, "suspend", "harassment", suspend_seconds=SUSPEND_SECONDS)
    assert decided.decision == pb.DECISION_SUSPEND
    until = decided.suspended_until.ToDatetime(tzinfo=dt.UTC)
    assert until - decided.decided_at.ToDatetime(tzinfo=dt.UTC) == dt.timedelta(seconds=SUSPEND_SECONDS)

    async with Cumulo(gateway, store=TokenStore(tmp_path / "again.json")) as again:
        await expect_error(again.login(owner.email, PASSWORD), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_SUSPENDED")
        await expect_error(owner.client.refresh(), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_SUSPENDED")
        shift = dt.timedelta(seconds=SUSPEND_SECONDS + 60)
        auth.clock.offset += shift
        try:
            account = await again.login(owner.email, PASSWORD)
            assert account.account_id == owner.account_id
        finally:
            auth.clock.offset -= shift
    # Back in the present, the suspension still holds.
    async with Cumulo(gateway, store=TokenStore(tmp_path / "once-more.json")) as once_more:
        await expect_error(once_more.login(owner.email, PASSWORD), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_SUSPENDED")


async def test_terminate_closes_the_account_and_runs_the_deletion_saga(owner, reporter, moderator, lifecycle, blob, gateway, tmp_path):
    assert await blob_objects(blob, owner.account_id) and await blob_nodes(blob, owner.account_id)
    filed = await reporter.client.complaints.report("account", owner.account_id, category="illegal", description="sells stolen goods")
    decided = await moderator.moderation.decide(filed.case_id, "terminate", "repeated illegal offers")
    assert decided.decision == pb.DECISION_TERMINATE

    async with Cumulo(gateway, store=TokenStore(tmp_path / "again.json")) as again:
        with pytest.raises(CumuloRpcError) as refused:
            await again.login(owner.email, PASSWORD)
        # Terminated, or (if the saga was that quick) already deleted.
        assert (refused.value.code, refused.value.reason) in (
            (grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_TERMINATED"), (grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED"),
        ), refused.value
    with pytest.raises(CumuloRpcError) as no_refresh:
        await owner.client.refresh()  # its sessions ended with the termination (or were purged)
    assert no_refresh.value.code == grpc.StatusCode.UNAUTHENTICATED, no_refresh.value
    assert no_refresh.value.reason in ("SESSION_REVOKED", "REFRESH_TOKEN_INVALID"), no_refresh.value

    async def deleted() -> lifecycle_pb2.GetAccountResponse | None:
        found = await lifecycle_account(lifecycle, owner.account_id)
        return found if found is not None and found.account.state == lifecycle_pb2.ACCOUNT_STATE_DELETED else None

    final = await eventually(deleted, timeout=90, what="the terminated account to be deleted by the lifecycle")
    assert final.account.deletion_reason == "termination"
    assert "deleting" in [t.to_state for t in final.transitions]
    assert await blob_objects(blob, owner.account_id) == []
    assert await blob_nodes(blob, owner.account_id) == 0
    async with Cumulo(gateway, store=TokenStore(tmp_path / "after.json")) as after:
        await expect_error(after.login(owner.email, PASSWORD), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")


# --- 2. claiming -----------------------------------------------------------------------------


async def test_a_claimed_case_belongs_to_its_moderator_until_taken_over(owner, reporter, moderator, second_moderator, tmp_path):
    filed = await complain_about_file(reporter, owner.file_id, "privacy")
    claimed = await moderator.moderation.claim(filed.case_id)
    a = claimed.claimed_by
    assert claimed.state == pb.CASE_STATE_CLAIMED and a

    await expect_error(second_moderator.moderation.claim(filed.case_id), grpc.StatusCode.FAILED_PRECONDITION, "CASE_CLAIMED")
    await expect_error(
        second_moderator.moderation.decide(filed.case_id, "block", "my call"), grpc.StatusCode.FAILED_PRECONDITION, "CASE_CLAIMED"
    )
    assert await downloads(owner.client, owner.file_id, tmp_path) == owner.content  # the refused decision did nothing
    assert (await moderator.moderation.case(filed.case_id)).case.claimed_by == a

    taken = await second_moderator.moderation.claim(filed.case_id, take_over=True)
    b = taken.claimed_by
    assert b and b != a and taken.state == pb.CASE_STATE_CLAIMED
    # Now A is the one refused.
    await expect_error(moderator.moderation.decide(filed.case_id, "dismiss", "fine"), grpc.StatusCode.FAILED_PRECONDITION, "CASE_CLAIMED")
    decided = await second_moderator.moderation.decide(filed.case_id, "dismiss", "a public place, no privacy breach")
    assert decided.decided_by == b and decided.decision == pb.DECISION_DISMISS

    # A decided case cannot be decided again, by anyone, nor claimed.
    await expect_error(
        second_moderator.moderation.decide(filed.case_id, "block", "changed my mind"), grpc.StatusCode.FAILED_PRECONDITION, "CASE_DECIDED"
    )
    await expect_error(moderator.moderation.decide(filed.case_id, "block", "no"), grpc.StatusCode.FAILED_PRECONDITION, "CASE_DECIDED")
    await expect_error(moderator.moderation.claim(filed.case_id, take_over=True), grpc.StatusCode.FAILED_PRECONDITION, "CASE_DECIDED")
    assert await downloads(owner.client, owner.file_id, tmp_path) == owner.content
    trail = await moderator.moderation.audit(case_id=filed.case_id)
    assert [e.reason for e in trail if e.action == "case.claimed" and e.actor == b] == [f"taken over from {a}"]
    assert [e.actor for e in trail if e.action.startswith("decision.")] == [b]


# --- 7. blocklist matches ---------------------------------------------------------------------------


async def blocklist_case(moderator: Cumulo, node_id: str) -> pb.CaseSummary | None:
    found = [c for c in await queued(moderator) if c.node_id == node_id and c.kind == pb.CASE_KIND_BLOCKLIST_MATCH]
    return found[0] if found else None


async def test_a_dismissed_blocklist_match_is_unblocked_once_its_entry_is_off_the_list(owner, moderator, blocklisted, tmp_path):
    node_id = (await upload(owner.client, tmp_path, "matched.jpg", blocklisted.content)).node_id
    await blocklisted.list()
    case = await eventually(lambda: blocklist_case(moderator, node_id), what="the blocklist match to be queued")
    assert case.sha256 == blocklisted.digest and case.account_id == owner.account_id and case.category == pb.CATEGORY_ILLEGAL
    await expect_error(owner.client.files.download(node_id, tmp_path / "back"), grpc.StatusCode.PERMISSION_DENIED, "CONTENT_BLOCKED")
    assert case.case_id in [c.case_id for c in await owner.client.complaints.my_cases()]  # the owner sees why

    decided = await moderator.moderation.decide(case.case_id, "dismiss", "false positive: a different image")
    assert decided.decision == pb.DECISION_DISMISS
    # The case no longer holds the file, but the blocklist holds its content, in every account.
    await expect_error(owner.client.files.download(node_id, tmp_path / "back"), grpc.StatusCode.PERMISSION_DENIED, "CONTENT_BLOCKED")
    trail = await moderator.moderation.audit(case_id=case.case_id)
    assert [e.reason for e in trail if e.action == "effect.unblock"] == [
        "file unblocked; the share links the block disconnected reconnected (it stays blocked: its content is on the blocklist)"
    ]
    await blocklisted.unlist("the entry was a false positive")
    assert await downloads(owner.client, node_id, tmp_path) == blocklisted.content
    assert await downloads(owner.client, owner.file_id, tmp_path) == owner.content


async def test_dismissing_a_blocklist_match_keeps_another_cases_block(owner, reporter, moderator, blocklisted, tmp_path):
    node_id = (await upload(owner.client, tmp_path, "matched.jpg", blocklisted.content)).node_id
    await blocklisted.list()
    case = await eventually(lambda: blocklist_case(moderator, node_id), what="the blocklist match to be queued")
    complaint = await complain_about_file(reporter, node_id, "harmful")
    assert complaint.case_id != case.case_id
    await moderator.moderation.decide(complaint.case_id, "block", "harmful material, upheld")
    await moderator.moderation.decide(case.case_id, "dismiss", "not the listed image")
    # The complaint's upheld BLOCK still stands.
    await expect_error(owner.client.files.download(node_id, tmp_path / "back"), grpc.StatusCode.PERMISSION_DENIED, "CONTENT_BLOCKED")
    # The complaint's block is the account's own: the entry going off the list changes nothing.
    await blocklisted.unlist()
    await expect_error(owner.client.files.download(node_id, tmp_path / "back"), grpc.StatusCode.PERMISSION_DENIED, "CONTENT_BLOCKED")


async def decide_when_free(moderator: Cumulo, case_id: str, decision: str, reason: str) -> pb.Case:
    """A decision, retried while an earlier effect on the same content is still being carried
    out (EFFECT_PENDING: UNAVAILABLE, "try again"), as a moderator's console does."""

    async def attempt() -> pb.Case | None:
        try:
            return await moderator.moderation.decide(case_id, decision, reason)
        except CumuloRpcError as exc:
            if exc.reason != "EFFECT_PENDING":
                raise
            return None

    return await eventually(attempt, what="the content's earlier effect to be carried out")


async def test_a_copys_match_keeps_its_twin_blocked_until_both_are_dismissed(owner, moderator, blocklisted, tmp_path):
    """Blob blocks a file's content in its account, every copy of it: one copy's dismissal does
    not lift what the other copy's case still holds."""
    first = (await upload(owner.client, tmp_path, "one.jpg", blocklisted.content)).node_id
    twin = (await upload(owner.client, tmp_path, "two.jpg", blocklisted.content)).node_id
    await blocklisted.list()
    cases = [await eventually(lambda n=n: blocklist_case(moderator, n), what="each copy's match to be queued") for n in (first, twin)]
    await decide_when_free(moderator, cases[0].case_id, "dismiss", "not the listed image")
    trail = await moderator.moderation.audit(case_id=cases[0].case_id)
    assert [e.reason for e in trail if e.action == "decision.dismiss"] == [
        "not the listed image (it stays blocked: another case's decision blocks it)"
    ]
    await blocklisted.unlist("the entry was a false positive")
    for node_id in (first, twin):
        await expect_error(owner.client.files.download(node_id, tmp_path / "back"), grpc.StatusCode.PERMISSION_DENIED, "CONTENT_BLOCKED")
    await decide_when_free(moderator, cases[1].case_id, "dismiss", "not the listed image")
    for node_id in (first, twin):
        assert await downloads(owner.client, node_id, tmp_path) == blocklisted.content
