"""The `cumulo` command towards the network and under Ctrl-C: a gateway that is not there ends
a command within its connection deadline, with what was tried and what to do; Ctrl-C ends a
command with one line and exit code 130 (an upload says where a new run resumes, and it
does; a download leaves nothing behind); progress is drawn at a terminal only; an error is
one line naming its reason once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import pathlib
import pty
import re
import signal
import socket
import struct
import termios
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from cumulo.blob.v1 import blob_pb2
from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.servers import free_port
from cumulo_devstack.testing import PASSWORD, eventually
from cumulo_devstack.testing.cli import console_script, run_command, start_command
from cumulo_devstack.testing.https import https_server
from cumulo_sdk import Cumulo, TokenStore
from cumulo_sdk.console import GATEWAY_HINT, INTERRUPTED_EXIT, display_width

MIB = 1024 * 1024
WAIT = 60


def environ(gateway: str, home: pathlib.Path, **more: str) -> dict[str, str]:
    return {"CUMULO_HOME": str(home), "CUMULO_GATEWAY": gateway, **more}


@pytest.fixture
async def home(gateway: str, tmp_path: pathlib.Path) -> pathlib.Path:
    """A CUMULO_HOME logged in to a new account (as `cumulo signup` and `cumulo login` leave it)."""
    folder = tmp_path / "home"
    email = f"interrupts-{uuid.uuid4().hex[:10]}@example.com"
    async with Cumulo(gateway, store=TokenStore(folder / "credentials.json")) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
        await client.login(email, PASSWORD, device_name="interrupts test")
    return folder


# --- a gateway that is not there ---------------------------------------------------------------


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """An address that takes connections and never answers (another program on the port)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


async def test_a_refused_connection_ends_the_command_at_once_with_the_hint(tmp_path):
    """Nothing listens at the address: waiting cannot help, so the command does not wait out
    its deadline (an hour here: a command that waited would fail the run's own timeout)."""
    address = f"127.0.0.1:{free_port()}"
    result = await run_command(
        "cumulo", "files", "ls", environ=environ(address, tmp_path, CUMULO_CONNECT_TIMEOUT="3600"), timeout=WAIT
    )
    assert (result.returncode, result.stdout) == (1, ""), result
    assert result.stderr == (
        f"cumulo: cannot reach the cumulo gateway at {address}: the connection was refused, nothing listens there. "
        f"{GATEWAY_HINT} [GATEWAY_UNREACHABLE]\n"
    )


async def test_an_address_that_does_not_answer_fails_within_the_connection_deadline_with_the_hint(tmp_path):
    with silent_listener() as address:
        started = time.monotonic()
        # The installed command: the deadline holds in a process of its own too.
        result = await run_command(
            "cumulo", "files", "ls", environ=environ(address, tmp_path, CUMULO_CONNECT_TIMEOUT="2"), process=True, timeout=WAIT
        )
        took = time.monotonic() - started
    assert (result.returncode, result.stdout) == (1, ""), result
    assert result.stderr == (
        f"cumulo: cannot reach the cumulo gateway at {address} (tried for 2 s). {GATEWAY_HINT} [GATEWAY_UNREACHABLE]\n"
    )
    assert took < 2 + 15, took  # its deadline: not grpc's own 20 s connection timeout, nor a hang


async def test_a_bad_connection_deadline_is_refused_by_name(tmp_path):
    result = await run_command("cumulo", "files", "ls", environ=environ("127.0.0.1:1", tmp_path, CUMULO_CONNECT_TIMEOUT="soon"))
    assert result.returncode == 1 and "CUMULO_CONNECT_TIMEOUT" in result.stderr, result


# --- errors ------------------------------------------------------------------------------------


async def test_an_error_is_one_line_naming_its_reason_once(gateway, home):
    result = await run_command("cumulo", "revoke-session", "not-a-session", environ=environ(gateway, home))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("cumulo: session_id: ") and result.stderr.endswith(" [INVALID_ARGUMENT]\n"), result.stderr
    assert result.stderr.count("INVALID_ARGUMENT") == 1, result.stderr


