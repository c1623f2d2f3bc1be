"""`cumulo terms`, signup's password check, the accounts' `--json` answers, and the README's
Python SDK example, pasted as it is written there."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pathlib
import re
import sys

from cumulo_devstack.testing import PASSWORD, unique_email
from cumulo_devstack.testing.cli import run_command

TERMS = "2026-11"
# The README's "Calling the API" example, as the README shows it.
README_EXAMPLE = """\
import asyncio
from cumulo_sdk import Cumulo, CumuloRpcError

async def main():
    async with Cumulo("127.0.0.1:8080") as cloud:
        try:
            await cloud.login("alice@example.com", "correct horse battery staple", device_name="usage script")
        except CumuloRpcError as err:
            print(f"login refused: {err.reason}")  # e.g. INVALID_CREDENTIALS, LOGIN_THROTTLED
            return
        try:
            me = (await cloud.whoami()).account
            print(f"{me.email}: account {me.account_id}, member since {me.created_at.ToDatetime():%Y-%m-%d}")
            for node in await cloud.files.ls():  # the root folder
                print(f"{node.name:<24} {node.size:>12,} bytes")
            usage = await cloud.files.usage()
            print(f"{usage.used:,} of {usage.quota:,} bytes used")
        finally:
            await cloud.logout()  # ends this session: it does not stay behind in `cumulo sessions`

asyncio.run(main())
"""


async def cumulo(gateway: str, home: pathlib.Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    result = await run_command("cumulo", "--gateway", gateway, *args, environ={"CUMULO_HOME": str(home)}, stdin=stdin)
    return result.returncode, result.stdout, result.stderr


async def test_terms_are_shown_without_an_account(gateway, tmp_path):
    code, out, err = await cumulo(gateway, tmp_path, "terms")
    assert code == 0, err
    assert out.splitlines()[0] == f"cumulo Terms of Service, version {TERMS}"
    assert "12 consecutive calendar months" in out
    code, out, err = await cumulo(gateway, tmp_path, "terms", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["version"] == TERMS and document["text"].startswith("cumulo Terms of Service")


async def test_signup_without_accepting_points_to_the_terms(gateway, tmp_path):
    code, _, err = await cumulo(gateway, tmp_path, "signup", "--email", unique_email(), "--birth-date", "1990-05-17")
    assert code == 2
    assert f"version {TERMS}" in err and "cumulo terms" in err and "--accept-terms" in err


async def test_a_password_against_the_rule_is_refused_before_anything_else(gateway, tmp_path):
    """Checked first: a minor's signup with a short password hears about the password (the
    registration, which would refuse the minor, never happens), and nothing is created."""
    email = unique_email()
    code, out, err = await cumulo(
        gateway, tmp_path, "signup", "--email", email, "--birth-date", "2015-01-01", "--accept-terms", stdin="short\n"
    )
    assert (code, out) == (1, "")
    assert "at least 8 characters" in err and "GUARDIAN_REQUIRED" not in err and "short" not in err
    code, _, err = await cumulo(
        gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=email + "\n"
    )
    assert code == 1 and "must not be the account's e-mail address" in err
    code, out, err = await cumulo(
        gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n"
    )
    assert code == 0 and f"created for {email}" in out, err


async def test_account_commands_answer_in_json(gateway, tmp_path):
    email = unique_email()
    await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    code, _, err = await cumulo(gateway, tmp_path, "login", email, "--device-name", "laptop", stdin=PASSWORD + "\n")
    assert code == 0, err

    code, out, err = await cumulo(gateway, tmp_path, "whoami", "--json")
    assert code == 0, err
    me = json.loads(out)
    assert me["account"]["email"] == email and me["account"]["status"] == "active"
    assert me["account"]["birth_date"] == {"year": 1990, "month": 5, "day": 17}
    assert me["current_terms_version"] == TERMS
    assert dt.datetime.fromisoformat(me["account"]["created_at"]).utcoffset() == dt.timedelta(0)

    code, out, err = await cumulo(gateway, tmp_path, "sessions", "--json")
    assert code == 0, err
    [session] = json.loads(out)["sessions"]
    assert session["device_name"] == "laptop" and session["current"] is True
    assert dt.datetime.fromisoformat(session["last_used_at"]) <= dt.datetime.now(dt.UTC)

    code, out, err = await cumulo(gateway, tmp_path, "account", "state", "--json")
    assert code == 0, err
    state = json.loads(out)
    assert state["state"] == "active" and state["frozen_at"] is None and dt.datetime.fromisoformat(state["freeze_at"])

    code, out, err = await cumulo(gateway, tmp_path, "sessions")
    assert code == 0, err
    assert re.search(r"laptop +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+$", out, re.MULTILINE), out  # last used: local time, its zone


def test_the_readme_shows_the_example_this_file_runs():
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"```python\n{README_EXAMPLE}```" in readme


async def test_the_readme_python_example_prints_what_a_person_reads(gateway, tmp_path):
    email = unique_email()
    code, _, err = await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    assert code == 0, err
    photo = tmp_path / "harbour.jpg"
    photo.write_bytes(b"x" * 2048)
    await cumulo(gateway, tmp_path, "login", email, stdin=PASSWORD + "\n")
    assert (await cumulo(gateway, tmp_path, "files", "put", str(photo), "/"))[0] == 0

    script = README_EXAMPLE.replace("127.0.0.1:8080", gateway).replace("alice@example.com", email)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith(f"{email}: account ") and "member since 20" in lines[0]
    assert lines[1].split() == ["harbour.jpg", "2,048", "bytes"]
    assert lines[2].startswith("2,048 of ") and lines[2].endswith(" bytes used")
    assert "{" not in out.decode()  # no protobuf dump
    # It logged out: the account's only session is the one `cumulo login` left.
    code, out, err = await cumulo(gateway, tmp_path, "sessions", "--json")
    assert code == 0, err
    assert [session["client_id"] for session in json.loads(out)["sessions"]] == ["cumulo-cli"]
    assert json.loads(out)["sessions"][0]["current"] is True

    wrong = script.replace("correct horse battery staple", "not the password")
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", wrong, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert out.decode() in ("login refused: INVALID_CREDENTIALS\n", "login refused: LOGIN_THROTTLED\n")
