"""The blocklist: SHA-256 digests of known unlawful content, managed by moderators (a bulk
import from a file through the CLI).

Blob enforces it, in every account: an entry is put into blob (BlockContent) as an effect
(effects.py), recorded in the unit of work that lists it and carried out right after — or by
`Effects.resume_due` when blob does not answer — a thousand digests an effect. Blob then
refuses uploads of the content and blocks every stored copy, disconnecting its share links;
each copy it names is queued for review as a blocklist match (consumers.py), as an upload
blob let through before it knew the entry is. Taking an entry off lets the content go in blob
too: uploads are allowed again, and copies no account's own block holds (a match still under
review holds its file) are unblocked. Only one change to an entry is on its way at a time."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_moderation import audit
from cumulo_moderation.adapters.services import StoredCopy
from cumulo_moderation.adapters.tables import blocklist
from cumulo_moderation.consumers import Checks
from cumulo_moderation.domain import rules
from cumulo_moderation.effects import DONE, Effects, did
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import InvalidArgument, NotFound, Unavailable
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import check_sha256, decode_token, encode_token, page_size

log = get_logger(__name__)
MAX_IMPORT = 10_000
INSERT_BATCH = 2000
EFFECT_BATCH = 1000  # digests a call to blob takes
PURPOSE = "blocklist_entry"


def subject_of(digests: list[str]) -> str:
    """What an effect on entries acts on, for the audit log: its first digest, and how many more."""
    return f"sha256:{digests[0]}" + (f" (+{len(digests) - 1})" if len(digests) > 1 else "")


class Blocklist:
    def __init__(self, db: Database, clock: Clock, effects: Effects, checks: Checks) -> None:
        self.db = db
        self.clock = clock
        self.effects = effects
        self.checks = checks
        effects.on_content_done(PURPOSE, self._reached)

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
                batch = (
                    await uow.execute(
                        pg_insert(blocklist)
                        .values([{"sha256": d, "reason": reason, "added_by": actor, "added_at": now} for d in wanted[start : start + INSERT_BATCH]])
                        .on_conflict_do_nothing()
                        .returning(blocklist.c.sha256)
                    )
                ).scalars().all()
                await audit.record_each(uow, at=now, actor=actor, action="blocklist.added", reasons={f"sha256:{d}": reason for d in batch})
                added += batch
            pending = await self._record(uow, sorted(added), action="block_content", reason=reason, actor=actor)
            await uow.commit()
        await self._carry_out(pending)
        return len(added), len(wanted) - len(added)

    async def remove(self, digest: str, *, reason: str, actor: str) -> None:
        value = check_sha256(digest)
        reason = rules.check_reason(reason)
        async with self.db.unit_of_work() as uow:
            gone = (await uow.execute(sa.delete(blocklist).where(blocklist.c.sha256 == value))).rowcount
            if not gone:
                raise NotFound("this digest is not on the blocklist", reason="NOT_LISTED")
            await audit.record(uow, at=self.clock.now(), actor=actor, action="blocklist.removed", target=f"sha256:{value}", reason=reason)
            pending = await self._record(uow, [value], action="unblock_content", reason=reason, actor=actor)
            await uow.commit()
        await self._carry_out(pending)

    async def _record(self, uow: UnitOfWork, digests: list[str], *, action: str, reason: str, actor: str) -> list[Any]:
        """The effects that put the change into blob, pending, for the caller to carry out."""
        if not digests:
            return []
        if not await self.effects.claim_digests(uow, digests):
            raise Unavailable("a change to some of these blocklist entries is still being carried out; try again", reason="EFFECT_PENDING")
        pending = []
        for start in range(0, len(digests), EFFECT_BATCH):
            batch = digests[start : start + EFFECT_BATCH]
            pending.append(
                await self.effects.record(
                    uow, purpose=PURPOSE, subject=subject_of(batch), action=action, account_id=None, actor=actor, reason=reason,
                    call_reason=f"blocklist: {reason}", digests=batch,
                )
            )
        return pending

    async def _carry_out(self, pending: list[Any]) -> None:
        """Right after the change: what fails stays pending for `resume_due` (or, refused, is
        dropped with an audit entry saying so); the change itself stands."""
        for effect in pending:
            try:
                await self.effects.run(effect)
            except Exception as exc:
                log.warning("blocklist_effect_not_done", effect_id=str(effect.effect_id), action=effect.action, error=type(exc).__name__)

    async def _reached(self, uow: UnitOfWork, effect: Any, copies: list[StoredCopy], more: bool) -> None:
        """Blob has the change: on record for each entry, and each stored copy an entry blocked
        queued for review (its block recorded as the account's own, its case opened)."""
        now = self.clock.now()
        found = Counter(copy.sha256 for copy in copies)
        text = did(effect, DONE)
        await audit.record_each(
            uow, at=now, actor=effect.actor, action=f"effect.{effect.action}",
            reasons={f"sha256:{d}": f"{text} ({'at least ' if more else ''}{found[d]} stored {'file' if found[d] == 1 else 'files'})"
                     for d in effect.digests},
        )
        if more:  # blocked all the same; only those named are queued each
            log.warning("blocklist_copies_not_all_named", effect_id=str(effect.effect_id), named=len(copies))
        if effect.action != "block_content" or not copies:
            return
        reasons = dict(
            (await uow.execute(sa.select(blocklist.c.sha256, blocklist.c.reason).where(blocklist.c.sha256.in_(list(found))))).tuples().all()
        )
        busy = 0
        for copy in copies:
            if copy.sha256 in reasons:
                matched = await self.checks.match(
                    uow, account_id=copy.account_id, node_id=copy.node_id, sha256=copy.sha256, reason=reasons[copy.sha256]
                )
                busy += not matched
        # A file with another effect pending (a decision about it) is blocked, without a case of its own.
        log.info("blocklist_copies_queued", effect_id=str(effect.effect_id), copies=len(copies), busy=busy)

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
