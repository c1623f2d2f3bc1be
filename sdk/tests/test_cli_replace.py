"""`cumulo files put --replace` stopped between its steps (upload under a free name, put the
earlier file in the trash, give the new one its name) is finished by the same command: one
file with the new content under the name, the earlier one in the trash, nothing uploaded
twice and no stray "name (1)". The interrupted run says so."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from cumulo_devstack.testing import PASSWORD, unique_email
from cumulo_devstack.testing.cli import run_command, start_command
from cumulo_sdk import Cumulo, TokenStore
from cumulo_sdk.console import INTERRUPTED_EXIT

WAIT = 60


@pytest.fixture
async def home(gateway: str, tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "home"
    email = unique_email()
    async with Cumulo(gateway, store=TokenStore(folder / "credentials.json")) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
        await client.login(email, PASSWORD)
    return folder


@contextlib.asynccontextmanager
async def held(owner: Any, method: str, matches: Callable[..., bool]) -> AsyncIterator[asyncio.Event]:
    """The session's blob service holds the calls of `owner.method` that `matches` and never
    makes them: a command waits there, as one stopped between two steps. The event is set
    once such a call has come."""
    original = getattr(owner, method)
    reached = asyncio.Event()
    released = asyncio.Event()

    async def holding(*args: Any) -> Any:
        if not matches(*args):
            return await original(*args)
        reached.set()
        await released.wait()  # the command's call is cancelled first, when it ends
        raise asyncio.CancelledError

    setattr(owner, method, holding)
    try:
        yield reached
    finally:
        released.set()
        delattr(owner, method)  # the class's method again


@pytest.mark.parametrize("step", ["after the upload", "after the trash"])
async def test_an_interrupted_replace_is_finished_by_the_same_command(gateway, blob, home, tmp_path, step):
    environ = {"CUMULO_HOME": str(home), "CUMULO_GATEWAY": gateway}
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"first version\n")
    put = ("files", "put", str(notes), "/", "--replace")
    assert (await run_command("cumulo", *put, environ=environ)).returncode == 0
    notes.write_bytes(b"second version, longer\n")
    digest = hashlib.sha256(notes.read_bytes()).hexdigest()
    async with Cumulo(gateway, store=TokenStore(home / "credentials.json")) as client:
        [earlier] = await client.files.ls()
        account_id = (await client.whoami()).account.account_id
        if step == "after the upload":
            hold = held(blob.app.trash, "delete", lambda account, node_id: node_id == earlier.node_id)
        else:
            hold = held(blob.app.folders, "rename", lambda account, node_id, name: str(account) == account_id and name == "notes.txt")
        async with hold as reached:
            # A process of its own, interrupted as Ctrl-C would.
            running = start_command("cumulo", *put, environ=environ, process=True)
            await asyncio.wait_for(reached.wait(), WAIT)
            running.interrupt()
            stopped = await running.wait(WAIT)
        assert stopped.returncode == INTERRUPTED_EXIT, stopped
        assert stopped.stderr.endswith("cumulo: interrupted; run the same command again to finish replacing notes.txt\n"), stopped
        assert "Traceback" not in stopped.stderr
        halfway = sorted(node.name for node in await client.files.ls())
        assert halfway == (["notes (1).txt", "notes.txt"] if step == "after the upload" else ["notes (1).txt"])

        again = await run_command("cumulo", *put, environ=environ)
        assert (again.returncode, again.stderr) == (0, ""), again
        assert again.stdout == (
            f"uploaded notes.txt (23 B, sha256 {digest})\n"
            f"the earlier notes.txt is in the trash (cumulo trash ls; cumulo trash restore {earlier.node_id})\n"
        )
        [now] = await client.files.ls()
        assert (now.name, now.sha256) == ("notes.txt", digest)
        assert [(node.node_id, node.name) for node in await client.files.trash()] == [(earlier.node_id, "notes.txt")]
    assert json.loads((home / "uploads.json").read_text()) == {}  # nothing left to finish
