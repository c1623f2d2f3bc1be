"""The tar format (POSIX pax), written as a stream: a header before each file's bytes, padding
after them to a block, two empty blocks at the end. Headers come from `tarfile`, which writes
pax records for what plain ustar cannot hold (long or non-ASCII names, sizes over 8 GiB)."""

from __future__ import annotations

import datetime as dt
import posixpath
import tarfile

BLOCK = 512
END = b"\0" * (2 * BLOCK)


def header(name: str, size: int, modified: dt.datetime) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(modified.timestamp())
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def entry_size(name: str, size: int, modified: dt.datetime) -> int:
    """Bytes an entry takes in the archive: header, data, padding."""
    return len(header(name, size, modified)) + size + len(padding(size))


def member_name(*segments: str) -> str:
    """A path inside the archive from names as people typed them: no segment may climb out of
    the archive's folder or be empty ("." and ".." become "_")."""
    safe = [("_" if s in ("", ".", "..") else s.replace("/", "_")) for s in segments]
    name = "/".join(safe)
    assert posixpath.normpath(name) == name and not name.startswith("/"), name
    return name
