"""`cumulo-admin lifecycle hold | release`: legal holds as operators place and lift them, who
did it on record: the operator's identity, then the name given (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo_devstack.testing.cli import console_script


async def test_hold_then_status_shows_it_then_release(admin, person):
    code, out, err = await admin("--actor", "legal team", "lifecycle", "hold", person.email, "--reason", "court order 17")
    assert code == 0, err
    assert admin.field(out, "account") == person.account_id
    assert admin.field(out, "legal hold") == "yes: court order 17"
    assert (await admin.row(person.account_id)).held
    (placed,) = await admin.transitions(person.account_id)
    assert (placed.reason, placed.actor) == ("legal hold placed by operator: legal team: court order 17", "operator: legal team")

    code, out, err = await admin("lifecycle", "status", person.account_id)
    assert code == 0, err
    assert admin.field(out, "legal hold") == "yes: court order 17"
    assert "legal hold placed by operator: legal team: court order 17" in out

    code, out, err = await admin("lifecycle", "release", person.account_id, "--reason", "order lifted", environ={"CUMULO_ADMIN_ACTOR": "registry"})
    assert code == 0, err
    assert admin.field(out, "legal hold") == "no"
    assert not (await admin.row(person.account_id)).held
    code, out, err = await admin("lifecycle", "status", person.account_id)
    assert code == 0, err
    assert admin.field(out, "legal hold") == "no"
    assert "legal hold released by operator: registry: order lifted" in out
    assert [(t.reason, t.actor) for t in await admin.transitions(person.account_id)] == [
        ("legal hold placed by operator: legal team: court order 17", "operator: legal team"),
        ("legal hold released by operator: registry: order lifted", "operator: registry"),
    ]


async def test_a_held_account_is_marked_in_the_list_and_counted(admin, internal, person):
    held_before = (await internal.GetReport(pb.GetReportRequest())).held
    code, _, err = await admin("lifecycle", "hold", person.account_id, "--reason", "audit")
    assert code == 0, err
    try:
        code, out, err = await admin("lifecycle", "list", "--state", "active", "--limit", "1000000")
        assert code == 0, err
        (line,) = [row for row in out.splitlines() if row.startswith(person.account_id)]
        assert line.endswith("  HELD")
        code, out, err = await admin("lifecycle", "report")
        assert code == 0, err
        assert admin.report(out)[4] == held_before + 1
    finally:
        await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=person.account_id, held=False, reason="done", actor="test"))


@pytest.mark.parametrize("command", ["hold", "release"])
async def test_hold_or_release_without_a_reason_is_a_usage_error(admin, person, command):
    code, out, err = await admin("lifecycle", command, person.account_id)
    assert code == 2
    assert "--reason" in err and "required" in err
    assert out == ""
    assert not (await admin.row(person.account_id)).held
    assert await admin.transitions(person.account_id) == []


NAMELESS_USER = """
import pwd, runpy, sys

def no_entry(uid):
    raise KeyError(f"getpwuid(): uid not found: {uid}")

pwd.getpwuid = no_entry  # what a container user without a passwd entry looks like
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


async def test_hold_without_actor_by_a_nameless_os_user_does_not_crash(lifecycle, auth, internal, person):
    """In a process of its own (the OS user is the process's): the installed console script,
    also the `cumulo-admin lifecycle` group's smoke test."""
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "LNAME", "USERNAME", "CUMULO_ADMIN_ACTOR")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", NAMELESS_USER, str(console_script("cumulo-admin")), "--lifecycle", lifecycle.target, "--auth", auth.target,
        "lifecycle", "hold", person.account_id, "--reason", "case 9",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    try:
        assert "Traceback" not in err.decode(), err.decode()
        # Either held with some actor on record, or refused with a message: no crash.
        assert process.returncode in (0, 1)
        if process.returncode == 0:
            assert "legal hold   yes: case 9" in out.decode()
    finally:
        await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=person.account_id, held=False, reason="test over", actor="test"), timeout=10)


async def test_a_blank_reason_is_refused_by_the_lifecycle(admin, person):
    code, out, err = await admin("lifecycle", "hold", person.account_id, "--reason", "  ")
    assert code == 1
    assert "INVALID_ARGUMENT" in err and "reason" in err
    assert not (await admin.row(person.account_id)).held
