"""The `cumulo` command as people use it: the README's session, the 0600 credentials file,
silent refresh, and two commands at once sharing one session. Commands run in-process; the
installed console script runs once per command group."""

import asyncio
import datetime as dt
import json
import os
import pathlib
import stat
import uuid

import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo_devstack.testing import PASSWORD, code_sent_to, unique_phone
from cumulo_devstack.testing.cli import run_command
from cumulo_sdk import Cumulo, TokenStore


async def cumulo(gateway: str, home: pathlib.Path, *args: str, stdin: str = "", process: bool = False) -> tuple[int, str, str]:
    result = await run_command(
        "cumulo", "--gateway", gateway, *args, environ={"CUMULO_HOME": str(home)}, stdin=stdin, process=process
    )
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def email():
    return f"cli-{uuid.uuid4().hex[:10]}@example.com"


async def test_readme_session_signup_login_whoami_sessions_logout(gateway, tmp_path, email):
    code, out, err = await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    assert code == 0, err
    assert "created" in out
    code, out, err = await cumulo(gateway, tmp_path, "login", email, "--device-name", "laptop", stdin=PASSWORD + "\n")
    assert code == 0, err
    credentials = tmp_path / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert PASSWORD not in credentials.read_text()
    code, out, err = await cumulo(gateway, tmp_path, "whoami")
    assert code == 0, err
    assert email in out and "status    active" in out
    code, out, err = await cumulo(gateway, tmp_path, "sessions")
    assert code == 0, err
    assert "laptop" in out and out.lstrip().startswith("*")
    code, out, err = await cumulo(gateway, tmp_path, "logout")
    assert code == 0, err
    assert not credentials.exists()
    code, out, err = await cumulo(gateway, tmp_path, "whoami")
    assert code == 1
    assert "NOT_LOGGED_IN" in err


async def test_signup_without_accepting_the_terms_is_refused(gateway, tmp_path, email):
    code, out, err = await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", stdin=PASSWORD + "\n")
    assert code == 2
    assert "--accept-terms" in err


async def test_wrong_password_says_so_without_echoing_it(gateway, tmp_path, email):
    await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    code, out, err = await cumulo(gateway, tmp_path, "login", email, stdin="not the password at all\n")
    assert code == 1
    assert "INVALID_CREDENTIALS" in err
    assert "not the password" not in err + out


async def test_expired_access_token_is_refreshed_silently(gateway, tmp_path, email):
    await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    code, _, err = await cumulo(gateway, tmp_path, "login", email, stdin=PASSWORD + "\n")
    assert code == 0, err
    credentials = tmp_path / "credentials.json"
    saved = json.loads(credentials.read_text())
    saved["access_expires_at"] = 0  # as if the access token had run out
    credentials.write_text(json.dumps(saved))
    code, out, err = await cumulo(gateway, tmp_path, "whoami")
    assert code == 0, err
    assert email in out
    assert json.loads(credentials.read_text())["refresh_token"] != saved["refresh_token"]


async def test_two_clients_sharing_a_credentials_file_refresh_only_once(gateway, tmp_path, email):
    """Two processes (here: two clients, each with its own view of the file) whose access token
    ran out at once: only one may spend the refresh token — a second use of it is taken for
    theft and ends the session — and the other uses what the first wrote."""
    path = tmp_path / "credentials.json"
    async with Cumulo(gateway, store=TokenStore(path)) as first:
        await first.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
        await first.login(email, PASSWORD)
    saved = json.loads(path.read_text())
    saved["access_expires_at"] = 0
    path.write_text(json.dumps(saved))
    one, two = Cumulo(gateway, store=TokenStore(path)), Cumulo(gateway, store=TokenStore(path))
    try:
        assert one.store.tokens.refresh_token == two.store.tokens.refresh_token  # both hold the stale one
        answers = await asyncio.gather(one.whoami(), two.whoami())
        assert {a.account.email for a in answers} == {email}
        assert len(await one.sessions()) == 1
    finally:
        await one.close()
        await two.close()


