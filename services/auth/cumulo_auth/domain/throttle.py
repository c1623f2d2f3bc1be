"""Login throttling: a few free failures, then a delay that doubles with each failure, up to
a ceiling. Counters are kept per account (the login typed) and per client address."""

from __future__ import annotations

import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int
    base_delay: dt.timedelta
    max_delay: dt.timedelta
    forget_after: dt.timedelta

    def blocked_until(self, failures: int, last_failure_at: dt.datetime) -> dt.datetime | None:
        """When the next attempt is allowed after `failures` consecutive failures."""
        over = failures - self.free_failures
        if over < 0:
            return None
        delay = min(self.base_delay * (2 ** min(over, 30)), self.max_delay)
        return last_failure_at + delay

    def failures_after_new_failure(self, failures: int, last_failure_at: dt.datetime | None, now: dt.datetime) -> int:
        if last_failure_at is None or now - last_failure_at > self.forget_after:
            return 1
        return failures + 1
