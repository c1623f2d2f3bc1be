"""A termination that leaves its owner a window to take their data out (§4): the owner may
still sign in, but their tokens reach the take-out only; the deletion waits for the window's
end and then runs; the owner is told until when. Without the window (the default), nothing
changes: no sign-in, deletion at once."""

from __future__ import annotations

import datetime as dt
import pathlib
import uuid

import grpc
import sqlalchemy as sa

from cumulo.takeout.v1 import takeout_pb2
from cumulo_devstack.testing import PASSWORD, eventually, expect_error, lifecycle_has_contact
from cumulo_lifecycle.adapters.tables import deferred_deletions
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sdk.client import TokenStore


async def test_a_terminated_owner_takes_their_data_out_in_the_window_then_the_account_is_deleted(
    people, moderator, lifecycle, blob, gateway, mail, tmp_path: pathlib.Path,
) -> None:
    owner, reporter = await people.new(), await people.new()
    await lifecycle_has_contact(lifecycle, owner.email)
    (tmp_path / "photo.jpg").write_bytes(b"mine to keep")
    photo = await owner.client.files.upload(tmp_path / "photo.jpg")
    link = await owner.client.files.share(photo.node_id)
    filed = await reporter.client.complaints.report("account", owner.account_id, category="illegal", description="sells stolen goods")
    await moderator.moderation.decide(filed.case_id, "terminate", "repeated illegal offers", allow_export=True)

    # Told until when, and how.
    async def told():
        return [m for m in mail.messages() if m["To"] == owner.email and "being closed" in str(m["Subject"])]

    (notice,) = await eventually(told, what="the termination notice")
    assert "take a copy of your data out" in notice.get_content()
    # What the account shared stops at once, though the deletion waits.
    async with Cumulo(gateway, store=TokenStore(tmp_path / "anyone.json")) as anyone:

        async def link_dead() -> bool:
            try:
                await anyone.files.open_link(link.token)
            except CumuloRpcError as refused:
                return refused.code == grpc.StatusCode.NOT_FOUND
            return False

        await eventually(link_dead, what="the terminated account's link to stop")
    # The old session is gone; a new one reaches the take-out, and nothing else.
    async with Cumulo(gateway, store=TokenStore(tmp_path / "window.json")) as again:
        account = await again.login(owner.email, PASSWORD)
        assert account.export_until.seconds > 0
        await expect_error(again.files.ls(), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_TERMINATED")
        await expect_error(again.sync.zones(), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_TERMINATED")
        await expect_error(again.change_password(PASSWORD, "another long passphrase"), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_TERMINATED")
        export = await again.takeout.start()
        done = await again.takeout.wait(export.export_id, every=0.2)
        assert done.state == takeout_pb2.EXPORT_STATE_READY
        saved = await again.takeout.download(export.export_id, tmp_path / "out")
        assert saved and saved[0].stat().st_size > 0
    # The deletion waits for the window's end ...
    state = await lifecycle.app.cases.reports.state_of(owner.account_id)
    assert state.state == "active"
    async with lifecycle.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.update(deferred_deletions).where(deferred_deletions.c.account_id == uuid.UUID(owner.account_id))
            .values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await uow.commit()
    # ... and then runs, as any deletion.
    await lifecycle.app.cases.sweeper.sweep()

    async def deleted():
        row = await lifecycle.app.cases.reports.state_of(owner.account_id)
        return row is not None and row.state == "deleted"

    await eventually(deleted, timeout=90, what="the account to be deleted after its window")
    async with Cumulo(gateway, store=TokenStore(tmp_path / "after.json")) as after:
        await expect_error(after.login(owner.email, PASSWORD), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")


async def test_allow_export_is_for_terminations_only(people, moderator) -> None:
    owner, reporter = await people.new(), await people.new()
    filed = await reporter.client.complaints.report("account", owner.account_id, category="illegal", description="sells stolen goods")
    await expect_error(
        moderator.moderation.decide(filed.case_id, "warn", "a warning", allow_export=True), grpc.StatusCode.INVALID_ARGUMENT
    )