async def test_readme_files_and_link_session(gateway, tmp_path, email):
    home, nobody = tmp_path / "home", tmp_path / "nobody"
    await cumulo(gateway, home, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    await cumulo(gateway, home, "login", email, stdin=PASSWORD + "\n")
    source = tmp_path / "holiday.mp4"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    for args in (("files", "mkdir", "/photos/2026"), ("files", "put", str(source), "/photos/2026")):
        code, out, err = await cumulo(gateway, home, *args)
        assert code == 0, err
    code, out, err = await cumulo(gateway, home, "files", "get", "/photos/2026/holiday.mp4", str(tmp_path / "back.mp4"))
    assert code == 0 and "sha256 verified" in out, err
    assert (tmp_path / "back.mp4").read_bytes() == source.read_bytes()
    code, out, err = await cumulo(gateway, home, "share", "create", "/photos/2026/holiday.mp4", "--expires-in", "7d")
    assert code == 0, err
    token = out.split()[-1]
    link_id = out.split()[1]
    # "--": a token may begin with "-", which would otherwise be taken for an option.
    code, out, err = await cumulo(gateway, nobody, "share", "get", "--", token, str(tmp_path / "from-link.mp4"))
    assert code == 0, err
    assert (tmp_path / "from-link.mp4").read_bytes() == source.read_bytes()
    code, out, err = await cumulo(gateway, home, "share", "revoke", link_id)
    assert code == 0, err
    code, out, err = await cumulo(gateway, nobody, "share", "get", "--", token, str(tmp_path / "again.mp4"))
    assert code == 1 and "LINK_REVOKED" in err
    assert not (tmp_path / "again.mp4").exists()


# What `cumulo login` says on standard error while no contact of the account is verified.
REMINDER = "cumulo: no contact of this account is verified, so no notice reaches you: run `cumulo account verify email`\n"


@pytest.mark.parametrize(
    "command, expected, warned",
    [
        (["login", "{email}"], "logged in as {email}", REMINDER),
        (["account", "state"], "state        active", ""),
        (["files", "ls"], "", ""),
        (["trash", "ls"], "", ""),
        (["share", "ls"], "", ""),
    ],
    ids=["login", "account", "files", "trash", "share"],
)
async def test_the_installed_console_script_runs_each_command_group(gateway, tmp_path, email, command, expected, warned):
    """The other tests run `main()` in-process; this runs the installed `cumulo` once per group
    (for login, with the password on a real pipe)."""
    code, _, err = await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    assert code == 0, err
    code, _, err = await cumulo(gateway, tmp_path, "login", email, stdin=PASSWORD + "\n")
    assert code == 0, err
    args = [part.format(email=email) for part in command]
    code, out, err = await cumulo(gateway, tmp_path, *args, stdin=PASSWORD + "\n", process=True)
    assert (code, err) == (0, warned), err
    assert expected.format(email=email) in out


async def test_contacts_are_verified_and_changed_from_the_command_line(gateway, tmp_path, email, mail):
    await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    await cumulo(gateway, tmp_path, "login", email, stdin=PASSWORD + "\n")
    code, out, err = await cumulo(gateway, tmp_path, "account", "contacts")
    assert code == 0 and "NOT verified" in out, (out, err)
    code, out, err = await cumulo(gateway, tmp_path, "account", "verify", "email")
    assert code == 0 and f"a code went to {email[0]}***@example.com" in out, err
    code, out, err = await cumulo(gateway, tmp_path, "account", "verify", "email", "--code", "000000x")
    assert code != 0 and "code" in err and "CODE" not in out
    code, out, err = await cumulo(gateway, tmp_path, "account", "verify", "email", "--code", await code_sent_to(mail, email))
    assert code == 0 and "email verified" in out, err
    code, out, err = await cumulo(gateway, tmp_path, "account", "contacts", "--json")
    assert code == 0 and json.loads(out)["email_verified"] is True, out
    # A new phone number: the password first, and it starts unverified.
    phone = unique_phone()
    code, out, err = await cumulo(gateway, tmp_path, "account", "set-contact", "phone", phone, stdin="not my password\n")
    assert code != 0 and "password" in err, err
    code, out, err = await cumulo(gateway, tmp_path, "account", "set-contact", "phone", phone, stdin=PASSWORD + "\n")
    assert code == 0 and f"phone is now {phone}, not yet verified" in out, err
    code, out, err = await cumulo(gateway, tmp_path, "account", "contacts")
    assert "verified" in out.splitlines()[0] and "NOT verified" in out.splitlines()[1], out


async def test_a_guardian_lists_their_minors_and_sets_one_a_password_from_the_command_line(gateway, tmp_path, email):
    await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    await cumulo(gateway, tmp_path, "login", email, stdin=PASSWORD + "\n")
    code, out, err = await cumulo(gateway, tmp_path, "account", "minors")
    assert code == 0 and "no minor is in your care" in out, err
    child = f"child-{uuid.uuid4().hex[:8]}@example.com"
    async with Cumulo(gateway, store=TokenStore(tmp_path / "credentials.json")) as guardian:
        born = dt.date.today().replace(year=dt.date.today().year - 10, day=1)
        request = auth_pb2.CreateMinorAccountRequest(
            email=child, password="purple monkey dishwasher", guardian_consent=True,
            birth_date=auth_pb2.Date(year=born.year, month=born.month, day=born.day),
        )
        minor = (await guardian.call(guardian.auth.CreateMinorAccount, request)).account
    code, out, err = await cumulo(gateway, tmp_path, "account", "minors")
    assert code == 0 and minor.account_id in out and child in out, (out, err)
    code, out, err = await cumulo(
        gateway, tmp_path, "account", "set-minor-password", minor.account_id, stdin=f"{PASSWORD}\na new passphrase for the child\n"
    )
    assert code == 0 and "every session of theirs was signed out" in out, err
    async with Cumulo(gateway) as child_client:
        assert (await child_client.login(child, "a new passphrase for the child")).account_id == minor.account_id


async def test_two_step_sign_in_from_the_command_line(gateway, tmp_path, email):
    import pyotp

    await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    await cumulo(gateway, tmp_path, "login", email, stdin=PASSWORD + "\n")
    code, out, err = await cumulo(gateway, tmp_path, "account", "two-step", "enable", stdin=PASSWORD + "\n")
    assert code == 0 and "otpauth://totp/cumulo:" in out, err
    secret = out.split("secret: ")[1].split()[0]
    code, out, err = await cumulo(gateway, tmp_path, "account", "two-step", "confirm")
    assert code == 2 and "the code your authenticator app shows" in err
    code, out, err = await cumulo(gateway, tmp_path, "account", "two-step", "confirm", pyotp.TOTP(secret).now())
    assert code == 0 and "two-step sign-in is on" in out, err
    recovery = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert len(recovery) == 10
    other = tmp_path / "other"
    code, out, err = await cumulo(gateway, other, "login", email, stdin=PASSWORD + "\n")
    assert code != 0 and "SECOND_FACTOR_REQUIRED" in err and "--code" not in out
    code, out, err = await cumulo(gateway, other, "login", email, "--code", recovery[0], stdin=PASSWORD + "\n")
    assert code == 0 and f"logged in as {email}" in out, err
    code, out, err = await cumulo(gateway, other, "account", "two-step", "disable", recovery[1], stdin=PASSWORD + "\n")
    assert code == 0 and "two-step sign-in is off" in out, err


async def test_the_self_service_commands_of_an_account(gateway, tmp_path, email):
    """Change the password, accept the terms, create a minor's account, see the plans, and
    cancel: each from the command line, with what it wants asked for."""
    await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    await cumulo(gateway, tmp_path, "login", email, stdin=PASSWORD + "\n")
    new = "a new passphrase from the shell"
    code, out, err = await cumulo(gateway, tmp_path, "account", "change-password", stdin=f"not the password\n{new}\n")
    assert code != 0 and "INVALID_CREDENTIALS" in err, err
    code, out, err = await cumulo(gateway, tmp_path, "account", "change-password", stdin=f"{PASSWORD}\n{new}\n")
    assert code == 0 and "password changed" in out, err
    code, out, err = await cumulo(gateway, tmp_path, "account", "accept-terms")
    assert code == 0 and "accepted" in out, err
    child = f"child-{uuid.uuid4().hex[:8]}@example.com"
    born = dt.date.today().replace(year=dt.date.today().year - 9, day=1).isoformat()
    code, out, err = await cumulo(gateway, tmp_path, "account", "create-minor", "--email", child, "--birth-date", born, stdin="a child's passphrase\n")
    assert code == 2 and "--guardian-consent" in err
    code, out, err = await cumulo(
        gateway, tmp_path, "account", "create-minor", "--email", child, "--birth-date", born, "--guardian-consent", stdin="a child's passphrase\n"
    )
    assert code == 0 and f"created for {child}" in out, err
    code, out, err = await cumulo(gateway, tmp_path, "account", "minors")
    assert child in out, out
    code, out, err = await cumulo(gateway, tmp_path, "plans", "--json")
    assert code == 0 and json.loads(out)["plans"] and json.loads(out)["purchases"] == [], out
    code, out, err = await cumulo(gateway, tmp_path, "account", "cancel", stdin=new + "\n")
    assert code == 2 and "--delete-everything" in err
    code, out, err = await cumulo(gateway, tmp_path, "account", "cancel", "--delete-everything", stdin=new + "\n")
    assert code == 0 and "cancelled" in out, err
    code, out, err = await cumulo(gateway, tmp_path, "login", email, stdin=new + "\n")
    assert code != 0 and ("ACCOUNT_CANCELLED" in err or "ACCOUNT_DELETED" in err), err


async def test_the_terms_history_from_the_command_line(gateway, tmp_path, email):
    await cumulo(gateway, tmp_path, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
    code, out, err = await cumulo(gateway, tmp_path, "login", email, stdin=PASSWORD + "\n")
    assert code == 0 and "terms of service changed" not in err, err
    code, out, err = await cumulo(gateway, tmp_path, "account", "terms-history", "--json")
    assert code == 0, err
    (accepted,) = json.loads(out)["acceptances"]
    assert accepted["version"] and accepted["client_id"] == "cumulo-cli" and accepted["accepted_by"] == ""
