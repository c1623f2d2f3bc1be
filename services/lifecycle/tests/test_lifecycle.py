"""The lifecycle end to end on the session's real servers: an account's use is tracked, an
unused one is frozen with a notice stating the exact deletion time, any use (a call, a login,
the notice's link) brings it back with its files, and an account that stays frozen is
purged by every service and left as a tombstone."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo_blob.adapters.tables import nodes
from cumulo_devstack.testing import PASSWORD, eventually, expect_error, unique_phone, verify_contact
from cumulo_lifecycle.adapters.tables import notices, purge_participants, tombstones, transitions
from cumulo_platform.text import local_time
from cumulo_sdk import Cumulo

from .conftest import access_event


async def test_a_new_account_is_active_and_its_freeze_date_follows_its_last_use(rows, member, lifecycle):
    row = await rows.get(member.account_id)
    cal = lifecycle.app.settings.calendar
    assert row.freeze_at == cal.freeze_at(row.last_access_at)
    assert row.next_due_at <= row.freeze_at
    state = await member.client.account_state()
    assert state.state == pb.ACCOUNT_STATE_ACTIVE
    assert state.freeze_at.ToDatetime(tzinfo=dt.UTC) == row.freeze_at



async def test_changed_contacts_reach_the_ledger_after_the_event(rows, member, sms):
    """auth announces only that the contacts changed; the lifecycle asks auth for them after the
    event's unit of work (no call to another service inside one) and records the answer: the
    verified ones (a new number once its owner entered the code sent to it)."""
    phone = unique_phone()
    changed = await member.client.update_contacts(phone=phone)
    assert changed.phone == phone and not changed.phone_verified
    row = await eventually(
        lambda: rows.get(member.account_id, lambda r: r.contacts_wanted_at is None),
        what="the lifecycle to ask auth again",
    )
    assert row.phone is None and row.email == member.email  # not verified yet: no notice goes there
    await verify_contact(member.client, sms, "phone", phone)
    row = await eventually(
        lambda: rows.get(member.account_id, lambda r: r.phone == phone and r.contacts_wanted_at is None),
        what="the lifecycle to learn the new phone number",
    )
    assert row.email == member.email and row.state == "active"

async def test_an_unused_account_is_frozen_and_told_the_exact_deletion_time(rows, member, lifecycle, ages, mailbox):
    row = await ages.freeze(member.account_id)
    assert row.delete_at == lifecycle.app.settings.calendar.delete_at(row.frozen_at)
    (notice,) = await mailbox.wait_for(member.email, "frozen")
    exact = local_time(row.delete_at, lifecycle.app.settings.calendar.time_zone)
    assert exact in notice["Subject"]
    body = notice.get_content()
    assert exact in body
    assert "?token=" in body
    # Asking for the state is not a use: the account stays frozen.
    state = await member.client.account_state()
    assert state.state == pb.ACCOUNT_STATE_FROZEN
    assert state.delete_at.ToDatetime(tzinfo=dt.UTC) == row.delete_at
    assert (await rows.get(member.account_id)).state == "frozen"


async def test_any_call_reactivates_a_frozen_account_with_its_files(rows, member, lifecycle, blob, ages, mailbox, tmp_path):
    await ages.freeze(member.account_id)
    await eventually(
        lambda: _cached(blob, member.account_id, "frozen"), what="the blob service to learn that the account is frozen"
    )
    listing = await member.client.files.ls()  # served, after a synchronous reactivation
    assert [n.node_id for n in listing] == [member.file_id]
    assert (await rows.get(member.account_id)).state == "active"
    back = tmp_path / "back.jpg"
    await member.client.files.download(member.file_id, back)
    assert back.read_bytes() == member.content
    await mailbox.wait_for(member.email, "active again")


async def test_logging_in_reactivates_a_frozen_account(rows, member, lifecycle, auth, ages, gateway, tmp_path):
    await ages.freeze(member.account_id)
    await eventually(lambda: _cached(auth, member.account_id, "frozen"), what="auth to learn that the account is frozen")
    async with Cumulo(gateway) as other:
        from cumulo_sdk.client import TokenStore

        other.store = TokenStore(tmp_path / "other.json")
        await other.login(member.email, PASSWORD, device_name="laptop")
    assert (await rows.get(member.account_id)).state == "active"


async def test_explicit_reactivation_and_the_notice_link(rows, member, lifecycle, ages, mailbox):
    await ages.freeze(member.account_id)
    account = await member.client.reactivate()
    assert account.state == pb.ACCOUNT_STATE_ACTIVE
    await ages.freeze(member.account_id)
    notices_ = await mailbox.wait_for(member.email, "frozen", count=2)
    token = re.search(r"\?token=([A-Za-z0-9_-]+)", notices_[-1].get_content()).group(1)
    anonymous = Cumulo(member.client.gateway)
    try:
        await anonymous.reactivate_with_link(token)
        assert (await rows.get(member.account_id)).state == "active"
        # A link works once: the reactivation forgets its token.
        await expect_error(anonymous.reactivate_with_link(token), grpc.StatusCode.NOT_FOUND, "LINK_INVALID")
        await expect_error(anonymous.reactivate_with_link(""), grpc.StatusCode.INVALID_ARGUMENT, field="token")
    finally:
        await anonymous.close()


async def test_an_account_that_stays_frozen_is_purged_everywhere(rows, member, lifecycle, blob, ages, mailbox, gateway):
    storage_keys = await _object_keys(blob, member.account_id)
    assert storage_keys
    await ages.freeze(member.account_id)
    await ages.grace_over(member.account_id)
    await lifecycle.app.cases.sweeper.sweep()
    assert (await rows.get(member.account_id)).state in ("deleting", "deleted")
    row = await eventually(
        lambda: rows.get(member.account_id, lambda r: r.state == "deleted"), timeout=30, what="the purge to finish"
    )
    assert row.email is None and row.phone is None
    async with lifecycle.app.db.read() as conn:
        tomb = (await conn.execute(sa.select(tombstones).where(tombstones.c.account_id == row.account_id))).one()
        parts = (await conn.execute(sa.select(purge_participants).where(purge_participants.c.account_id == row.account_id))).all()
    assert tomb.reason == "inactivity"
    assert set(tomb.participants) == {"auth", "blob", "sync", "locator", "moderation"}
    assert all(p.completed_at is not None for p in parts)
    # Nothing of it is left in blob's tables or in S3.
    async with blob.app.db.read() as conn:
        left = (await conn.execute(sa.select(sa.func.count()).select_from(nodes).where(nodes.c.account_id == row.account_id))).scalar_one()
    assert left == 0
    for key in storage_keys:
        assert await blob.app.storage.size_of(key) is None
    # Logging in says so; so does a call with a token issued before.
    async with Cumulo(gateway) as again:
        await expect_error(again.login(member.email, PASSWORD), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")
    await expect_error(member.client.files.ls(), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")
    await mailbox.wait_for(member.email, "has been deleted")


async def test_a_legal_hold_keeps_a_frozen_account_from_deletion(rows, member, lifecycle, ages, internal):
    await ages.freeze(member.account_id)
    await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=member.account_id, held=True, reason="court order 17", actor="legal"))
    await ages.grace_over(member.account_id)
    await lifecycle.app.cases.sweeper.sweep()
    row = await rows.get(member.account_id)
    assert row.state == "frozen" and row.held and row.next_due_at is None
    await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=member.account_id, held=False, reason="order lifted", actor="legal"))
    await lifecycle.app.cases.sweeper.sweep()
    assert (await rows.get(member.account_id)).state in ("deleting", "deleted")


async def test_cancellation_deletes_the_account_but_waits_for_a_hold(rows, member, lifecycle, internal, mailbox, gateway):
    await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=member.account_id, held=True, reason="inquiry", actor="legal"))
    await member.client.call(member.client.auth.CancelAccount, _cancel_request())
    await eventually(
        lambda: rows.get(member.account_id, lambda r: r.cancel_requested_at is not None),
        what="the cancellation to reach the lifecycle",
    )
    assert (await rows.get(member.account_id)).state == "active"
    await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=member.account_id, held=False, reason="closed", actor="legal"))
    row = await eventually(
        lambda: rows.get(member.account_id, lambda r: r.state == "deleted"), timeout=30, what="the deletion"
    )
    assert row.deletion_reason == "cancellation"
    await mailbox.wait_for(member.email, "has been deleted")
    # Gone: logging in says so, and the address is free for a new account.
    async with Cumulo(gateway) as again:
        await expect_error(again.login(member.email, PASSWORD), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")
        fresh = await again.register(email=member.email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
        assert fresh.account_id != member.account_id


async def test_access_events_only_move_last_access_forward(rows, member, lifecycle):
    row = await rows.get(member.account_id)
    earlier, later = row.last_access_at - dt.timedelta(days=3), row.last_access_at + dt.timedelta(minutes=5)
    access = lifecycle.app.cases.access
    expected = row.last_access_at
    # Older, then newer twice (a duplicate), then older ones again, in one batch each.
    for batch in ([earlier], [later, later], [earlier, later - dt.timedelta(minutes=1)]):
        async with lifecycle.app.db.unit_of_work() as uow:
            await access.apply_batch([access_event(member.account_id, at) for at in batch], uow)
            await uow.commit()
        expected = max(expected, *batch)
        assert (await rows.get(member.account_id)).last_access_at == expected
    final = await rows.get(member.account_id)
    assert final.last_access_at == later
    assert final.freeze_at == lifecycle.app.settings.calendar.freeze_at(later)


async def test_a_dry_run_sweep_changes_nothing(rows, member, lifecycle, ages, internal):
    await ages.unused_for_a_year(member.account_id)
    response = await internal.Sweep(pb.SweepRequest(dry_run=True))
    assert any(a.account_id == member.account_id and a.action == "freeze" for a in response.actions)
    assert response.done == 0
    assert (await rows.get(member.account_id)).state == "active"
    async with lifecycle.app.db.read() as conn:
        moved = (await conn.execute(sa.select(transitions).where(transitions.c.account_id == uuid.UUID(member.account_id)))).all()
    assert moved == []
    response = await internal.Sweep(pb.SweepRequest())
    assert response.done >= 1
    assert (await rows.get(member.account_id)).state == "frozen"


async def test_each_notice_is_recorded_once_per_occurrence(member, lifecycle, ages, mailbox):
    await ages.freeze(member.account_id)
    await mailbox.wait_for(member.email, "frozen")
    # Sweeping again, twice, sends nothing more.
    await lifecycle.app.cases.sweeper.sweep()
    await lifecycle.app.cases.sweeper.sweep()
    await lifecycle.app.notifier.deliver_due()
    assert len([m for m in mailbox.to(member.email) if "frozen" in m["Subject"]]) == 1
    async with lifecycle.app.db.read() as conn:
        rows = (await conn.execute(sa.select(notices).where(notices.c.account_id == uuid.UUID(member.account_id), notices.c.kind == "frozen"))).all()
    assert [(r.channel, r.status, r.body) for r in rows] == [("email", "sent", "")]
    assert member.email not in rows[0].destination


@pytest.mark.parametrize(
    "request_, field",
    [
        (pb.SetLegalHoldRequest(account_id="nope", held=True, reason="r", actor="a"), "account_id"),
        (pb.SetLegalHoldRequest(account_id=str(uuid.uuid4()), held=True, reason=" ", actor="a"), "reason"),
        (pb.SetLegalHoldRequest(account_id=str(uuid.uuid4()), held=True, reason="r", actor=""), "actor"),
    ],
)
async def test_a_hold_needs_an_account_a_reason_and_an_actor(internal, request_, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await internal.SetLegalHold(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()


async def test_internal_calls_check_their_input(internal):
    for call, request_, code in (
        (internal.EnsureActive, pb.EnsureActiveRequest(account_id="x"), grpc.StatusCode.INVALID_ARGUMENT),
        (internal.GetAccount, pb.GetAccountRequest(account_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
        (internal.ListAccounts, pb.ListAccountsRequest(page_size=5000), grpc.StatusCode.INVALID_ARGUMENT),
        (internal.ListAccounts, pb.ListAccountsRequest(page_token="zzz"), grpc.StatusCode.INVALID_ARGUMENT),
        (internal.Sweep, pb.SweepRequest(limit=-1), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request_)
        assert caught.value.code() == code, (request_, caught.value.details())
    # An account the lifecycle has not heard of yet is active (its events are on their way).
    answer = await internal.EnsureActive(pb.EnsureActiveRequest(account_id=str(uuid.uuid4())))
    assert answer.state == pb.ACCOUNT_STATE_ACTIVE


# --- helpers -------------------------------------------------------------------------------


async def _cached(service: Any, account_id: str, state: str) -> bool:
    from cumulo_platform.account_states import AccountStates

    states = _states_of(service)
    assert isinstance(states, AccountStates)
    return states.state_of(account_id) == state


def _states_of(service: Any) -> Any:
    return service.app.states


async def _object_keys(blob: Any, account_id: str) -> list[str]:
    from cumulo_blob.adapters.tables import contents

    async with blob.app.db.read() as conn:
        return list((await conn.execute(sa.select(contents.c.s3_key).where(contents.c.account_id == uuid.UUID(account_id)))).scalars())


def _cancel_request() -> Any:
    from cumulo.auth.v1 import auth_pb2

    return auth_pb2.CancelAccountRequest(password=PASSWORD)
