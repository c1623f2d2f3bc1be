"""`cumulo-admin lifecycle ...` as operators run it: a separate process against the session's
real lifecycle and auth (their internal APIs), on accounts registered through the gateway.

Accounts are aged on purpose, one row at a time (as services/lifecycle/tests do); the
session's sweeper only runs when a test sweeps."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.servers import free_port
from cumulo_devstack.testing import PASSWORD, Ages, eventually, unique_email, unique_phone
from cumulo_lifecycle.adapters.tables import accounts, purge_participants, purges, transitions
from cumulo_sdk import Cumulo

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def admin(lifecycle, auth, *args: str, env: dict[str, str] | None = None, targets: bool = True) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """Runs `cumulo-admin [--lifecycle T --auth T] ARGS...`; returns (exit code, stdout, stderr)."""
    where = ["--lifecycle", lifecycle.target, "--auth", auth.target] if targets else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cumulo_sdk.admin", *where, *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    return process.returncode, out.decode(), err.decode()


def field(out: str, name: str) -> str:
    """The value of one `name   value` line of `status` / `hold` output."""
    found = re.search(rf"^{re.escape(name)} +(.*)$", out, re.MULTILINE)
    assert found, f"no '{name}' line in:\n{out}"
    return found.group(1).strip()


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


# --- accounts --------------------------------------------------------------------------------


@dataclasses.dataclass
class Person:
    login: str  # the e-mail address or phone number it logs in with
    account_id: str


async def row_of(lifecycle, account_id: str) -> Any:  # type: ignore[no-untyped-def]
    async with lifecycle.app.db.read() as conn:
        return (await conn.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account_id)))).first()


async def transitions_of(lifecycle, account_id: str) -> list[Any]:  # type: ignore[no-untyped-def]
    async with lifecycle.app.db.read() as conn:
        return list(
            await conn.execute(
                sa.select(transitions).where(transitions.c.account_id == uuid.UUID(account_id)).order_by(transitions.c.transition_id)
            )
        )


async def sign_up(gateway: str, lifecycle, *, phone: bool = False) -> Person:  # type: ignore[no-untyped-def]
    """An account registered and logged in through the gateway, once the lifecycle knows it
    and has applied its login (no later use of it is on its way)."""
    login = unique_phone() if phone else unique_email()
    async with Cumulo(gateway) as client:
        contact = {"phone": login} if phone else {"email": login}
        await client.register(password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en", **contact)
        account = await client.login(login, PASSWORD, device_name="admin test")

    async def known() -> Any:
        row = await row_of(lifecycle, account.account_id)
        if row is None or row.created_at is None or (row.phone if phone else row.email) != login:
            return None
        return row if row.last_access_at > row.created_at else None

    await eventually(known, what="the lifecycle to know the account and its login")
    return Person(login, account.account_id)


@pytest.fixture(scope="module")
def ages(lifecycle, auth, blob, infra) -> Ages:  # type: ignore[no-untyped-def]
    """Ages one account on purpose (only its row changes; the next sweep acts on it)."""
    return Ages(lifecycle, (auth, blob), infra.nats.url)


@pytest.fixture
async def person(gateway, lifecycle) -> Person:  # type: ignore[no-untyped-def]
    return await sign_up(gateway, lifecycle)


@pytest.fixture(scope="module")
async def frozen(ages, gateway, lifecycle) -> Person:  # type: ignore[no-untyped-def]
    found = await sign_up(gateway, lifecycle)
    await ages.unused_for_a_year(found.account_id)
    await lifecycle.app.ledger.sweep()
    assert (await row_of(lifecycle, found.account_id)).state == "frozen"
    return found


@pytest.fixture
async def internal(lifecycle) -> AsyncIterator[lifecycle_pb2_grpc.LifecycleInternalServiceStub]:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(lifecycle.target) as channel:
        yield lifecycle_pb2_grpc.LifecycleInternalServiceStub(channel)


# --- status ----------------------------------------------------------------------------------


async def test_status_by_account_id(lifecycle, auth, person):
    code, out, err = await admin(lifecycle, auth, "lifecycle", "status", person.account_id)
    assert code == 0, err
    row = await row_of(lifecycle, person.account_id)
    assert field(out, "account") == person.account_id
    assert field(out, "state") == "active"
    assert field(out, "last access") == iso(row.last_access_at)
    assert field(out, "freeze at") == iso(row.freeze_at)
    assert field(out, "legal hold") == "no"
    assert "frozen at" not in out and "delete at" not in out
    assert err == ""


@pytest.mark.parametrize("spelling", ["as-registered", "upper-case", "padded"])
async def test_status_by_email_is_resolved_through_auth(lifecycle, auth, person, spelling):
    login = {"as-registered": person.login, "upper-case": person.login.upper(), "padded": f"  {person.login} "}[spelling]
    code, out, err = await admin(lifecycle, auth, "lifecycle", "status", login)
    assert code == 0, err
    assert field(out, "account") == person.account_id
    assert field(out, "state") == "active"


async def test_status_by_phone_is_resolved_through_auth(gateway, lifecycle, auth):
    someone = await sign_up(gateway, lifecycle, phone=True)
    code, out, err = await admin(lifecycle, auth, "lifecycle", "status", someone.login)
    assert code == 0, err
    assert field(out, "account") == someone.account_id


async def test_status_of_a_frozen_account_shows_its_dates_transitions_and_notices(lifecycle, auth, frozen):
    row = await row_of(lifecycle, frozen.account_id)

    async def noticed() -> Any:
        code, out, err = await admin(lifecycle, auth, "lifecycle", "status", frozen.login)
        assert code == 0, err
        return out if re.search(r"^  \S+  frozen +email +sent ", out, re.MULTILINE) else None

    out = await eventually(noticed, timeout=30, what="the freeze notice to be sent and shown")
    assert field(out, "state") == "frozen"
    assert field(out, "frozen at") == iso(row.frozen_at)
    assert field(out, "delete at") == iso(row.delete_at)
    assert "freeze at" not in out  # only active accounts have one
    assert re.search(r"^transitions\n  \S+  active -> frozen  unused$", out, re.MULTILINE), out
    # Asking is not a use: still frozen.
    assert (await row_of(lifecycle, frozen.account_id)).state == "frozen"


async def test_status_of_a_deleted_account_by_id_and_what_no_longer_works(ages, lifecycle, auth, person):
    await ages.freeze(person.account_id)
    await ages.grace_over(person.account_id)
    await lifecycle.app.ledger.sweep()

    async def deleted() -> Any:
        row = await row_of(lifecycle, person.account_id)
        return row if row.state == "deleted" else None

    row = await eventually(deleted, timeout=30, what="the purge to finish")
    code, out, err = await admin(lifecycle, auth, "lifecycle", "status", person.account_id)
    assert code == 0, err
    assert field(out, "state") == "deleted"
    assert field(out, "deleted at") == f"{iso(row.deleted_at)} (inactivity)"
    assert re.search(r"frozen -> deleting  inactivity\n.*deleting -> deleted  purged by every service$", out, re.MULTILINE), out
    # Auth no longer resolves its e-mail; a hold comes too late.
    code, out, err = await admin(lifecycle, auth, "lifecycle", "status", person.login)
    assert (code, out) == (1, "") and err.startswith("cumulo-admin: NOT_FOUND ACCOUNT_NOT_FOUND"), err
    code, out, err = await admin(lifecycle, auth, "lifecycle", "hold", person.account_id, "--reason", "too late")
    assert (code, out) == (1, "") and err.startswith("cumulo-admin: FAILED_PRECONDITION ACCOUNT_DELETED"), err


# --- list, report ----------------------------------------------------------------------------


def listed(out: str) -> dict[str, str]:
    """account id -> state, from `list` output (every line must be an account line)."""
    found = {}
    for line in out.splitlines():
        match = re.fullmatch(rf"({UUID})  (\w+) +last access \S+  next \S+(  HELD)?", line)
        assert match, f"unexpected line: {line!r}"
        found[match.group(1)] = match.group(2)
    return found


async def test_list_by_state(lifecycle, auth, person, frozen):
    code, out, err = await admin(lifecycle, auth, "lifecycle", "list", "--state", "active", "--limit", "1000000")
    assert code == 0, err
    active = listed(out)
    assert active[person.account_id] == "active"
    assert frozen.account_id not in active
    assert set(active.values()) == {"active"}
    code, out, err = await admin(lifecycle, auth, "lifecycle", "list", "--state", "frozen", "--limit", "1000000")
    assert code == 0, err
    frozen_ones = listed(out)
    assert frozen_ones[frozen.account_id] == "frozen"
    assert person.account_id not in frozen_ones
    assert set(frozen_ones.values()) == {"frozen"}
    # The next date is the freeze for an active account, the deletion for a frozen one.
    row = await row_of(lifecycle, frozen.account_id)
    assert f"{frozen.account_id}  frozen    last access {iso(row.last_access_at)}  next {iso(row.delete_at)}" in out


async def test_list_stops_at_the_limit(lifecycle, auth, person, frozen):
    code, out, err = await admin(lifecycle, auth, "lifecycle", "list", "--limit", "2")
    assert code == 0, err
    assert len(listed(out)) == 2
    code, out, err = await admin(lifecycle, auth, "lifecycle", "list", "--limit", "1000000")
    assert code == 0, err
    everyone = listed(out)
    assert everyone[person.account_id] == "active" and everyone[frozen.account_id] == "frozen"
    assert len(everyone) == len(out.splitlines())  # no account twice across pages


REPORT_LINES = [
    r"active +(\d+)",
    r"frozen +(\d+)",
    r"deleting +(\d+)",
    r"deleted +(\d+)",
    r"held +(\d+)",
    r"freezes due +next 7 days: (\d+) +next 30 days: (\d+)",
    r"deletions due +next 7 days: (\d+) +next 30 days: (\d+)",
    r"stuck purges +(\d+)",
]


def report_numbers(out: str) -> tuple[int, ...]:
    lines = out.splitlines()
    assert len(lines) == len(REPORT_LINES), out
    numbers: list[int] = []
    for line, pattern in zip(lines, REPORT_LINES):
        match = re.fullmatch(pattern, line)
        assert match, f"{line!r} is not {pattern!r}"
        numbers += [int(n) for n in match.groups()]
    return tuple(numbers)


def as_numbers(r: pb.GetReportResponse) -> tuple[int, ...]:
    return (
        r.active, r.frozen, r.deleting, r.deleted, r.held, r.freezes_next_7_days, r.freezes_next_30_days,
        r.deletions_next_7_days, r.deletions_next_30_days, r.stuck_purges,
    )


async def test_report_shows_the_lifecycles_numbers(lifecycle, auth, internal, person, frozen):
    before = as_numbers(await internal.GetReport(pb.GetReportRequest()))
    code, out, err = await admin(lifecycle, auth, "lifecycle", "report")
    assert code == 0, err
    after = as_numbers(await internal.GetReport(pb.GetReportRequest()))
    numbers = report_numbers(out)
    assert numbers in (before, after)
    active, frozen_count = numbers[0], numbers[1]
    assert active >= 1 and frozen_count >= 1


# --- holds -----------------------------------------------------------------------------------


async def test_hold_then_status_shows_it_then_release(lifecycle, auth, person):
    code, out, err = await admin(lifecycle, auth, "--actor", "legal team", "lifecycle", "hold", person.login, "--reason", "court order 17")
    assert code == 0, err
    assert field(out, "account") == person.account_id
    assert field(out, "legal hold") == "yes: court order 17"
    row = await row_of(lifecycle, person.account_id)
    assert row.held and row.hold_reason == "court order 17" and row.hold_actor == "legal team"

    code, out, err = await admin(lifecycle, auth, "lifecycle", "status", person.account_id)
    assert code == 0, err
    assert field(out, "legal hold") == "yes: court order 17"
    assert "legal hold placed by legal team: court order 17" in out

    code, out, err = await admin(lifecycle, auth, "lifecycle", "release", person.account_id, "--reason", "order lifted", env={"CUMULO_ADMIN_ACTOR": "registry"})
    assert code == 0, err
    assert field(out, "legal hold") == "no"
    row = await row_of(lifecycle, person.account_id)
    assert not row.held and row.hold_reason == ""
    code, out, err = await admin(lifecycle, auth, "lifecycle", "status", person.account_id)
    assert code == 0, err
    assert field(out, "legal hold") == "no"
    assert "legal hold released by registry: order lifted" in out
    assert [t.reason for t in await transitions_of(lifecycle, person.account_id)] == [
        "legal hold placed by legal team: court order 17",
        "legal hold released by registry: order lifted",
    ]


async def test_a_held_account_is_marked_in_the_list_and_counted(lifecycle, auth, internal, person):
    held_before = (await internal.GetReport(pb.GetReportRequest())).held
    code, _, err = await admin(lifecycle, auth, "lifecycle", "hold", person.account_id, "--reason", "audit")
    assert code == 0, err
    try:
        code, out, err = await admin(lifecycle, auth, "lifecycle", "list", "--state", "active", "--limit", "1000000")
        assert code == 0, err
        (line,) = [l for l in out.splitlines() if l.startswith(person.account_id)]
        assert line.endswith("  HELD")
        code, out, err = await admin(lifecycle, auth, "lifecycle", "report")
        assert code == 0, err
        assert report_numbers(out)[4] == held_before + 1
    finally:
        await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=person.account_id, held=False, reason="done", actor="test"))


@pytest.mark.parametrize("command", ["hold", "release"])
async def test_hold_or_release_without_a_reason_is_a_usage_error(lifecycle, auth, person, command):
    code, out, err = await admin(lifecycle, auth, "lifecycle", command, person.account_id)
    assert code == 2
    assert "--reason" in err and "required" in err
    assert out == ""
    assert not (await row_of(lifecycle, person.account_id)).held
    assert await transitions_of(lifecycle, person.account_id) == []


NAMELESS_USER = """
import os, pwd, runpy, sys

