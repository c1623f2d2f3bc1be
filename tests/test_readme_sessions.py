"""The README's sync-and-backup and find-my-device sessions, pasted as written: each ```sh block
run by bash from the repository's root against the session's gateway (its address and CA in
place of `make run`'s, a folder of the test's own in place of /tmp, a fresh account in place
of alice, signed up with the README's password). Without `set -e`, as a person pastes it into
a terminal: the sync session shows a conflict, a command that fails on purpose; what each
block must print is checked instead."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pathlib
import re
import subprocess
import sys

import pytest

from cumulo_devstack.testing import PASSWORD, unique_email, verify_email
from cumulo_devstack.testing.readme import shell_blocks

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = pathlib.Path(sys.prefix) / "bin" / "cumulo"


async def _pasted(heading: str, gateway: str, client, mail, scratch: pathlib.Path, *, uses_tmp: bool = True) -> subprocess.CompletedProcess[str]:
    (block,) = shell_blocks(heading)
    for made_run_value in ("127.0.0.1:8080", "var/tls/ca.pem", "alice@example.com", ".venv/bin/cumulo", *(["/tmp/"] if uses_tmp else [])):
        assert made_run_value in block, made_run_value
    email = unique_email()
    await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
    await client.login(email, PASSWORD, device_name="alice's first device")
    await verify_email(client, mail, email)  # as alice did after her signup (the command-line session)
    script = (
        block.replace("/tmp/", f"{scratch}/")  # first: the values put in below may be under /tmp
        .replace("127.0.0.1:8080", gateway)
        .replace("var/tls/ca.pem", os.environ["CUMULO_CA"])
        .replace("var/identity", os.environ["CUMULO_IDENTITY_DIR"])
        .replace("var/mail", str(mail.folder))
        .replace("alice@example.com", email)
        .replace(".venv/bin/cumulo", str(CLI))
    )
    # A home of the session's own: its sessions are kept there, not in the machine's ~/.config.
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}, "HOME": str(scratch)}
    return await asyncio.to_thread(
        subprocess.run, ["bash", "-uo", "pipefail", "-c", script],
        capture_output=True, text=True, timeout=240, cwd=ROOT, env=environ,
    )


@pytest.mark.timeout(300)
async def test_the_readme_sync_and_backup_session(gateway, client, mail, tmp_path):
    done = await _pasted("### Sync between devices, and device backups", gateway, client, mail, tmp_path)
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)  # the last line (cmp ... && echo) succeeded
    # The only error: the second edit of Ann, a conflict shown with the server's record.
    errors = [line for line in done.stderr.splitlines() if line.startswith("cumulo:")]
    assert errors == ["cumulo: 1 conflict: merge with the server's record and push again with its tag"], done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "Ann Li" in out, out
    assert "contacts changed" in out, out  # the watch saw the push
    assert "wifi=home" in out and "identical" in out, out  # the first backup restored whole


@pytest.mark.timeout(300)
async def test_the_readme_find_my_device_session(gateway, client, mail, tmp_path):
    done = await _pasted("### Find my device", gateway, client, mail, tmp_path)
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert not [line for line in done.stderr.splitlines() if line.startswith("cumulo:") or "Traceback" in line], done.stderr
    assert "Alice's phone" in out, out  # devices ls
    for command in ("wipe", "lost_mode", "ring", "locate"):
        assert command in out, (command, out)
    assert "succeeded" in out, out


@pytest.mark.timeout(300)
async def test_the_readme_forgotten_password_session(gateway, client, mail, tmp_path):
    done = await _pasted("### A forgotten password", gateway, client, mail, tmp_path, uses_tmp=False)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, (out, err)
    assert "a code went there" in out and "password set; every session" in out, out
    assert "the old password is gone" in out and "INVALID_CREDENTIALS" in err, (out, err)
    assert out.count("logged in as") == 1, out  # the new password only
    assert re.search(r"^account\s+[0-9a-f-]{36}$", out, re.M), out  # whoami, signed in again
    assert "Traceback" not in err, err


@pytest.mark.timeout(300)
async def test_the_readme_two_step_session(gateway, client, mail, tmp_path):
    done = await _pasted("### Two-step sign-in", gateway, client, mail, tmp_path)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, (out, err)
    assert "otpauth://totp/cumulo:" in out and "two-step sign-in is on" in out, out
    assert "a second step is asked" in out and "SECOND_FACTOR_REQUIRED" in err, (out, err)
    assert out.count("logged in as") == 3, out  # before it was on; then the app's next code, then a recovery code
    assert "two-step sign-in is off" in out, out
    assert "Traceback" not in err, err


@pytest.mark.timeout(300)
async def test_the_readme_take_out_session(gateway, client, mail, tmp_path):
    done = await _pasted("### Take-out: a copy of everything", gateway, client, mail, tmp_path)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, (out, err)
    assert "the photo, byte for byte" in out, (out, err)
    assert re.search(r"^export [0-9a-f-]{36} ready: 1 archive\(s\)", out, re.M), out
    assert "downloaded" in out and "(sha256 verified)" in out, out
    assert '"email_verified_at"' in out, out  # the account's own data, from auth
    assert "Traceback" not in err and "cumulo:" not in err, err
