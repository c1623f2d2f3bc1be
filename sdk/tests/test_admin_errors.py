"""`cumulo-admin` refusals: unknown accounts, an unreachable lifecycle, usage errors (fixtures
in conftest.py)."""

from __future__ import annotations

import uuid

import pytest

from cumulo_devstack.servers import free_port


@pytest.mark.parametrize(
    "command, expected",
    [
        (["status", "{random_id}"], "ACCOUNT_NOT_FOUND"),
        (["status", "nobody-{random_id}@example.com"], "ACCOUNT_NOT_FOUND"),
        (["status", "+8613000000000"], "ACCOUNT_NOT_FOUND"),
        (["status", "not-an-account"], "INVALID_ARGUMENT"),
        (["status", "not an e-mail@"], "INVALID_ARGUMENT"),
        (["hold", "{random_id}", "--reason", "r"], "ACCOUNT_NOT_FOUND"),
        (["release", "nobody-{random_id}@example.com", "--reason", "r"], "ACCOUNT_NOT_FOUND"),
    ],
    ids=["unknown-id", "unknown-email", "unknown-phone", "not-an-id", "bad-email", "hold-unknown-id", "release-unknown-email"],
)
async def test_an_unknown_account_exits_1_with_a_message(admin, command, expected):
    random_id = str(uuid.uuid4())
    args = [part.format(random_id=random_id) for part in command]
    code, out, err = await admin("lifecycle", *args)
    assert code == 1, (out, err)
    assert out == ""
    assert err.startswith("cumulo-admin: ") and err.endswith(f" [{expected}]\n"), err  # the reason once, for scripts
    assert err.count("\n") == 1 and err.count(expected) == 1 and "Traceback" not in err


async def test_an_unreachable_lifecycle_exits_1_with_a_message(admin, auth):
    nowhere = f"127.0.0.1:{free_port()}"
    code, out, err = await admin("--lifecycle", nowhere, "--auth", auth.target, "lifecycle", "report", targets=False)
    assert code == 1
    assert err == (
        f"cumulo-admin: cannot reach the lifecycle service at {nowhere}. Is `make run` going? "
        "Set --lifecycle or CUMULO_LIFECYCLE_TARGET to its internal address. [SERVICE_UNREACHABLE]\n"
    ), err


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
async def test_usage_errors_exit_2(admin, args, complaint):
    code, out, err = await admin(*args)
    assert code == 2
    assert complaint in err and "usage: cumulo-admin" in err
    assert out == ""


async def test_roles_are_given_and_all_withdrawn_and_an_unknown_one_is_refused(admin, person):
    code, out, err = await admin("auth", "roles", person.email, "moderator", "--reason", "joins the team")
    assert code == 0, err
    assert out.startswith("roles: moderator")
    code, out, err = await admin("auth", "roles", person.email, "--reason", "leaves the team")
    assert code == 0, err
    assert out.startswith("roles: none")
    code, out, err = await admin("auth", "roles", person.email, "admin", "--reason", "r")
    assert code == 2 and "unknown role 'admin'" in err
