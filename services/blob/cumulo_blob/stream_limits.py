"""Streams at once per key — an account's uploads, a client address's or a share link's
downloads. A stream holds a slot for as long as it lasts; one more than the limit is refused
at once (RESOURCE_EXHAUSTED, with the reason and a retry delay) instead of waiting for a place.

Each replica counts its own streams: what the limits protect — its database connections, its
S3 connections and its memory — is its own too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from types import TracebackType

from cumulo_platform.errors import ResourceExhausted

# When a refused client may try again: streams end within seconds to a minute (the stall and
# idle timeouts bound the ones whose client went quiet).
RETRY_AFTER = dt.timedelta(seconds=5)


class StreamSlots:
    def __init__(self, *, limit: int, what: str, reason: str, retry_after: dt.timedelta = RETRY_AFTER) -> None:
        self.limit = limit
        self.what = what  # "uploads of this account": for the refusal's message
        self.reason = reason
        self.retry_after = retry_after
        self._held: dict[Hashable, int] = {}
        self.in_use = 0  # streams holding a slot now, all keys together (a metrics gauge)

    def take(self, key: Hashable) -> Slot:
        held = self._held.get(key, 0)
        if held >= self.limit:
            raise ResourceExhausted(
                f"{self.limit} {self.what} are already running, the most allowed at once; try again when one has ended",
                reason=self.reason,
                retry_after=self.retry_after,
                metadata={"limit": str(self.limit)},
            )
        self._held[key] = held + 1
        self.in_use += 1
        return Slot(self, key)

    def held(self, key: Hashable) -> int:
        return self._held.get(key, 0)

    def _give_back(self, key: Hashable) -> None:
        self.in_use -= 1
        left = self._held[key] - 1
        if left:
            self._held[key] = left
        else:
            del self._held[key]  # keys come and go with their streams: nothing accumulates


class Slot:
    """One stream's place, given back once however often `release` is called."""

    def __init__(self, slots: StreamSlots, key: Hashable) -> None:
        self._slots: StreamSlots | None = slots
        self._key = key

    def release(self) -> None:
        if self._slots is not None:
            self._slots._give_back(self._key)
            self._slots = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