def no_entry(uid):
    raise KeyError(f"getpwuid(): uid not found: {uid}")

pwd.getpwuid = no_entry  # what a container user without a passwd entry looks like
sys.argv = ["cumulo-admin", *sys.argv[1:]]
runpy.run_module("cumulo_sdk.admin", run_name="__main__")
"""


async def test_hold_without_actor_by_a_nameless_os_user_does_not_crash(lifecycle, auth, person):
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "LNAME", "USERNAME", "CUMULO_ADMIN_ACTOR")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", NAMELESS_USER, "--lifecycle", lifecycle.target, "--auth", auth.target,
        "lifecycle", "hold", person.account_id, "--reason", "case 9",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    try:
        assert "Traceback" not in err.decode(), err.decode()
        # Either held with some actor on record, or refused with a message: no crash.
        assert process.returncode in (0, 1)
    finally:
        await _release(lifecycle, person.account_id)


async def _release(lifecycle, account_id: str) -> None:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(lifecycle.target) as channel:
        await lifecycle_pb2_grpc.LifecycleInternalServiceStub(channel).SetLegalHold(
            pb.SetLegalHoldRequest(account_id=account_id, held=False, reason="test over", actor="test"), timeout=10
        )


async def test_a_blank_reason_is_refused_by_the_lifecycle(lifecycle, auth, person):
    code, out, err = await admin(lifecycle, auth, "lifecycle", "hold", person.account_id, "--reason", "  ")
    assert code == 1
    assert "INVALID_ARGUMENT" in err and "reason" in err
    assert not (await row_of(lifecycle, person.account_id)).held


# --- sweeps ----------------------------------------------------------------------------------


async def test_a_dry_run_sweep_lists_the_freeze_and_changes_nothing(ages, lifecycle, auth, person):
    await ages.unused_for_a_year(person.account_id)
    before = await row_of(lifecycle, person.account_id)
    code, out, err = await admin(lifecycle, auth, "lifecycle", "sweep", "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert re.search(rf"^{person.account_id}  freeze +due \S+$", out, re.MULTILINE), out
    planned = [l for l in lines[:-1] if re.match(UUID, l)]
    assert lines[-1] == f"would do {len(planned)} action(s)"
    assert len(planned) == len(lines) - 1
    after = await row_of(lifecycle, person.account_id)
    assert after == before  # the row, version and schedule included, is as it was
    assert await transitions_of(lifecycle, person.account_id) == []


async def test_a_sweep_freezes_the_aged_account(ages, lifecycle, auth, person):
    await ages.unused_for_a_year(person.account_id)
    code, out, err = await admin(lifecycle, auth, "lifecycle", "sweep")
    assert code == 0, err
    assert re.search(rf"^{person.account_id}  freeze +due \S+$", out, re.MULTILINE), out
    done = re.fullmatch(r"did (\d+) action\(s\)", out.splitlines()[-1])
    assert done and int(done.group(1)) >= 1, out
    assert (await row_of(lifecycle, person.account_id)).state == "frozen"
    code, out, err = await admin(lifecycle, auth, "lifecycle", "status", person.account_id)
    assert code == 0, err
    assert field(out, "state") == "frozen"
    # Nothing is due for it any more: a second dry run does not plan it again.
    code, out, err = await admin(lifecycle, auth, "lifecycle", "sweep", "--dry-run")
    assert code == 0, err
    assert person.account_id not in out


async def test_a_sweep_with_a_negative_limit_is_refused(lifecycle, auth):
    code, out, err = await admin(lifecycle, auth, "lifecycle", "sweep", "--dry-run", "--limit", "-1")
    assert code == 2
    assert "--limit" in err and "must be 1 or more" in err


# --- purges ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Purges:
    stuck: str
    fresh: str


@pytest.fixture
async def purges_in_progress(lifecycle) -> AsyncIterator[Purges]:  # type: ignore[no-untyped-def]
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


def purge_blocks(out: str) -> dict[str, list[str]]:
    """account id -> its purge line and its participants' lines, from `purges` output."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if re.match(UUID, line):
            current = line.split()[0]
            blocks[current] = [line]
        else:
            assert current is not None and line.startswith("    "), out
            blocks[current].append(line)
    return blocks


