"""A limit on calls per key (a client network, an account) in fixed windows, kept in memory: for
calls that store nothing, where counts lost at a restart, or split between replicas, cost
little. A call may cost more than one unit of the window's allowance (auth's anonymous calls
that check a password share one allowance per client network, each spending what it costs).

Memory stays bounded: windows that ended are dropped as new ones open (they are kept in the
order they opened), and past `max_keys` open windows the oldest goes first."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt

from cumulo_platform.errors import ResourceExhausted

# A window costs about 250 bytes with its key: this many is some 25 MB, far more distinct
# addresses than one replica sees in a window unless it is flooded from everywhere at once.
MAX_KEYS = 100_000


@dataclasses.dataclass(slots=True)
class _Window:
    opened_at: dt.datetime
    calls: int = 0


class CallLimit:
    def __init__(self, *, calls: int, window: dt.timedelta, max_keys: int = MAX_KEYS) -> None:
        if calls < 1 or window <= dt.timedelta(0) or max_keys < 1:
            raise ValueError("a call limit needs at least one call, in a window of some length, for one key")
        self.calls = calls
        self.window = window
        self.max_keys = max_keys
        self._windows: collections.OrderedDict[str, _Window] = collections.OrderedDict()

    def admit(self, key: str, now: dt.datetime, cost: int = 1) -> dt.timedelta | None:
        """Counts a call of `key` costing `cost` units and returns None, or, when its window has
        not that much left, how long until the next window opens (nothing is counted then). A
        call that costs more than a whole window takes a whole window."""
        if cost < 1:
            raise ValueError("a call costs at least one unit")
        cost = min(cost, self.calls)
        self._forget_ended(now)
        window = self._windows.get(key)
        # A clock put back (tests move it) must not leave a window that ends in the far future.
        if window is None or not window.opened_at <= now < window.opened_at + self.window:
            window = self._open(key, now)
        if window.calls + cost > self.calls:
            return window.opened_at + self.window - now
        window.calls += cost
        return None

    def _open(self, key: str, now: dt.datetime) -> _Window:
        window = self._windows[key] = _Window(now)
        self._windows.move_to_end(key)
        while len(self._windows) > self.max_keys:
            self._windows.popitem(last=False)
        return window

    def _forget_ended(self, now: dt.datetime) -> None:
        while self._windows:
            key, oldest = next(iter(self._windows.items()))
            if now < oldest.opened_at + self.window:
                return
            del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)


def spend(limit: CallLimit, key: str, now: dt.datetime, cost: int, *, what: str, reason: str) -> None:
    """Spends `cost` of `key`'s allowance, or refuses the call with the time to wait. `what`
    names what was counted and whose ("new accounts from this address")."""
    wait = limit.admit(key, now, cost)
    if wait is not None:
        raise ResourceExhausted(f"too many {what}; try again later", reason=reason, retry_after=wait)
