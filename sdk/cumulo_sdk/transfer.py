"""What uploads, downloads and backups share: the progress a transfer reports (bytes moved,
and for an upload the hashing before it and the bytes the server has stored) and the
SHA-256 of a local file, read off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import pathlib
from collections.abc import Callable
from typing import Any, BinaryIO

CHUNK = 2 * 1024 * 1024  # bytes per upload message, and per read when hashing
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


class TransferProgress:
    """A progress callback (bytes sent or received, and in all) that also hears of the hashing
    before an upload and of the bytes the server has stored, from which a new run resumes:
    sent and stored differ while the server is still writing what it has received."""

    def __call__(self, done: int, total: int) -> None:
        pass

    def hashing(self, done: int, total: int) -> None:
        pass

    def stored(self, done: int, total: int) -> None:
        pass


def tell_stored(progress: Progress | None, done: int, total: int) -> None:
    if isinstance(progress, TransferProgress):
        progress.stored(done, total)


def sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _hash_block(handle: BinaryIO, digest: Any) -> int:
    block = handle.read(CHUNK)
    digest.update(block)
    return len(block)


async def hash_file(path: pathlib.Path, progress: Progress | None = None, *, base: int = 0, total: int | None = None) -> str:
    """SHA-256 of a file, off the event loop one block at a time (a cancelled hash stops after
    its current block), telling `progress.hashing(base + bytes hashed, total)` as it goes."""
    hashing = progress.hashing if isinstance(progress, TransferProgress) else None
    size = path.stat().st_size
    total = size if total is None else total
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        while read := await asyncio.to_thread(_hash_block, handle, digest):
            done += read
            if hashing:
                hashing(base + done, total)
    if hashing and not done:
        hashing(base, total)
    return digest.hexdigest()
