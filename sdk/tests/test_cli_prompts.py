"""`cumulo` at a terminal, as a person meets it: where a script is refused, a person is asked
(overwrite a local file? upload under another name?), Ctrl-C at a question ends the command
at once, and a password against the rule is asked for again before it is asked for a second
time. The installed command runs with a pseudo-terminal as its controlling terminal,
standard input, output and error."""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
import pty
import select
import subprocess
import sys
import termios

import pytest

from cumulo_devstack.testing import PASSWORD, unique_email
from cumulo_devstack.testing.cli import console_script
from cumulo_sdk import Cumulo, TokenStore

WAIT = 60.0


class Terminal:
    """A `cumulo` command in a terminal of its own: what it shows, and what the person types."""

    def __init__(self, *argv: str, environ: dict[str, str]) -> None:
        self.master, slave = pty.openpty()

        def own_terminal() -> None:  # in the child: a new session whose terminal is the pty
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            [str(console_script("cumulo")), *argv], stdin=slave, stdout=slave, stderr=slave,
            env={**os.environ, **environ}, preexec_fn=own_terminal,
        )
        os.close(slave)
        self.shown = ""
        self.expected_up_to = 0

    def _read(self, seconds: float) -> bool:
        """False once the command has closed the terminal."""
        if not select.select([self.master], [], [], seconds)[0]:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: every end of the terminal's other side is closed
            return False
        self.shown += chunk.decode(errors="replace")
        return bool(chunk)

    async def expect(self, text: str) -> None:
        """Waits until the terminal shows `text` after what was expected before."""
        deadline = asyncio.get_running_loop().time() + WAIT
        while (found := self.shown.find(text, self.expected_up_to)) < 0:
            assert asyncio.get_running_loop().time() < deadline, f"{text!r} never shown; the terminal shows:\n{self.shown}"
            if not await asyncio.to_thread(self._read, 0.2):
                assert text in self.shown[self.expected_up_to :], f"{text!r} never shown; the terminal shows:\n{self.shown}"
        self.expected_up_to = found + len(text)

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def ctrl_c(self) -> None:
        """As typed: the terminal sends SIGINT to the command (the foreground of its session)."""
        os.write(self.master, b"\x03")

    async def exit_code(self) -> int:
        while await asyncio.to_thread(self._read, 0.2):
            pass
        code = await asyncio.to_thread(self.process.wait, WAIT)
        os.close(self.master)
        return code


@pytest.fixture
async def home(gateway, tmp_path) -> dict[str, str]:
    """The environment of a person logged in to a new account."""
    home = tmp_path / "home"
    email = unique_email()
    async with Cumulo(gateway, store=TokenStore(home / "credentials.json")) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
        await client.login(email, PASSWORD)
    return {"CUMULO_HOME": str(home), "CUMULO_GATEWAY": gateway}


async def run(*argv: str, environ: dict[str, str]) -> int:
    return await Terminal(*argv, environ=environ).exit_code()


async def test_get_asks_before_overwriting_a_local_file(home, tmp_path):
    source = tmp_path / "report.pdf"
    source.write_bytes(b"%PDF the cloud's")
    assert await run("files", "put", str(source), "/", environ=home) == 0
    mine = tmp_path / "mine.pdf"
    mine.write_bytes(b"my own")

    terminal = Terminal("files", "get", "/report.pdf", str(mine), environ=home)
    await terminal.expect(f"{mine} exists. Overwrite it? [y/N]")
    terminal.type("")  # Enter: the default is no
    assert await terminal.exit_code() == 1
    assert "pass --force" in terminal.shown and mine.read_bytes() == b"my own"

    terminal = Terminal("files", "get", "/report.pdf", str(mine), environ=home)
    await terminal.expect("Overwrite it? [y/N]")
    terminal.type("y")
    assert await terminal.exit_code() == 0, terminal.shown
    assert mine.read_bytes() == b"%PDF the cloud's"


async def test_put_offers_rename_or_replace_for_a_taken_name(home, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"one")
    assert await run("files", "put", str(notes), "/", environ=home) == 0
    notes.write_bytes(b"two")
    terminal = Terminal("files", "put", str(notes), "/", environ=home)
    await terminal.expect("/notes.txt already exists. Upload it as 'notes (1).txt' (r), replace the existing file")
    terminal.type("r")
    assert await terminal.exit_code() == 0, terminal.shown
    assert "uploaded notes.txt as notes (1).txt" in terminal.shown


@pytest.mark.parametrize("question", ["overwrite a local file", "a name taken"])
async def test_ctrl_c_at_a_question_ends_the_command_at_once_with_130(home, tmp_path, question):
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF the cloud's")
    assert await run("files", "put", str(report), "/", environ=home) == 0
    mine = tmp_path / "mine.pdf"
    mine.write_bytes(b"my own")
    if question == "overwrite a local file":
        terminal = Terminal("files", "get", "/report.pdf", str(mine), environ=home)
        await terminal.expect("Overwrite it? [y/N]")
    else:
        terminal = Terminal("files", "put", str(report), "/", environ=home)
        await terminal.expect("or cancel (c)? [c]")
    terminal.ctrl_c()
    try:
        # No Enter follows: a question that waited for one would never end.
        code = await asyncio.wait_for(terminal.exit_code(), 20)
    finally:
        terminal.process.kill()
    assert code == 130, terminal.shown
    assert terminal.shown.rstrip().endswith("cumulo: interrupted") and "Traceback" not in terminal.shown, terminal.shown
    assert mine.read_bytes() == b"my own"


async def test_signup_asks_again_for_a_password_against_the_rule(gateway, tmp_path):
    email = unique_email()
    terminal = Terminal(
        "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms",
        environ={"CUMULO_HOME": str(tmp_path), "CUMULO_GATEWAY": gateway},
    )
    await terminal.expect("Choose a password: ")
    terminal.type("password123")
    await terminal.expect("that password cannot be used: it is one of the most common passwords; choose another")
    await terminal.expect("Choose a password: ")
    terminal.type(PASSWORD)
    await terminal.expect("Repeat the password: ")
    terminal.type(PASSWORD)
    assert await terminal.exit_code() == 0, terminal.shown
    assert f"created for {email}" in terminal.shown
    assert "password123" not in terminal.shown and PASSWORD not in terminal.shown  # never echoed


def test_the_terminal_helper_sees_a_terminal(tmp_path):
    """The tests above mean something only if the command sees a terminal on each stream."""
    probe = tmp_path / "probe.py"
    probe.write_text("import os, sys\nprint(sys.stdin.isatty(), sys.stdout.isatty(), os.ttyname(0) == os.ttyname(1))\n")
    master, slave = pty.openpty()
    done = subprocess.run([sys.executable, str(probe)], stdin=slave, stdout=slave, stderr=slave, timeout=30)
    os.close(slave)
    assert done.returncode == 0
    assert os.read(master, 100).decode().strip() == "True True True"
    os.close(master)
