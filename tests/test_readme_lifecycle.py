"""The README's lifecycle session, pasted as written: `make run`'s launcher started with the
README's environment line, then the README's client block run by bash in a folder of its own
(`.venv` is the repository's, `var` the launcher's). bob is frozen, told by mail (the whole
Subject on one line, date included), and comes back with a use; eve is left alone until her
data is deleted and her login answers ACCOUNT_DELETED.

The README waits on conditions (bounded loops), so the session takes as long as the periods
say on any machine; this test only bounds the whole with generous timeouts. It asserts what
the README claims and nothing about other mail: on a slow machine eve's notices, or bob's
second freeze, may land in var/mail at any point."""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from cumulo_devstack.ports import port_variables
from cumulo_devstack.servers import free_ports
from cumulo_devstack.testing.readme import shell_blocks

REPO = pathlib.Path(__file__).resolve().parents[1]
SECTION = "### The account lifecycle, in seconds"
README_GATEWAY = "127.0.0.1:8080"
TRACE = "+>> "  # bash -x marks each command it runs with this (the "+" repeated per nesting level)
TRACED = re.compile(r"^\++>> ")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*")
SUBJECT = re.compile(
    r"Subject: Your cumulo account is frozen: its data will be deleted at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST \(Asia/Shanghai\)"
)


def launch_environment(block: str) -> dict[str, str]:
    """The variables of the README's `VAR=value ... make run` line."""
    words = shlex.split(block.strip())
    assert words[-2:] == ["make", "run"], block
    pairs = [word.split("=", 1) for word in words[:-2]]
    assert all(len(pair) == 2 for pair in pairs), block
    return dict(pairs)


def commands(trace: str) -> list[tuple[str, str]]:
    """(command, what it printed) in order, from bash's trace merged with the output. A
    command's own variable assignments (`CUMULO_HOME=... cumulo`), traced apart, are put back
    in front of it. The README's `echo`s only feed a password through a pipe and are left out:
    bash traces a pipeline's commands in any order, so an `echo` traced after its reader would
    take the reader's output."""
    found: list[tuple[str, str]] = []
    assignments = ""
    for line in trace.splitlines():
        traced = TRACED.match(line)
        if traced is not None:
            command = line[traced.end():]
            if command.startswith("echo "):
                continue
            if ASSIGNMENT.fullmatch(command):
                assignments += command + " "
            else:
                found.append((assignments + command, ""))
                assignments = ""
        elif found:
            command, printed = found[-1]
            found[-1] = (command, printed + line.rstrip("\r") + "\n")
    return found


def printed_by(found: list[tuple[str, str]], pattern: str) -> list[str]:
    """What each command matching `pattern` (a regular expression, searched) printed, in order."""
    return [printed for command, printed in found if re.search(pattern, command)]


def raw_mails(folder: pathlib.Path, address: str) -> list[list[str]]:
    """The lines of every mail to `address`, as make run's catcher stored them."""
    mails = (path.read_bytes().decode().split("\r\n") for path in sorted(folder.glob("*.eml")))
    return [lines for lines in mails if f"To: {address}" in header(lines)]


def header(lines: list[str]) -> list[str]:
    return lines[: lines.index("")] if "" in lines else lines


async def _read_until_running(launcher: subprocess.Popen[str]) -> str:
    output = ""
    while "cumulo is running" not in output:
        assert launcher.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(launcher.stdout.readline), 180)
        assert line, f"the launcher stopped early:\n{output}"
        output += line
    return output


