"""What a device reads: the account's zones and usage, the changes after a change token
(refused once tombstones past it were dropped), records by id, and an evidence bundle's
rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa

from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, InvalidArgument
from cumulo_platform.evidence import paged
from cumulo_sync.adapters.tables import SCHEMA, records, records_by_id, usage, zones
from cumulo_sync.domain import rules

MAX_FETCH = 1000
DEFAULT_FETCH = 200
MAX_GET = 400
# Payload bytes an answer to FetchChanges carries before it stops (more_coming): a page of
# a thousand 1 MiB records would be a gigabyte to build here and far past the 16 MiB a client
# takes. A page still holds at least its first record, and ends after the one that crosses this.
FETCH_BYTES = 4 * 1024 * 1024

# The changes after a change number, in order, as many as `n` and as `budget` bytes allow:
# a running sum over the (account, zone, seq) index, so the database stops at the page's end.
_CHANGES = sa.text(
    f"""
    SELECT * FROM (
        SELECT r.*, sum(octet_length(r.payload)) OVER (ORDER BY r.seq ROWS UNBOUNDED PRECEDING) - octet_length(r.payload) AS bytes_before
        FROM {SCHEMA}.records r WHERE r.account_id = :account AND r.zone_id = :zone AND r.seq > :after
        ORDER BY r.seq LIMIT :n
    ) page WHERE page.bytes_before < :budget ORDER BY page.seq
    """
)

_BY_ID = records_by_id()


async def zone_row(conn: Any, account: uuid.UUID, name: str) -> Any:
    """The account's live zone of that name, or None."""
    return (
        await conn.execute(sa.select(zones).where(zones.c.account_id == account, zones.c.name == name, zones.c.dropped_at.is_(None)))
    ).first()


class Pulls:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def fetch_changes(self, account: uuid.UUID, zone: str, token: str, limit: int) -> tuple[list[Any], str, bool]:
        if limit < 0 or limit > MAX_FETCH:
            raise InvalidArgument("limit", f"must be between 0 and {MAX_FETCH}")
        limit = limit or DEFAULT_FETCH
        async with self.db.read() as conn:
            found = await zone_row(conn, account, zone)
            after = rules.parse_change_token(token, found.zone_id if found is not None else None)
            if found is None:
                return [], "", False  # no such zone yet: nothing to fetch, start from "" later
            if after > found.last_seq:
                raise InvalidArgument("change_token", "is not a change token this service gave out")
            if 0 < after < found.horizon_seq:
                raise FailedPrecondition(
                    "this change token is older than the zone's deleted-record history: fetch the zone again from an empty token",
                    reason="CHANGE_TOKEN_EXPIRED",
                )
            rows = (
                await conn.execute(
                    _CHANGES, {"account": account, "zone": found.zone_id, "after": after, "n": limit + 1, "budget": FETCH_BYTES}
                )
            ).all()
            more = len(rows) > limit
            rows = rows[:limit]
            if not more and rows and rows[-1].bytes_before + len(rows[-1].payload) >= FETCH_BYTES:
                # The budget may have ended the page: is there anything after it?
                later = records.c.account_id == account, records.c.zone_id == found.zone_id, records.c.seq > rows[-1].seq
                more = (await conn.execute(sa.select(records.c.seq).where(*later).limit(1))).first() is not None
        # Every change up to last_seq had committed when the zone row was read.
        last = rows[-1].seq if more else max(found.last_seq, rows[-1].seq if rows else 0, after)
        return list(rows), rules.change_token(found.zone_id, last), more

    async def get_records(self, account: uuid.UUID, zone: str, record_ids: Sequence[str]) -> list[Any]:
        if len(record_ids) > MAX_GET:
            raise InvalidArgument("record_ids", f"at most {MAX_GET} per call")
        ids = list(dict.fromkeys(rules.check_record_id(r, f"record_ids[{i}]") for i, r in enumerate(record_ids)))
        async with self.db.read() as conn:
            found = await zone_row(conn, account, zone)
            if found is None or not ids:
                return []
            return list((await conn.execute(_BY_ID, {"account_id": account, "zone_id": found.zone_id, "ids": ids})).all())

    async def list_zones(self, account: uuid.UUID) -> list[Any]:
        async with self.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        sa.select(zones).where(zones.c.account_id == account, zones.c.dropped_at.is_(None)).order_by(zones.c.name)
                    )
                ).all()
            )

    async def usage(self, account: uuid.UUID) -> int:
        async with self.db.read() as conn:
            used = (await conn.execute(sa.select(usage.c.used).where(usage.c.account_id == account))).scalar()
        return used or 0

    async def evidence(self, account: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
        """The account's zones (deleted ones kept for a hold too) and every record with its
        payload, for an evidence bundle."""
        async for row in paged(self.db, sa.select(zones).where(zones.c.account_id == account), [zones.c.zone_id], kind="zone"):
            yield row
        mine = sa.select(records).where(records.c.account_id == account)
        async for row in paged(self.db, mine, [records.c.zone_id, records.c.record_id], kind="record"):
            yield row
