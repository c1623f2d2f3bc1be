"""`cumulo-admin lifecycle sweep | purges`: what is due, done on request, and the deletions in
progress (fixtures in conftest.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo_lifecycle.adapters.tables import purge_participants, purges

# --- sweeps ----------------------------------------------------------------------------------


async def test_a_dry_run_sweep_lists_the_freeze_and_changes_nothing(admin, ages, person):
    await ages.unused_for_a_year(person.account_id)
    before = await admin.row(person.account_id)
    code, out, err = await admin("lifecycle", "sweep", "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert re.search(rf"^{person.account_id}  freeze +due {admin.TIME}$", out, re.MULTILINE), out
    planned = [line for line in lines[:-1] if re.match(admin.UUID, line)]
    assert lines[-1] == f"would do {len(planned)} action{'' if len(planned) == 1 else 's'}"
    assert len(planned) == len(lines) - 1
    after = await admin.row(person.account_id)
    assert after == before  # the row, version and schedule included, is as it was
    assert await admin.transitions(person.account_id) == []


async def test_a_sweep_freezes_the_aged_account(admin, ages, person):
    await ages.unused_for_a_year(person.account_id)
    code, out, err = await admin("lifecycle", "sweep")
    assert code == 0, err
    assert re.search(rf"^{person.account_id}  freeze +due {admin.TIME}$", out, re.MULTILINE), out
    done = re.fullmatch(r"did (\d+) actions?", out.splitlines()[-1])
    assert done and int(done.group(1)) >= 1, out
    assert (await admin.row(person.account_id)).state == "frozen"
    code, out, err = await admin("lifecycle", "status", person.account_id)
    assert code == 0, err
    assert admin.field(out, "state") == "frozen"
    # Nothing is due for it any more: a second dry run does not plan it again.
    code, out, err = await admin("lifecycle", "sweep", "--dry-run")
    assert code == 0, err
    assert person.account_id not in out


async def test_a_sweep_with_a_negative_limit_is_refused(admin):
    code, out, err = await admin("lifecycle", "sweep", "--dry-run", "--limit", "-1")
    assert code == 2
    assert "--limit" in err and "must be 1 or more" in err


# --- purges ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Purges:
    stuck: str
    fresh: str


@pytest.fixture
async def purges_in_progress(lifecycle: Any) -> AsyncIterator[Purges]:
    """Two purges of made-up accounts: one started two hours ago with blob still silent
    (stuck), one started now with both services still at it. Nothing retries them (no next
    retry time), and they are gone after the test."""
    now = lifecycle.clock.now()
    stuck, fresh = uuid.uuid4(), uuid.uuid4()
    async with lifecycle.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(purges),
            [
                {"account_id": stuck, "reason": "inactivity", "started_at": now - dt.timedelta(hours=2), "attempt": 3, "next_retry_at": None, "completed_at": None},
                {"account_id": fresh, "reason": "cancellation", "started_at": now, "attempt": 1, "next_retry_at": None, "completed_at": None},
            ],
        )
        await uow.execute(
            sa.insert(purge_participants),
            [
                {"account_id": stuck, "service": "auth", "requested_at": now - dt.timedelta(hours=2), "attempts": 1,
                 "completed_at": now - dt.timedelta(hours=2), "items_deleted": 4},
                {"account_id": stuck, "service": "blob", "requested_at": now - dt.timedelta(minutes=5), "attempts": 3,
                 "completed_at": None, "items_deleted": 0},
                {"account_id": fresh, "service": "auth", "requested_at": now, "attempts": 1, "completed_at": None, "items_deleted": 0},
                {"account_id": fresh, "service": "blob", "requested_at": now, "attempts": 1, "completed_at": None, "items_deleted": 0},
            ],
        )
        await uow.commit()
    try:
        yield Purges(str(stuck), str(fresh))
    finally:
        async with lifecycle.app.db.unit_of_work() as uow:
            await uow.execute(sa.delete(purge_participants).where(purge_participants.c.account_id.in_([stuck, fresh])))
            await uow.execute(sa.delete(purges).where(purges.c.account_id.in_([stuck, fresh])))
            await uow.commit()


def purge_blocks(admin: Any, out: str) -> dict[str, list[str]]:
    """account id -> its purge line and its participants' lines, from `purges` output."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if re.match(admin.UUID, line):
            current = line.split()[0]
            blocks[current] = [line]
        else:
            assert current is not None and line.startswith("    "), out
            blocks[current].append(line)
    return blocks


async def test_purges_lists_those_in_progress_and_marks_the_stuck(admin, purges_in_progress):
    code, out, err = await admin("lifecycle", "purges")
    assert code == 0, err
    blocks = purge_blocks(admin, out)
    stuck, fresh = blocks[purges_in_progress.stuck], blocks[purges_in_progress.fresh]
    assert re.fullmatch(rf"{purges_in_progress.stuck}  inactivity  started {admin.TIME}  STUCK", stuck[0])
    assert re.fullmatch(rf"    auth +done {admin.TIME}, 4 items", stuck[1])
    assert re.fullmatch(r"    blob +waiting \(asked 3x\)", stuck[2])
    assert re.fullmatch(rf"{purges_in_progress.fresh}  cancellation  started {admin.TIME}", fresh[0])
    assert [re.sub(r" +", " ", line.strip()) for line in fresh[1:]] == ["auth waiting (asked 1x)", "blob waiting (asked 1x)"]


async def test_purges_stuck_lists_only_the_stuck(admin, purges_in_progress):
    code, out, err = await admin("lifecycle", "purges", "--stuck")
    assert code == 0, err
    blocks = purge_blocks(admin, out)
    assert purges_in_progress.stuck in blocks
    assert purges_in_progress.fresh not in blocks
    assert all(lines[0].endswith("  STUCK") for lines in blocks.values())
    code, out, err = await admin("lifecycle", "report")
    assert code == 0, err
    assert admin.report(out)[-1] >= 1


async def test_purges_says_so_when_there_are_none(admin, internal):
    if (await internal.ListPurges(pb.ListPurgesRequest(stuck_only=True))).purges:
        pytest.skip("another test of the session left a stuck purge")
    code, out, err = await admin("lifecycle", "purges", "--stuck")
    assert (code, out, err) == (0, "no stuck purges\n", "")