async def test_purges_lists_those_in_progress_and_marks_the_stuck(lifecycle, auth, purges_in_progress):
    code, out, err = await admin(lifecycle, auth, "lifecycle", "purges")
    assert code == 0, err
    blocks = purge_blocks(out)
    stuck, fresh = blocks[purges_in_progress.stuck], blocks[purges_in_progress.fresh]
    assert re.fullmatch(rf"{purges_in_progress.stuck}  inactivity  started \S+  STUCK", stuck[0])
    assert re.fullmatch(r"    auth +done \S+, 4 items", stuck[1])
    assert re.fullmatch(r"    blob +waiting \(asked 3x\)", stuck[2])
    assert re.fullmatch(rf"{purges_in_progress.fresh}  cancellation  started \S+", fresh[0])
    assert [re.sub(r" +", " ", l.strip()) for l in fresh[1:]] == ["auth waiting (asked 1x)", "blob waiting (asked 1x)"]


async def test_purges_stuck_lists_only_the_stuck(lifecycle, auth, purges_in_progress):
    code, out, err = await admin(lifecycle, auth, "lifecycle", "purges", "--stuck")
    assert code == 0, err
    blocks = purge_blocks(out)
    assert purges_in_progress.stuck in blocks
    assert purges_in_progress.fresh not in blocks
    assert all(lines[0].endswith("  STUCK") for lines in blocks.values())
    code, out, err = await admin(lifecycle, auth, "lifecycle", "report")
    assert code == 0, err
    assert report_numbers(out)[-1] >= 1


