"""`cumulo-admin lifecycle status | list | report`: what operators see of accounts, by id, e-mail
or phone, active, frozen or deleted (fixtures in conftest.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo_devstack.testing import eventually

# --- status ----------------------------------------------------------------------------------


async def test_status_by_account_id(admin, person):
    code, out, err = await admin("lifecycle", "status", person.account_id)
    assert code == 0, err
    row = await admin.row(person.account_id)
    assert admin.field(out, "account") == person.account_id
    assert admin.field(out, "state") == "active"
    assert admin.field(out, "last access") == admin.shown(row.last_access_at)
    assert admin.field(out, "freeze at") == admin.shown(row.freeze_at)
    assert admin.field(out, "legal hold") == "no"
    assert "frozen at" not in out and "delete at" not in out
    assert err == ""


@pytest.mark.parametrize("spelling", ["as-registered", "upper-case", "padded"])
async def test_status_by_email_is_resolved_through_auth(admin, person, spelling):
    login = {"as-registered": person.email, "upper-case": person.email.upper(), "padded": f"  {person.email} "}[spelling]
    code, out, err = await admin("lifecycle", "status", login)
    assert code == 0, err
    assert admin.field(out, "account") == person.account_id
    assert admin.field(out, "state") == "active"


async def test_status_by_phone_is_resolved_through_auth(admin, sign_up):
    someone = await sign_up(phone=True)
    code, out, err = await admin("lifecycle", "status", someone.email)
    assert code == 0, err
    assert admin.field(out, "account") == someone.account_id


async def test_status_of_a_frozen_account_shows_its_dates_transitions_and_notices(admin, frozen):
    row = await admin.row(frozen.account_id)

    async def noticed() -> Any:
        code, out, err = await admin("lifecycle", "status", frozen.email)
        assert code == 0, err
        return out if re.search(rf"^  {admin.TIME}  frozen +email +sent ", out, re.MULTILINE) else None

    out = await eventually(noticed, timeout=30, what="the freeze notice to be sent and shown")
    assert admin.field(out, "state") == "frozen"
    assert admin.field(out, "frozen at") == admin.shown(row.frozen_at)
    assert admin.field(out, "delete at") == admin.shown(row.delete_at)
    assert "freeze at" not in out  # only active accounts have one
    assert re.search(rf"^transitions\n  {admin.TIME}  active -> frozen  unused$", out, re.MULTILINE), out
    # Asking is not a use: still frozen.
    assert (await admin.row(frozen.account_id)).state == "frozen"


async def test_status_of_a_deleted_account_by_id_and_what_no_longer_works(admin, ages, lifecycle, person):
    await ages.freeze(person.account_id)
    await ages.grace_over(person.account_id)
    await lifecycle.app.cases.sweeper.sweep()

    async def deleted() -> Any:
        row = await admin.row(person.account_id)
        return row if row.state == "deleted" else None

    row = await eventually(deleted, timeout=30, what="the purge to finish")
    code, out, err = await admin("lifecycle", "status", person.account_id)
    assert code == 0, err
    assert admin.field(out, "state") == "deleted"
    assert admin.field(out, "deleted at") == f"{admin.shown(row.deleted_at)} (inactivity)"
    assert re.search(r"frozen -> deleting  inactivity\n.*deleting -> deleted  purged by every service$", out, re.MULTILINE), out
    # Auth no longer resolves its e-mail; a hold comes too late.
    code, out, err = await admin("lifecycle", "status", person.email)
    assert (code, out) == (1, "") and err.startswith("cumulo-admin: ") and err.endswith(" [ACCOUNT_NOT_FOUND]\n"), err
    code, out, err = await admin("lifecycle", "hold", person.account_id, "--reason", "too late")
    assert (code, out) == (1, "") and err.startswith("cumulo-admin: ") and err.endswith(" [ACCOUNT_DELETED]\n"), err


# --- list, report ----------------------------------------------------------------------------


async def test_list_by_state(admin, person, frozen):
    code, out, err = await admin("lifecycle", "list", "--state", "active", "--limit", "1000000")
    assert code == 0, err
    active = admin.listed(out)
    assert active[person.account_id] == "active"
    assert frozen.account_id not in active
    assert set(active.values()) == {"active"}
    code, out, err = await admin("lifecycle", "list", "--state", "frozen", "--limit", "1000000")
    assert code == 0, err
    frozen_ones = admin.listed(out)
    assert frozen_ones[frozen.account_id] == "frozen"
    assert person.account_id not in frozen_ones
    assert set(frozen_ones.values()) == {"frozen"}
    # The next date is the freeze for an active account, the deletion for a frozen one.
    row = await admin.row(frozen.account_id)
    assert f"{frozen.account_id}  frozen    last access {admin.shown(row.last_access_at)}  next {admin.shown(row.delete_at)}" in out


async def test_list_stops_at_the_limit(admin, person, frozen):
    code, out, err = await admin("lifecycle", "list", "--limit", "2")
    assert code == 0, err
    assert len(admin.listed(out)) == 2
    code, out, err = await admin("lifecycle", "list", "--limit", "1000000")
    assert code == 0, err
    everyone = admin.listed(out)
    assert everyone[person.account_id] == "active" and everyone[frozen.account_id] == "frozen"
    assert len(everyone) == len(out.splitlines())  # no account twice across pages


def as_numbers(r: pb.GetReportResponse) -> tuple[int, ...]:
    return (
        r.active, r.frozen, r.deleting, r.deleted, r.held, r.freezes_next_7_days, r.freezes_next_30_days,
        r.deletions_next_7_days, r.deletions_next_30_days, r.stuck_purges,
    )


async def test_report_shows_the_lifecycles_numbers(admin, internal, person, frozen):
    before = as_numbers(await internal.GetReport(pb.GetReportRequest()))
    code, out, err = await admin("lifecycle", "report")
    assert code == 0, err
    after = as_numbers(await internal.GetReport(pb.GetReportRequest()))
    numbers = admin.report(out)
    assert numbers in (before, after)
    active, frozen_count = numbers[0], numbers[1]
    assert active >= 1 and frozen_count >= 1
