"""What the SDK keeps on this machine between runs (the session's tokens, unfinished uploads),
in files that several commands may share at once (two `cumulo files put` in two terminals):
each file is written whole or not at all, through a scratch file of its own, and a change
(read, modify, write) is made under an exclusive lock, so that no writer loses another's."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib
import tempfile
from collections.abc import Iterator
from typing import Any


def lock_path(path: pathlib.Path) -> pathlib.Path:
    """The lock of a state file: a file beside it, as the state file itself is replaced, not
    written in place (a lock on the replaced file would guard nothing)."""
    return path.with_suffix(".lock")


@contextlib.contextmanager
def locked(path: pathlib.Path) -> Iterator[None]:
    """Holds `path`'s lock, waiting for another process that holds it (briefly: it is held
    only around a read and a write of a small file)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_whole(path: pathlib.Path, text: str) -> None:
    """Replaces `path` with `text` (owner-only, 0600): a reader sees the old text or the new,
    never a part. The scratch file's name is unique, so that writers never share one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    except BaseException:
        pathlib.Path(scratch).unlink(missing_ok=True)
        raise


@dataclasses.dataclass
class PendingUploads:
    """Unfinished work by key, so that a new run goes on with it: the upload id of a local
    file's unfinished upload, and what `cumulo files put --replace` has still to do. Values
    are JSON (a string or an object). Without a path, nothing is kept."""

    path: pathlib.Path | None

    def _load(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            entries = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> Any:
        return self._load().get(key)

    def put(self, key: str, value: Any) -> None:
        """Keeps `value` under `key` (None forgets the key); the others' entries stay."""
        if self.path is None:
            return
        with locked(self.path):
            entries = self._load()
            if value is None:
                if key not in entries:
                    return
                entries.pop(key)
            else:
                entries[key] = value
            write_whole(self.path, json.dumps(entries))
