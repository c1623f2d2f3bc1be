"""A backup's manifest as it streams in: each entry checked and counted against the
manifest's limits as it comes (how many entries, how long a path, how many bytes as sent),
and the entries not stored yet, handed over a chunk at a time. Pure; raises InvalidArgument
naming the entry's field."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from cumulo_platform.errors import InvalidArgument, parse_id
from cumulo_platform.paging import check_sha256
from cumulo_sync.domain import rules

MAX_TOTAL_SIZE = 2**63 - 1  # the entries' sizes add up in a bigint


@dataclasses.dataclass(frozen=True)
class Entry:
    path: str
    file_id: uuid.UUID
    size: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class Limits:
    entries: int
    path_bytes: int
    manifest_bytes: int  # the entries as sent (protobuf bytes)


class Manifest:
    """Paths are told apart here among the pending entries; the database tells them from the
    entries stored before."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.entries = 0
        self.bytes = 0
        self.total_size = 0
        self.messages = 0
        self.pending: list[Entry] = []
        self._pending_paths: set[str] = set()

    def count_message(self) -> None:
        # An empty message costs little, but not nothing: no more of them than entries.
        self.messages += 1
        if self.messages > self.limits.entries:
            raise InvalidArgument("entries", f"a backup's entries come in at most {self.limits.entries} messages")

    def add(self, item: Any) -> None:
        """A BackupEntry as sent, checked; the next index of the manifest."""
        i = self.entries
        field = f"entries[{i}]"
        if i >= self.limits.entries:
            raise InvalidArgument("entries", f"a backup holds at most {self.limits.entries} entries")
        self.bytes += item.ByteSize()
        if self.bytes > self.limits.manifest_bytes:
            raise InvalidArgument("entries", f"a backup's entries take at most {self.limits.manifest_bytes} bytes as sent")
        path = rules.check_path(item.path, f"{field}.path", self.limits.path_bytes)
        if path in self._pending_paths:
            raise InvalidArgument(f"{field}.path", "appears more than once in this backup")
        if item.size < 0:
            raise InvalidArgument(f"{field}.size", "must not be negative")
        if self.total_size + item.size > MAX_TOTAL_SIZE:
            raise InvalidArgument(f"{field}.size", "the entries' sizes add up to more than a backup can hold")
        file_id = parse_id(item.file_id, f"{field}.file_id", "a blob file id")
        self.pending.append(Entry(path, file_id, item.size, check_sha256(item.sha256, f"{field}.sha256")))
        self._pending_paths.add(path)
        self.entries += 1
        self.total_size += item.size

    def take(self) -> tuple[list[Entry], int]:
        """The pending entries, and the index in the manifest of the first of them."""
        chunk = self.pending
        self.pending, self._pending_paths = [], set()
        return chunk, self.entries - len(chunk)
