"""The files the SDK keeps between runs, shared by commands that run at once (two `cumulo
files put` in two terminals, one CUMULO_HOME): no writer fails because of another, and no
writer's entry is lost to another's write. No servers needed."""

from __future__ import annotations

import json
import multiprocessing
import pathlib
import threading

from cumulo_sdk.client import Tokens, TokenStore
from cumulo_sdk.local_state import PendingUploads

WRITERS = 4
ENTRIES = 60  # each writer's, each put and most of them forgotten again


def hammer(path: str, writer: int) -> None:
    """What a run of `files put` does to the file, many times over: keeps an upload id, and
    forgets it once the upload is done; every third one stays (an interrupted upload)."""
    pending = PendingUploads(pathlib.Path(path))
    for number in range(ENTRIES):
        key = f"writer {writer} upload {number}"
        pending.put(key, f"upload-{writer}-{number}")
        if number % 3:
            pending.put(key, None)


def kept(path: pathlib.Path) -> dict[str, str]:
    return {f"writer {w} upload {n}": f"upload-{w}-{n}" for w in range(WRITERS) for n in range(ENTRIES) if n % 3 == 0}


def test_writers_in_threads_lose_no_entry_and_none_fails(tmp_path):
    path = tmp_path / "home" / "uploads.json"
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            hammer(str(path), number)
        except BaseException as exc:  # a writer that crashed: the test's failure, not the thread's
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert json.loads(path.read_text()) == kept(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["uploads.json", "uploads.lock"]  # no scratch file left


def test_writers_in_processes_lose_no_entry_and_none_fails(tmp_path):
    path = tmp_path / "home" / "uploads.json"
    context = multiprocessing.get_context("spawn")  # a process of its own, as a second `cumulo` is
    processes = [context.Process(target=hammer, args=(str(path), number)) for number in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * WRITERS
    assert json.loads(path.read_text()) == kept(path)


def test_an_unreadable_file_is_no_unfinished_work_and_is_written_anew(tmp_path):
    path = tmp_path / "uploads.json"
    path.write_text("{not json")
    pending = PendingUploads(path)
    assert pending.get("a") is None
    pending.put("a", {"replacing": "node", "upload_as": "notes (1).txt"})
    assert json.loads(path.read_text()) == {"a": {"replacing": "node", "upload_as": "notes (1).txt"}}


def test_the_tokens_file_stays_owner_only(tmp_path):
    store = TokenStore(tmp_path / "credentials.json")
    store.save(Tokens(refresh_token="r", session_id="s"))
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600
    assert TokenStore(tmp_path / "credentials.json").tokens == Tokens(refresh_token="r", session_id="s")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.json"]
