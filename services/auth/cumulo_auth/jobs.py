"""Auth's periodic work: forgetting throttle counters nobody needs any more, and the signing key to sign with."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from cumulo_auth.adapters.signing import SigningKeys
from cumulo_auth.adapters.tables import login_throttle
from cumulo_auth.live_sessions import REFRESH_EVERY as LIVE_REFRESH_EVERY
from cumulo_auth.live_sessions import LiveSessions
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.runtime import Job, periodic

THROTTLE_CLEANUP_EVERY = 600.0  # seconds
SIGNING_KEY_REFRESH_EVERY = 30.0  # seconds


class ThrottleCleanup:
    def __init__(self, *, db: Database, clock: Clock, forget_after: dt.timedelta) -> None:
        self.db = db
        self.clock = clock
        self.forget_after = forget_after

    async def forget_old_throttles(self, batch_size: int = 1000) -> int:
        """Deletes throttle rows whose failures are forgotten anyway (unknown logins leave one
        each); in batches with SKIP LOCKED, so replicas share the work and never wait."""
        now = self.clock.now()
        stale = (
            sa.select(login_throttle.c.scope, login_throttle.c.key)
            .where(
                login_throttle.c.last_failure_at < now - self.forget_after,
                sa.or_(login_throttle.c.blocked_until.is_(None), login_throttle.c.blocked_until < now),
                # An attempt still being checked keeps its row (an abandoned one lets go when overdue).
                sa.or_(login_throttle.c.pending == 0, login_throttle.c.pending_until.is_(None), login_throttle.c.pending_until < now),
            )
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).cte("stale")
        async with self.db.unit_of_work() as uow:
            deleted = await uow.execute(
                sa.delete(login_throttle).where(
                    sa.tuple_(login_throttle.c.scope, login_throttle.c.key).in_(sa.select(stale.c.scope, stale.c.key))
                )
            )
            await uow.commit()
        return deleted.rowcount or 0


def jobs(cleanup: ThrottleCleanup, keys: SigningKeys, live: LiveSessions) -> list[Job]:
    """The throttles' clean-up; the signing key every replica signs with (a rotation's new key
    once its announcement is over), and the retirement of keys whose tokens expired; and what
    changed in accounts and sessions, forgotten from every replica's memory of them."""
    return [
        periodic(cleanup.forget_old_throttles, every=THROTTLE_CLEANUP_EVERY),
        periodic(keys.refresh, every=SIGNING_KEY_REFRESH_EVERY),
        periodic(live.refresh, every=LIVE_REFRESH_EVERY),
    ]
