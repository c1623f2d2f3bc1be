"""The moderation audit log is append-only: no RPC changes or deletes an entry, and the
table refuses UPDATE, DELETE and TRUNCATE even from the service's own connection. A person can
read it: a case's trail tells its story cause first (the complaint, the case, the decision,
its effect, or the effect's refusal), each target by its real kind and id."""

from __future__ import annotations

import re
import secrets
import uuid

import grpc
import pytest
import sqlalchemy as sa
import sqlalchemy.exc

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import expect_error, unique_email
from cumulo_moderation import audit
from cumulo_moderation.adapters.tables import audit_log

from .helpers import complain_about_file, me, sha256

# --- 1. the audit log is append-only --------------------------------------------------------------


AUDIT_CHANGING = re.compile(r"^(Update|Delete|Edit|Remove|Modify|Change|Erase|Purge|Truncate|Rewrite|Clear|Set|Put|Patch)", re.I)


async def test_no_rpc_changes_or_deletes_audit_entries():
    methods = {
        f"{service.name}/{method.name}": method
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert "ModerationService/ListAudit" in methods and "ModerationService/RemoveFromBlocklist" in methods
    audit_methods = [name for name in methods if "audit" in name.lower()]
    assert audit_methods == ["ModerationService/ListAudit"]
    for name, method in methods.items():
        about_audit = "AuditEntry" in {f.message_type.name for f in method.input_type.fields if f.message_type is not None}
        assert not about_audit, f"{name} takes an audit entry"
        if AUDIT_CHANGING.match(method.name):
            # The changing calls are about other things, never the audit log.
            assert "audit" not in method.name.lower() and "audit" not in method.input_type.name.lower(), name
    assert {name for name, m in methods.items() if AUDIT_CHANGING.match(m.name)} == {
        "ModerationService/SetLegalHold", "ModerationService/RemoveFromBlocklist"
    }


async def test_the_audit_log_refuses_update_delete_and_truncate_even_from_the_service(moderator, moderation):
    digest = sha256(secrets.token_bytes(16))
    await moderator.moderation.block_hashes([digest], "an entry to try to erase")
    async with moderation.app.db.read() as conn:
        before = (
            await conn.execute(sa.select(audit_log).where(audit_log.c.target == f"sha256:{digest}", audit_log.c.action == "blocklist.added"))
        ).one()
        count = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar_one()
    attempts = [
        sa.update(audit_log).where(audit_log.c.audit_id == before.audit_id).values(reason="nothing happened", actor="nobody"),
        sa.delete(audit_log).where(audit_log.c.audit_id == before.audit_id),
        sa.delete(audit_log),
        sa.text("TRUNCATE moderation.audit_log"),
    ]
    for statement in attempts:
        with pytest.raises(sqlalchemy.exc.DBAPIError) as refused:
            async with moderation.app.db.unit_of_work() as uow:
                await uow.execute(statement)
                await uow.commit()
        assert "append-only" in str(refused.value), statement
    async with moderation.app.db.read() as conn:
        after = (await conn.execute(sa.select(audit_log).where(audit_log.c.audit_id == before.audit_id))).one()
        assert (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar_one() >= count
    assert after == before
    listed = [e for e in await moderator.moderation.audit(limit=50) if e.audit_id == before.audit_id]
    assert len(listed) == 1 and listed[0].reason == "an entry to try to erase" and listed[0].actor == me(moderator)


# --- 2. a trail a person can read -----------------------------------------------------------------


async def test_a_case_trail_reads_cause_first_and_names_the_link_and_the_file_by_their_kinds(owner, anonymous, moderator):
    filed = await anonymous.complaints.report(
        "link", owner.link_token, category="harmful", description="violent imagery", contact_address=unique_email(), signed_in=False
    )
    await moderator.moderation.claim(filed.case_id)
    await moderator.moderation.decide(filed.case_id, "block", "violent imagery, upheld")

    trail = await moderator.moderation.audit(case_id=filed.case_id)
    assert [e.action for e in trail] == ["complaint.filed", "case.opened", "case.claimed", "decision.block", "effect.block"]
    assert [e.audit_id for e in trail] == sorted(e.audit_id for e in trail)  # by their sequence: as it happened
    link, file = f"link:{owner.link_id} (file:{owner.file_id})", f"file:{owner.file_id}"
    assert {e.action: e.target for e in trail if e.target} == {
        "complaint.filed": link, "case.opened": link, "decision.block": link, "effect.block": file,
    }
    decision, effect = trail[3], trail[4]
    assert decision.reason == "violent imagery, upheld" and effect.reason == "file blocked; its share links disconnected"
    assert decision.actor == effect.actor == me(moderator)
    shown = await moderator.moderation.case(filed.case_id)
    assert [e.audit_id for e in shown.audit] == [e.audit_id for e in trail]  # the case shows the same story

    # A file reported as such is the file; an account's log still lists the newest first.
    second = await anonymous.complaints.report(
        "file", owner.file_id, category="spam", description="spam", contact_address=unique_email(), signed_in=False
    )
    [opened] = [e for e in await moderator.moderation.audit(case_id=second.case_id) if e.action == "complaint.filed"]
    assert opened.target == file
    log = await moderator.moderation.audit(account_id=owner.account_id)
    assert [e.audit_id for e in log] == sorted((e.audit_id for e in log), reverse=True)


async def test_entries_that_share_a_timestamp_keep_the_order_they_were_recorded_in(moderation):
    case_id, account_id = uuid.uuid4(), uuid.uuid4()
    at = moderation.clock.now()
    async with moderation.app.db.unit_of_work() as uow:
        for action in ("decision.block", "effect.block"):
            await audit.record(uow, at=at, actor="tests", action=action, account_id=account_id, case_id=case_id)
        await uow.commit()
    trail, _ = await audit.entries(moderation.app.db, case_id=str(case_id))
    assert [e.action for e in trail] == ["decision.block", "effect.block"]
    newest, _ = await audit.entries(moderation.app.db, account_id=str(account_id))
    assert [e.action for e in newest] == ["effect.block", "decision.block"]
    first, token = await audit.entries(moderation.app.db, case_id=str(case_id), size=1)
    rest, _ = await audit.entries(moderation.app.db, case_id=str(case_id), size=1, token=token)
    assert [e.action for e in first + rest] == ["decision.block", "effect.block"]  # pages go on in the same order


async def test_an_effect_another_service_refuses_is_on_the_trail_after_its_decision(member, reporter, moderator, desk, blob, tmp_path):
    filed = await complain_about_file(reporter, member.file_id, "privacy")
    await desk.known_to_lifecycle(member.account_id)
    await desk.place(member.account_id, "preservation request 2026-7")
    try:
        await desk.reaches(blob, member.account_id, held=True, service="blob")
        await expect_error(
            moderator.moderation.decide(filed.case_id, "delete", "someone's address"), grpc.StatusCode.FAILED_PRECONDITION, "LEGAL_HOLD"
        )
    finally:
        await desk.release(member.account_id, "preservation period over")
    trail = await moderator.moderation.audit(case_id=filed.case_id)
    assert [e.action for e in trail][-2:] == ["decision.delete", "effect.refused"]
    assert trail[-1].target == f"file:{member.file_id}" and "LEGAL_HOLD" in trail[-1].reason
    assert (await moderator.moderation.case(filed.case_id)).case.state != pb.CASE_STATE_DECIDED


async def test_a_page_token_of_one_order_is_refused_in_the_other(moderator, moderation):
    """A case's trail pages oldest first, the rest newest first: a token carries its order, so
    that one from the other listing cannot skip or repeat entries."""
    case_id, account_id = uuid.uuid4(), uuid.uuid4()
    async with moderation.app.db.unit_of_work() as uow:
        for action in ("complaint.filed", "case.opened", "decision.warn"):
            await audit.record(uow, at=moderation.clock.now(), actor="tests", action=action, account_id=account_id, case_id=case_id)
        await uow.commit()
    listing = moderator.moderation

    async def page(token: str = "", **which: str) -> pb.ListAuditResponse:
        return await listing.client.call(listing.stub.ListAudit, pb.ListAuditRequest(page_size=1, page_token=token, **which))

    of_case, of_account = await page(case_id=str(case_id)), await page(account_id=str(account_id))
    assert [e.action for e in of_case.entries] == ["complaint.filed"] and [e.action for e in of_account.entries] == ["decision.warn"]
    for token, which in ((of_case.next_page_token, {"account_id": str(account_id)}), (of_account.next_page_token, {"case_id": str(case_id)})):
        refused = await expect_error(page(token, **which), grpc.StatusCode.INVALID_ARGUMENT, field="page_token")
        assert "other order" in str(refused)
    # In its own order, each goes on where it stopped.
    assert [e.action for e in (await page(of_case.next_page_token, case_id=str(case_id))).entries] == ["case.opened"]
    assert [e.action for e in (await page(of_account.next_page_token, account_id=str(account_id))).entries] == ["case.opened"]
