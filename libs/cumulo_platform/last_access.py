"""The last-access signal every service sends: every authenticated use counts, coalesced per account.

Each authenticated call marks its account as used. The recorder coalesces: it emits at most
one `access.recorded` event per account per interval, and writes the due ones in one
transaction per flush through the outbox, off the request path.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from google.protobuf import timestamp_pb2

from cumulo.events.v1 import events_pb2
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.logging import get_logger
from cumulo_platform.tracing import current_traceparent

EVENT_TYPE = "access.recorded"
log = get_logger(__name__)


class LastAccessRecorder:
    def __init__(
        self, db: Database, *, service: str, interval: dt.timedelta, clock: Clock, flush_every: float = 1.0
    ) -> None:
        self.db = db
        self.service = service
        self.interval = interval
        self.clock = clock
        self.flush_every = flush_every
        self._last_emitted: dict[str, dt.datetime] = {}
        self._pending: dict[str, dt.datetime] = {}
        # The trace context of the use that each pending event reports (traced calls only):
        # the lifecycle's handling of the event is then in that call's trace.
        self._origins: dict[str, tuple[str, str]] = {}
        self._flushing = 0

    @property
    def idle(self) -> bool:
        """Nothing marked is waiting for the next flush, and no flush is writing: once idle,
        every mark made so far is in the outbox (a flush takes the marks before its
        transaction commits, so the marks alone would say idle while the events are nowhere)."""
        return not self._pending and not self._flushing

    def mark(self, account_id: str) -> None:
        now = self.clock.now()
        last = self._last_emitted.get(account_id)
        if last is not None and now - last < self.interval:
            return
        self._last_emitted[account_id] = now
        self._pending[account_id] = now
        origin = current_traceparent()
        if origin[0]:
            self._origins[account_id] = origin

    async def flush(self) -> int:
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        origins, self._origins = self._origins, {}
        self._flushing += 1
        try:
            async with self.db.unit_of_work() as uow:
                for account_id, at in pending.items():
                    stamp = timestamp_pb2.Timestamp()
                    stamp.FromDatetime(at)
                    uow.emit(
                        EVENT_TYPE,
                        events_pb2.AccessRecorded(account_id=account_id, accessed_at=stamp, service=self.service),
                        account_id=account_id,
                        trace=origins.get(account_id, ("", "")),
                    )
                await uow.commit()
        except BaseException:
            # Keep them for the next flush (also when cancelled at shutdown: close() flushes
            # again); a newer mark of the same account wins.
            for account_id, at in pending.items():
                self._pending.setdefault(account_id, at)
            for account_id, origin in origins.items():
                self._origins.setdefault(account_id, origin)
            raise
        finally:
            self._flushing -= 1
        self._forget_old()
        return len(pending)

    def _forget_old(self) -> None:
        horizon = self.clock.now() - self.interval
        if len(self._last_emitted) > 1000:
            self._last_emitted = {a: t for a, t in self._last_emitted.items() if t > horizon}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every)
            try:
                await self.flush()
            except Exception as exc:
                log.warning("last_access_flush_retry", error=type(exc).__name__)

    async def close(self) -> None:
        try:
            await self.flush()
        except Exception as exc:
            log.warning("last_access_flush_lost", error=type(exc).__name__)
