"""Password-guess throttling: a few free failures, then a delay that doubles with each failure,
up to a ceiling. Which counters an attempt passes (per account and address, per account, per
address, per session) is cumulo_auth.throttling's business; this is one counter's arithmetic.

An attempt is *pending* while its password is being checked and counts as a failure only once
it failed, so that right passwords never use up the free failures. Parallel guesses still
cannot slip past them: a counter lets only as many attempts be pending at once as it has free
failures left (at least one once those are spent and no delay runs); further attempts wait
for one to end and are then judged by the failures it recorded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

# A pending attempt that has not ended after this long was abandoned (its replica stopped);
# checking a password takes a fraction of a second.
PENDING_TTL = dt.timedelta(minutes=2)


class Verdict(enum.Enum):
    GO = "go"  # the attempt may be checked now
    WAIT = "wait"  # as many attempts are being checked as failures may still be free
    BLOCKED = "blocked"  # a delay runs: refused at once


@dataclasses.dataclass(frozen=True)
class CounterState:
    failures: int
    last_failure_at: dt.datetime
    blocked_until: dt.datetime | None
    pending: int
    pending_until: dt.datetime | None


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

    def failures_now(self, state: CounterState, now: dt.datetime) -> int:
        """The failures that still count (all are forgotten after a quiet `forget_after`)."""
        return 0 if now - state.last_failure_at > self.forget_after else state.failures

    @staticmethod
    def pending_now(state: CounterState, now: dt.datetime) -> int:
        """The attempts being checked (none once they are overdue: abandoned)."""
        if state.pending_until is None or state.pending_until <= now:
            return 0
        return state.pending

    def verdict(self, state: CounterState, now: dt.datetime) -> Verdict:
        if state.blocked_until is not None and state.blocked_until > now:
            return Verdict.BLOCKED
        room = max(self.free_failures - self.failures_now(state, now), 1)
        return Verdict.WAIT if self.pending_now(state, now) >= room else Verdict.GO