# --- progress only at a terminal ------------------------------------------------------------------


async def test_no_progress_is_drawn_when_the_output_is_not_a_terminal(gateway, home, tmp_path):
    source = tmp_path / "notes.bin"
    source.write_bytes(os.urandom(5 * MIB + 7))
    put = await run_command("cumulo", "files", "put", str(source), "/", environ=environ(gateway, home))
    assert (put.returncode, put.stderr) == (0, ""), put
    assert put.stdout.startswith("uploaded notes.bin ("), put.stdout  # the summary line instead
    back = tmp_path / "back.bin"
    # Standard output and error are pipes here, as in a log or a script.
    get = await run_command("cumulo", "files", "get", "/notes.bin", str(back), environ=environ(gateway, home), process=True)
    assert (get.returncode, get.stderr) == (0, ""), get
    assert "\r" not in get.stdout and get.stdout.startswith("downloaded notes.bin"), get.stdout
    assert back.read_bytes() == source.read_bytes()


# --- Ctrl-C -------------------------------------------------------------------------------------


class Terminal:
    """The installed `cumulo` with a pseudo-terminal as its standard input, output and error,
    as a person runs it: what it has drawn so far, as the terminal received it."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self.master = master
        self.received = bytearray()
        self.closed = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    @classmethod
    async def start(cls, *args: str, environ: dict[str, str], columns: int = 100) -> Terminal:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        try:
            process = await asyncio.create_subprocess_exec(
                str(console_script("cumulo")), *args, stdin=slave, stdout=slave, stderr=slave, env={**os.environ, **environ}
            )
        finally:
            os.close(slave)  # the command holds it now
        return cls(process, master)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the command has ended and closed the terminal
            data = b""
        if data:
            self.received += data
            return
        asyncio.get_running_loop().remove_reader(self.master)
        self.closed.set()

    @property
    def text(self) -> str:
        return self.received.decode(errors="replace")

    async def shows(self, pattern: str) -> re.Match[str]:
        async def found() -> re.Match[str] | None:
            match = re.search(pattern, self.text)
            assert match or self.process.returncode is None, f"the command ended without showing {pattern!r}: {self.text}"
            return match

        match = await eventually(found, timeout=WAIT, what=f"{pattern!r} on the terminal")
        assert match is not None
        return match

    async def ended(self) -> int:
        code = await asyncio.wait_for(self.process.wait(), WAIT)
        await asyncio.wait_for(self.closed.wait(), WAIT)
        return code

    def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        if not self.closed.is_set():
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


@contextlib.asynccontextmanager
async def parts_held_after(blob: Any, account_id: str, landed: int) -> AsyncIterator[None]:
    """The session's blob service stores the account's first `landed` upload parts in S3 and
    holds every later one until the block ends: an upload stays in progress, whatever the
    speed of the machine, with a known number of bytes committed."""
    storage = blob.app.storage
    store_part = storage.upload_part
    released = asyncio.Event()

    async def held(key: str, upload_id: str, number: int, data: bytes) -> str:
        if f"/{account_id}/" in key and number > landed:
            await released.wait()
        return await store_part(key, upload_id, number, data)

    storage.upload_part = held
    try:
        yield
    finally:
        released.set()
        del storage.upload_part  # the class's method again


async def upload_status(client: Cumulo, upload_id: str) -> blob_pb2.GetUploadResponse:
    return await client.call(client.files.stub.GetUpload, blob_pb2.GetUploadRequest(upload_id=upload_id))


async def test_ctrl_c_during_an_upload_exits_130_with_the_resume_hint_and_the_next_run_resumes(gateway, blob, home, tmp_path):
    part = blob.app.settings.part_size
    source = tmp_path / "holiday.bin"
    source.write_bytes(os.urandom(8 * part))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    async with Cumulo(gateway, store=TokenStore(home / "credentials.json")) as client:
        account_id = (await client.whoami()).account.account_id
        async with parts_held_after(blob, account_id, landed=2):
            terminal = await Terminal.start("files", "put", str(source), "/", environ=environ(gateway, home))
            try:
                await terminal.shows(r"hashing holiday\.bin +\[")
                first = await terminal.shows(r"\rholiday\.bin +\[[#=.]+\] +\d+\.\d% sent, +\d+\.\d% stored[^\r]*")
                # The rate, and so the time left, is not guessed from the first chunks.
                assert "ETA --:--" in first.group(0), first.group(0)

                # Two parts are committed and the third is held: the upload is in progress.
                upload_id = json.loads((home / "uploads.json").read_text()).popitem()[1]

                async def two_parts_in() -> bool:
                    return (await upload_status(client, upload_id)).committed_offset == 2 * part

                await eventually(two_parts_in, timeout=WAIT, what="two committed parts")
                # The bar says so (however much more was sent), as the line after Ctrl-C will.
                await terminal.shows(r"\rholiday\.bin +\[#+=*\.*\] +\d+\.\d% sent,  25\.0% stored")
                assert terminal.process.returncode is None, terminal.text
                terminal.process.send_signal(signal.SIGINT)  # what Ctrl-C at its terminal sends it
                code = await terminal.ended()
            finally:
                terminal.close()
        assert code == INTERRUPTED_EXIT, terminal.text
        assert "Traceback" not in terminal.text, terminal.text
        lines = terminal.text.replace("\r\n", "\n").split("\n")
        assert lines[-2:] == ["cumulo: interrupted; run the same command again to resume from 25%", ""], terminal.text
        assert json.loads((home / "uploads.json").read_text()) != {}  # kept for the next run

        # The same command again (not at a terminal this time) goes on with the same upload.
        again = await run_command("cumulo", "files", "put", str(source), "/", environ=environ(gateway, home), timeout=WAIT)
        assert again.returncode == 0 and again.stderr == "", again
        assert again.stdout.startswith("uploaded holiday.bin (") and digest in again.stdout, again.stdout
        finished = await upload_status(client, upload_id)
        assert finished.HasField("file") and finished.file.sha256 == digest and finished.file.size == 8 * part
        assert json.loads((home / "uploads.json").read_text()) == {}


@contextlib.asynccontextmanager
async def stream_held_after_the_first_chunk(blob: Any, account_id: str) -> AsyncIterator[None]:
    """The session's blob service offers no download URL (the SDK streams through gRPC), sends
    the first chunk of the account's downloads and holds the rest until the block ends: a
    download stays in progress, whatever the machine's speed."""
    storage, downloads = blob.app.storage, blob.app.downloads
    read_range, url_base = storage.read_range, downloads.url_base
    released = asyncio.Event()

    async def held(key: str, offset: int, length: int) -> bytes:
        if offset > 0 and f"/{account_id}/" in key:  # the first window goes; the next waits
            await released.wait()
        return await read_range(key, offset, length)

    storage.read_range = held
    downloads.url_base = ""
    try:
        yield
    finally:
        released.set()
        del storage.read_range  # the class's method again
        downloads.url_base = url_base


