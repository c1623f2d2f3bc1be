"""Fixed-window counters: complaint intake per reporter and per network address, share-link
creation per account."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_moderation.adapters.tables import counters
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import ResourceExhausted


async def bump(uow: UnitOfWork, key: str, window: dt.timedelta, now: dt.datetime) -> int:
    """Counts one more in the current fixed window of `key`; answers the count so far."""
    seconds = int(window.total_seconds())
    start = dt.datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, dt.UTC)
    statement = pg_insert(counters).values(key=key, window_start=start, count=1)
    statement = statement.on_conflict_do_update(index_elements=["key", "window_start"], set_={"count": counters.c.count + 1})
    count = (await uow.execute(statement.returning(counters.c.count))).scalar_one()
    await uow.execute(sa.delete(counters).where(counters.c.key == key, counters.c.window_start < start))
    return int(count)


async def within_limit(uow: UnitOfWork, key: str, limit: int, window: dt.timedelta, now: dt.datetime, what: str) -> None:
    if await bump(uow, key, window, now) > limit:
        raise ResourceExhausted(f"too many {what}; try again later", reason="COMPLAINT_RATE_LIMITED")


async def prune_counters(db: Database, older_than: dt.datetime) -> int:
    """Forgets counting windows that ended long ago (keys that are never seen again too)."""
    async with db.unit_of_work() as uow:
        gone = (await uow.execute(sa.delete(counters).where(counters.c.window_start < older_than))).rowcount or 0
        await uow.commit()
    return gone
