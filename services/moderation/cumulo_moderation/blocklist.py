"""The blocklist: SHA-256 digests of known unlawful content, managed by moderators (a bulk
import from a file through the CLI). Uploads that match are blocked and queued (consumers.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_moderation import audit
from cumulo_moderation.adapters.tables import blocklist
from cumulo_moderation.domain import rules
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument, NotFound
from cumulo_platform.paging import check_sha256, decode_token, encode_token, page_size

MAX_IMPORT = 10_000
INSERT_BATCH = 2000


class Blocklist:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def add(self, digests: Any, *, reason: str, actor: str) -> tuple[int, int]:
        """(added, already listed)."""
        if not digests:
            raise InvalidArgument("sha256", "give at least one SHA-256 digest")
        if len(digests) > MAX_IMPORT:
            raise InvalidArgument("sha256", f"at most {MAX_IMPORT} digests per call")
        wanted = sorted({check_sha256(value, f"sha256[{i}]") for i, value in enumerate(digests)})
        reason = rules.check_reason(reason)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            added: list[str] = []
            for start in range(0, len(wanted), INSERT_BATCH):  # a statement takes at most 32767 parameters
                added += (
                    await uow.execute(
                        pg_insert(blocklist)
                        .values([{"sha256": d, "reason": reason, "added_by": actor, "added_at": now} for d in wanted[start : start + INSERT_BATCH]])
                        .on_conflict_do_nothing()
                        .returning(blocklist.c.sha256)
                    )
                ).scalars().all()
            for digest in added:
                await audit.record(uow, at=now, actor=actor, action="blocklist.added", target=f"sha256:{digest}", reason=reason)
            await uow.commit()
        return len(added), len(wanted) - len(added)

    async def remove(self, digest: str, *, reason: str, actor: str) -> None:
        value = check_sha256(digest)
        reason = rules.check_reason(reason)
        async with self.db.unit_of_work() as uow:
            gone = (await uow.execute(sa.delete(blocklist).where(blocklist.c.sha256 == value))).rowcount
            if not gone:
                raise NotFound("this digest is not on the blocklist", reason="NOT_LISTED")
            await audit.record(uow, at=self.clock.now(), actor=actor, action="blocklist.removed", target=f"sha256:{value}", reason=reason)
            await uow.commit()

    async def listing(self, *, size: int, token: str) -> tuple[list[Any], str]:
        limit = page_size(size, default=100, maximum=1000)
        query = sa.select(blocklist).order_by(blocklist.c.sha256).limit(limit + 1)
        if token:
            (after,) = decode_token(token, str)
            query = query.where(blocklist.c.sha256 > after)
        async with self.db.read() as conn:
            rows = list((await conn.execute(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_token([rows[-1].sha256]) if more else ""