@contextlib.asynccontextmanager
async def url_held_after_the_first_chunk(blob: Any, infra: Any, content: bytes) -> AsyncIterator[None]:
    """The session's blob service signs its download URLs for an HTTPS server of this test (with
    the gateway's certificate) that answers the file's first MiB and then holds the rest."""
    downloads = blob.app.downloads
    url_base = downloads.url_base
    released = asyncio.Event()

    async def first_mib_then_hold(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_length = len(content)
        await response.prepare(request)
        await response.write(content[:MIB])
        await released.wait()
        return response

    async with https_server(infra.tls, first_mib_then_hold) as base:
        downloads.url_base = base
        try:
            yield
        finally:
            released.set()
            downloads.url_base = url_base


@pytest.mark.parametrize("path", ["url", "stream"])
async def test_ctrl_c_during_a_download_leaves_neither_the_file_nor_a_part_of_it(gateway, blob, infra, home, tmp_path, path):
    """Either way a download comes (a signed URL, or the gRPC stream where there is none)."""
    content = os.urandom(6 * MIB)
    source = tmp_path / "film.bin"
    source.write_bytes(content)
    put = await run_command("cumulo", "files", "put", str(source), "/", environ=environ(gateway, home))
    assert put.returncode == 0, put
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    async with Cumulo(gateway, store=TokenStore(home / "credentials.json")) as client:
        account_id = (await client.whoami()).account.account_id
    held = url_held_after_the_first_chunk(blob, infra, content) if path == "url" else stream_held_after_the_first_chunk(blob, account_id)
    async with held:
        terminal = await Terminal.start("files", "get", "/film.bin", str(downloads), environ=environ(gateway, home))
        try:
            await terminal.shows(r"\rfilm\.bin +\[[#.]+\] +\d+\.\d%")  # a first chunk is written
            assert [p.name for p in downloads.iterdir() if p.name.endswith(".cumulo-part")], (list(downloads.iterdir()), terminal.text)
            terminal.process.send_signal(signal.SIGINT)
            code = await terminal.ended()
        finally:
            terminal.close()
    assert code == INTERRUPTED_EXIT, terminal.text
    assert "Traceback" not in terminal.text, terminal.text
    assert terminal.text.replace("\r\n", "\n").endswith("\ncumulo: interrupted\n"), terminal.text
    assert list(downloads.iterdir()) == []


@pytest.mark.parametrize("command", ["sync-watch", "device-agent"])
async def test_ctrl_c_ends_a_command_that_runs_until_then_with_one_line_and_exit_130(gateway, locator, home, command):
    """Nothing of these resumes, so the line is plain."""
    device_id = f"interrupts-{uuid.uuid4().hex[:6]}"
    args = {
        "sync-watch": ["sync", "watch", "notes"],
        "device-agent": ["device-agent", "--name", "pocket", "--device-id", device_id, "--every", "1"],
    }[command]
    running = start_command("cumulo", *args, environ=environ(gateway, home))
    try:
        async with Cumulo(gateway, store=TokenStore(home / "credentials.json")) as client:

            async def going() -> bool:
                if command == "sync-watch":  # a change it announces: it is watching
                    saved = sync_pb2.RecordSave(record_id=uuid.uuid4().hex, record_type="note", payload=b"{}")
                    await client.sync.push("notes", [saved])
                    return "notes changed" in running.output
                return f"device {device_id} (pocket) registered" in running.output

            await eventually(going, timeout=WAIT, what=f"{command} to run")
    finally:
        running.interrupt()
    result = await running.wait(WAIT)
    assert result.returncode == INTERRUPTED_EXIT, result
    assert result.stderr.endswith("cumulo: interrupted\n") and "Traceback" not in result.stderr, result.stderr


# --- listings at a terminal ---------------------------------------------------------------------


async def test_a_listing_at_a_terminal_has_a_header_over_columns_that_line_up(gateway, home, tmp_path):
    for name in ("a.txt", "假期照片-北京上海.jpg"):
        source = tmp_path / name
        source.write_bytes(b"x" * 10)
        put = await run_command("cumulo", "files", "put", str(source), "/", environ=environ(gateway, home))
        assert put.returncode == 0, put
    terminal = await Terminal.start("files", "ls", environ=environ(gateway, home))
    try:
        code = await terminal.ended()
    finally:
        terminal.close()
    assert code == 0, terminal.text
    header, *rows = terminal.text.replace("\r\n", "\n").splitlines()
    assert header.split() == ["SIZE", "MODIFIED", "NAME", "ID"] and len(rows) == 2, terminal.text
    # The ids start in the header's ID column, after a Chinese name (two columns a character) too.
    starts = {display_width(line[: line.rindex(line.split()[-1])]) for line in (header, *rows)}
    assert len(starts) == 1, terminal.text
