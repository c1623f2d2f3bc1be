"""`cumulo report ...` and `cumulo-admin moderation ...` as people run them: the README's
takedown and counter-notice session, and the operator's blocklist, hold, evidence and audit
commands. Commands run in-process; the installed console script runs once per command group."""

from __future__ import annotations

import hashlib
import os
import pathlib
import re

import pytest

from cumulo_devstack.testing import PASSWORD, eventually, unique_email
from cumulo_devstack.testing.cli import Program, run_command

from .helpers import restore_now

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def run(
    program: Program, gateway: str, home: pathlib.Path, *args: str, stdin: str = "", process: bool = False
) -> tuple[int, str, str]:
    """`cumulo ARGS` or `cumulo-admin ARGS` in-process (`process`: the installed console script)."""
    result = await run_command(
        program, *args, environ={"CUMULO_GATEWAY": gateway, "CUMULO_HOME": str(home)}, stdin=stdin, process=process
    )
    return result.returncode, result.stdout, result.stderr


async def ok(program: Program, gateway: str, home: pathlib.Path, *args: str, stdin: str = "", process: bool = False) -> str:
    code, out, err = await run(program, gateway, home, *args, stdin=stdin, process=process)
    assert code == 0, f"{program} {' '.join(args)} → {code}: {out}{err}"
    return out