async def test_purges_says_so_when_there_are_none(lifecycle, auth, internal):
    if (await internal.ListPurges(pb.ListPurgesRequest(stuck_only=True))).purges:
        pytest.skip("another test of the session left a stuck purge")
    code, out, err = await admin(lifecycle, auth, "lifecycle", "purges", "--stuck")
    assert (code, out, err) == (0, "no stuck purges\n", "")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, expected",
    [
        (["status", "{random_id}"], "NOT_FOUND ACCOUNT_NOT_FOUND"),
        (["status", "nobody-{random_id}@example.com"], "NOT_FOUND ACCOUNT_NOT_FOUND"),
        (["status", "+8613000000000"], "NOT_FOUND ACCOUNT_NOT_FOUND"),
        (["status", "not-an-account"], "INVALID_ARGUMENT"),
        (["status", "not an e-mail@"], "INVALID_ARGUMENT"),
        (["hold", "{random_id}", "--reason", "r"], "NOT_FOUND ACCOUNT_NOT_FOUND"),
        (["release", "nobody-{random_id}@example.com", "--reason", "r"], "NOT_FOUND ACCOUNT_NOT_FOUND"),
    ],
    ids=["unknown-id", "unknown-email", "unknown-phone", "not-an-id", "bad-email", "hold-unknown-id", "release-unknown-email"],
)
async def test_an_unknown_account_exits_1_with_a_message(lifecycle, auth, command, expected):
    random_id = str(uuid.uuid4())
    args = [part.format(random_id=random_id) for part in command]
    code, out, err = await admin(lifecycle, auth, "lifecycle", *args)
    assert code == 1, (out, err)
    assert out == ""
    assert err.startswith(f"cumulo-admin: {expected}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


async def test_an_unreachable_lifecycle_exits_1_with_a_message(lifecycle, auth):
    code, out, err = await admin(
        lifecycle, auth, "--lifecycle", f"127.0.0.1:{free_port()}", "--auth", auth.target, "lifecycle", "report", targets=False
    )
    assert code == 1
    assert err.startswith("cumulo-admin: UNAVAILABLE"), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args, complaint",
    [
        ([], "required"),
        (["lifecycle"], "required"),
        (["lifecycle", "status"], "account"),
        (["lifecycle", "list", "--state", "sleeping"], "invalid choice"),
        (["lifecycle", "list", "--limit", "many"], "invalid"),
        (["lifecycle", "list", "--limit", "0"], "must be 1 or more"),
        (["lifecycle", "frobnicate"], "invalid choice"),
    ],
    ids=["nothing", "no-command", "status-without-account", "unknown-state", "limit-not-a-number", "limit-zero", "unknown-command"],
)
async def test_usage_errors_exit_2(lifecycle, auth, args, complaint):
    code, out, err = await admin(lifecycle, auth, *args)
    assert code == 2
    assert complaint in err and "usage: cumulo-admin" in err
    assert out == ""