# The session lasts as long as the README's periods and a slow machine make it (each command is
# a Python start and a TLS handshake); its own waits are bounded, this bounds the whole.
@pytest.mark.timeout(900)
async def test_the_readme_lifecycle_session_freezes_reactivates_and_deletes():
    launch, client = shell_blocks(SECTION)
    lifecycle_settings = launch_environment(launch)
    assert README_GATEWAY in client

    root = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-readme-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its data folder
    var, workdir = root / "var", root / "shell"
    workdir.mkdir()
    (workdir / ".venv").symlink_to(REPO / ".venv")
    (workdir / "var").symlink_to(var)
    # Every port the launcher listens on, distinct (it refuses to start otherwise).
    variables = port_variables()
    ports = dict(zip(variables, map(str, free_ports(len(variables))), strict=True))
    gateway = f"127.0.0.1:{ports['CUMULO_GATEWAY_PORT']}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CUMULO_") and k not in ("DATABASE_URL", "NATS_URL", "S3_ENDPOINT")},
        **lifecycle_settings,
        **ports,
    }
    launcher = subprocess.Popen(
        [sys.executable, "-m", "cumulo_devstack", "run", "--var", str(var)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        started = await _read_until_running(launcher)
        # The "another shell" of the README: its own HOME, the gateway this run listens on, and
        # where cumulo-admin finds the internal APIs (make run's fixed ports in the README).
        shell_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root / "home"),
            "LANG": "C.UTF-8",
            "CUMULO_LIFECYCLE_TARGET": f"127.0.0.1:{ports['CUMULO_LIFECYCLE_GRPC_PORT']}",
            "CUMULO_AUTH_TARGET": f"127.0.0.1:{ports['CUMULO_AUTH_GRPC_PORT']}",
        }
        script = workdir / "session.sh"
        script.write_text(client.replace(README_GATEWAY, gateway))
        # bash takes no PS4 from the environment when run as root: it is set before the trace.
        session = await asyncio.create_subprocess_exec(
            "bash", "-c", f"PS4='{TRACE}'; set -x; . ./{script.name}", cwd=workdir, env=shell_env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(session.communicate(), 600)
        trace = out.decode()
        found = commands(trace)

        # bob: active, frozen (told when his data goes), and active again after a use. (The
        # states his wait for "active" piped into grep printed nothing.)
        bob_states = [p for p in printed_by(found, r"^\.venv/bin/cumulo account state$") if p]
        assert len(bob_states) == 3, trace
        assert re.search(r"^state\s+active\b", bob_states[0], re.M), trace
        assert re.search(r"^state\s+frozen\b", bob_states[1], re.M) and "deleted at" in bob_states[1], trace
        assert re.search(r"^state\s+active\b", bob_states[2], re.M), trace
        # What the README shows of bob's mail: his freeze notice's Subject, whole on one line.
        (shown,) = printed_by(found, r"^grep -h '\^Subject")
        bobs = {line for lines in raw_mails(var / "mail", "bob@example.com") for line in header(lines) if line.startswith("Subject:")}
        assert shown.splitlines() and set(shown.splitlines()) <= bobs, (shown, bobs)
        assert any(SUBJECT.fullmatch(line) for line in shown.splitlines()), shown
        (status,) = printed_by(found, r"cumulo-admin lifecycle status bob@example.com$")
        assert "frozen" in status and "active" in status, trace

        # eve: left alone, deleted, and her login is refused for good.
        eve_states = [p for p in printed_by(found, r"CUMULO_HOME=.*cumulo account state$") if p]
        assert eve_states and re.search(r"^state\s+deleted\b", eve_states[-1], re.M), trace
        eve_logins = printed_by(found, r"CUMULO_HOME=.*cumulo login eve@example.com$")
        assert len(eve_logins) == 2 and "ACCOUNT_DELETED" in eve_logins[-1], trace
        (report,) = printed_by(found, r"cumulo-admin lifecycle report$")
        assert re.search(r"^deleted\s+[1-9]", report, re.M), trace
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)  # Ctrl-C, as a person stops make run
            try:
                rest = await asyncio.wait_for(asyncio.to_thread(launcher.communicate), 90)
            except TimeoutError:
                launcher.kill()
                rest = ("", None)
        else:
            rest = (launcher.stdout.read() if launcher.stdout else "", None)
        shutil.rmtree(root, ignore_errors=True)
    assert launcher.returncode == 0, f"{started}{rest[0]}"