async def signup(gateway: str, home: pathlib.Path, email: str) -> None:
    await ok("cumulo", gateway, home, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", "--locale", "en", stdin=PASSWORD + "\n")
    await ok("cumulo", gateway, home, "login", email, stdin=PASSWORD + "\n")


async def moderator_home(gateway: str, auth_target: str, tmp_path: pathlib.Path) -> pathlib.Path:
    home = tmp_path / "moderator"
    email = unique_email()
    await signup(gateway, home, email)
    out = await ok("cumulo-admin", gateway, home, "--auth", auth_target, "auth", "roles", email, "moderator", "--reason", "joins the team")
    assert "roles: moderator" in out
    await ok("cumulo", gateway, home, "login", email, stdin=PASSWORD + "\n")  # a token with the role
    return home


async def test_the_readme_takedown_session(gateway, auth, moderation, tmp_path):
    owner = tmp_path / "owner"
    await signup(gateway, owner, unique_email())
    photo = tmp_path / "harbour.jpg"
    photo.write_bytes(os.urandom(100_000))
    await ok("cumulo", gateway, owner, "files", "put", str(photo), "/")
    shared = await ok("cumulo", gateway, owner, "share", "create", "/harbour.jpg")
    # One token in 64 begins with "-": after "--" it cannot be taken for an option.
    link = shared.split("share get ")[1].split()[0]

    nobody = tmp_path / "nobody"
    legal = unique_email()  # the complainant's own: complaints are counted per contact address
    code, _, err = await run("cumulo", gateway, nobody, "report", "link", "--category", "copyright", "--description", "mine", "--", link)
    assert code == 2 and "without logging in, give --contact" in err  # anonymous complaints need a contact address
    code, _, err = await run(
        "cumulo", gateway, nobody, "report", "link", "--category", "copyright", "--description", "mine",
        "--contact", legal, "--rights-holder", "Lumen", "--rights-holder-contact", legal,
        "--signature", "Jane Roe", "--good-faith", "--accurate", "--", link,
    )
    assert code == 1 and "copyright.work" in err  # the missing element, by name
    filed = await ok(
        "cumulo", gateway, nobody, "report", "link", f"https://cumulo.example/s/{link}", "--category", "copyright",
        "--description", "our photograph", "--contact", legal, "--rights-holder", "Lumen",
        "--rights-holder-contact", legal, "--work", "Harbour at Dawn", "--signature", "Jane Roe", "--good-faith", "--accurate",
    )
    case_id = re.search(rf"case ({UUID})", filed).group(1)  # type: ignore[union-attr]

    desk = await moderator_home(gateway, auth.target, tmp_path)
    assert case_id in await ok("cumulo-admin", gateway, desk, "moderation", "queue")
    shown = await ok("cumulo-admin", gateway, desk, "moderation", "show", case_id)
    assert "Lumen" in shown and "complaint.filed" in shown
    assert "claimed" in await ok("cumulo-admin", gateway, desk, "moderation", "claim", case_id)
    assert "→ block" in await ok("cumulo-admin", gateway, desk, "moderation", "decide", case_id, "block", "--reason", "no licence")

    code, _, err = await run("cumulo", gateway, nobody, "share", "get", "--", link, str(tmp_path / "x.jpg"))
    assert code == 1 and "LINK_TAKEN_DOWN" in err
    code, _, err = await run("cumulo", gateway, owner, "files", "get", "/harbour.jpg", str(tmp_path / "back.jpg"))
    assert code == 1 and "CONTENT_BLOCKED" in err
    assert case_id in await ok("cumulo", gateway, owner, "report", "cases")
    code, _, err = await run("cumulo", gateway, owner, "report", "counter-notice", case_id, "--statement", "mine", "--name", "Ann", "--contact", "ann@example.com")
    assert code == 2 and "--consent" in err
    out = await ok(
        "cumulo", gateway, owner, "report", "counter-notice", case_id, "--statement", "I took it", "--name", "Ann",
        "--contact", "ann@example.com", "--consent",
    )
    assert "restored at" in out

    assert await restore_now(moderation, case_id) >= 1
    await ok("cumulo", gateway, owner, "files", "get", "/harbour.jpg", str(tmp_path / "back.jpg"))
    assert (tmp_path / "back.jpg").read_bytes() == photo.read_bytes()
    await ok("cumulo", gateway, nobody, "share", "get", "--", link, str(tmp_path / "again.jpg"))
    trail = await ok("cumulo-admin", gateway, desk, "moderation", "audit", "--case", case_id)
    # Every step, as it happened: each cause before what it caused.
    steps = ("complaint.filed", "case.opened", "case.claimed", "decision.block", "effect.block", "counter_notice.filed", "content.restored")
    actions = [next((word for word in line.split() if word in steps), "") for line in trail.splitlines()]
    assert [a for a in actions if a] == list(steps), trail


async def test_operator_blocklist_hold_export_and_audit(gateway, auth, moderation, tmp_path):
    desk = await moderator_home(gateway, auth.target, tmp_path)
    owner = tmp_path / "owner"
    email = unique_email()
    await signup(gateway, owner, email)
    bad = tmp_path / "known-bad.bin"
    bad.write_bytes(os.urandom(50_000))
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    listing = tmp_path / "digests.txt"
    listing.write_text(f"# imported list\n{digest}  known-bad.bin\n\n{'ab' * 32}\n")
    await ok("cumulo", gateway, owner, "files", "put", str(bad), "/")
    out = await ok("cumulo-admin", gateway, desk, "moderation", "blocklist", "add", "--file", str(listing), "--reason", "hash list 2026-11")
    assert "2 added, 0 already listed" in out
    assert digest in await ok("cumulo-admin", gateway, desk, "moderation", "blocklist", "ls")
    # The stored copy is blocked by the time the import returns, and the bytes are refused.
    code, _, err = await run("cumulo", gateway, owner, "files", "get", "/known-bad.bin", str(tmp_path / "back.bin"), "--force")
    assert code == 1 and "CONTENT_BLOCKED" in err
    again = tmp_path / "same-bytes.bin"
    again.write_bytes(bad.read_bytes())
    code, _, err = await run("cumulo", gateway, owner, "files", "put", str(again), "/")
    assert code == 1 and "CONTENT_BLOCKED" in err

    async def queued() -> bool:
        return "blocklist_match" in await ok("cumulo-admin", gateway, desk, "moderation", "queue")

    await eventually(queued, timeout=60, what="the blocklisted copy queued")
    await ok("cumulo-admin", gateway, desk, "moderation", "blocklist", "rm", "ab" * 32, "--reason", "listed by mistake")

    await ok("cumulo-admin", gateway, desk, "--auth", auth.target, "moderation", "hold", email, "--reason", "police request 42")
    exported = await ok("cumulo-admin", gateway, desk, "--auth", auth.target, "moderation", "export", email, "--reason", "police request 42")
    export_id = re.search(rf"export\s+({UUID})", exported).group(1)  # type: ignore[union-attr]
    assert re.search(r"sha256\s+[0-9a-f]{64}", exported)
    verified = await ok("cumulo-admin", gateway, desk, "moderation", "verify", export_id)
    assert "intact:" in verified and "NOT INTACT" not in verified
    await ok("cumulo-admin", gateway, desk, "--auth", auth.target, "moderation", "release", email, "--reason", "case closed")
    trail = await ok("cumulo-admin", gateway, desk, "moderation", "audit", "--limit", "500")
    for action in ("blocklist.added", "blocklist.removed", "content.blocked", "hold.placed", "evidence.exported", "hold.released"):
        assert action in trail

    code, _, err = await run("cumulo-admin", gateway, owner, "moderation", "queue")
    assert code == 1 and "NOT_A_MODERATOR" in err


@pytest.mark.parametrize("group", ["report", "moderation", "auth"])
async def test_the_installed_console_scripts_run_each_command_group(gateway, auth, moderation, tmp_path, group):
    desk = await moderator_home(gateway, auth.target, tmp_path)
    if group == "report":
        out = await ok("cumulo", gateway, desk, "report", "cases", process=True)
        assert out == "no decisions about your content or account\n"
    elif group == "moderation":
        await ok("cumulo-admin", gateway, desk, "moderation", "queue", process=True)
    else:
        someone = unique_email()
        await signup(gateway, tmp_path / "someone", someone)
        out = await ok("cumulo-admin", gateway, desk, "--auth", auth.target, "auth", "roles", someone, "moderator", "--reason", "joins", process=True)
        assert out.startswith("roles: moderator")
