"""Notices to the owner of content moderation acted on, naming the file or folder by its path
as the owner sees it (domain/notices.py words them).

The path is blob's, and no remote call is made while a unit of work is open: it is looked up
outside one (`place`; an effect does it once carried out, or before a delete, so that a
deleted file is still named) and handed to `tell` in the unit of work of what the notice tells
of. A notice told without a known place is kept as a draft (`owner_notices`) and finished
outside any unit of work, by `send` right after the caller's commit or by the `send_due` job:
the path is looked up, and the notice queued (`notice.requested`) and the draft deleted
together. The job takes drafts up in batches and asks blob about each account's drafts in one
call, the accounts at once: an outage costs a round one call deadline, not one per draft. While
blob does not answer, a draft waits, a little longer each time; after `PATIENCE` it goes out
naming the content without its path: an outage delays a notice, it never loses one."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_moderation.adapters.services import Services
from cumulo_moderation.adapters.tables import owner_notices
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.domain import notices
from cumulo_moderation.domain.notices import GONE, UNKNOWN, About, Place
from cumulo_moderation.notify import notify
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import CumuloError
from cumulo_platform.logging import get_logger
from cumulo_platform.text import local_time

log = get_logger(__name__)
# How long a notice waits for blob to say where its content is before it goes out without.
PATIENCE = dt.timedelta(minutes=10)
MAX_BACKOFF = dt.timedelta(minutes=2)
# How long whoever takes a draft up has to finish it before the job takes it up again.
LEASE = dt.timedelta(seconds=60)
# Drafts the job takes up at once; within blob's 1000 node ids per DescribePaths call.
BATCH = 100


class OwnerNotices:
    def __init__(self, db: Database, settings: ModerationSettings, clock: Clock, services: Services) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.services = services

    def local(self, at: dt.datetime) -> str:
        """A time as people are told it: local, with the zone."""
        return local_time(at, self.settings.time_zone, seconds=False)

    def about(self, row: Any) -> About | None:
        """What a case (row) is about, when it is a file or folder."""
        if row.node_id is None:
            return None
        via = "link" if row.target_kind == "link" else "upload" if row.kind == "blocklist_match" else "file"
        return About(node_kind=row.node_kind or "file", via=via, since=self.local(row.created_at))

    async def place(self, account_id: Any, node_id: Any) -> Place:
        """Where the owner's file or folder is now; UNKNOWN when blob does not answer. Never
        inside a unit of work."""
        return (await self.places(account_id, [node_id]))[str(node_id)]

    async def places(self, account_id: Any, node_ids: Sequence[Any]) -> dict[str, Place]:
        """`place` of each of the account's nodes (at most 1000), by id, in one call."""
        wanted = [str(n) for n in node_ids]
        try:
            found = await self.services.places(str(account_id), sorted(set(wanted)))
        except CumuloError as exc:  # blob's answer or its absence; anything else is a bug to see
            log.warning("content_paths_not_found", account_id=str(account_id), count=len(wanted), error=type(exc).__name__)
            return dict.fromkeys(wanted, UNKNOWN)
        return {n: found.get(n, GONE) for n in wanted}

    async def tell(
        self, uow: UnitOfWork, *, account_id: Any, reference: str, kind: str, args: dict[str, Any], about: About | None = None,
        node_id: Any = None, place: Place | None = None,
    ) -> None:
        """Queues the notice in the caller's unit of work, or keeps it as a draft when it is
        about content whose place is not known (`place` None: not looked up)."""
        if about is None or node_id is None or (place is not None and place.known):
            self._queue(uow, account_id, reference, kind, args, notices.name(about, place or UNKNOWN) if about else "")
            return
        now = self.clock.now()
        await uow.execute(
            pg_insert(owner_notices)
            .values(
                reference=reference, account_id=uuid.UUID(str(account_id)), kind=kind, args=args, about=dataclasses.asdict(about),
                node_id=uuid.UUID(str(node_id)), created_at=now, due_at=now,
            )
            .on_conflict_do_nothing()
        )

    @staticmethod
    def _queue(uow: UnitOfWork, account_id: Any, reference: str, kind: str, args: dict[str, Any], what: str) -> None:
        _notify(uow, account_id, reference, notices.render(kind, args, what))

    # --- drafts -------------------------------------------------------------------------------

    async def send(self, *references: str) -> int:
        """Finishes the drafts of these references (at most `BATCH`) now, those there are;
        answers how many went out (the job tries the others again). Whoever else finishes a
        draft meanwhile, its notice is queued once: by the one who deletes the draft."""
        async with self.db.unit_of_work() as uow:
            drafts = await self._take(uow, owner_notices.c.reference.in_(references), BATCH)
            await uow.commit()
        return await self._finish(drafts) if drafts else 0

    async def send_due(self) -> int:
        """Finishes the drafts that are due, a batch at a time; replicas share them (SKIP
        LOCKED). Answers how many went out."""
        sent = 0
        while True:
            async with self.db.unit_of_work() as uow:
                drafts = await self._take(uow, owner_notices.c.due_at <= self.clock.now(), BATCH)
                await uow.commit()
            if not drafts:
                return sent
            try:
                sent += await self._finish(drafts)
            except Exception as exc:  # the lease keeps them for a later round; the next batch goes on
                log.warning("owner_notices_not_sent", count=len(drafts), error=type(exc).__name__)

    async def _take(self, uow: UnitOfWork, which: Any, limit: int) -> list[Any]:
        """Up to `limit` drafts, leased to the caller."""
        free = sa.select(owner_notices.c.reference).where(which).order_by(owner_notices.c.due_at).limit(limit).with_for_update(skip_locked=True)
        taken = (
            sa.update(owner_notices)
            .where(owner_notices.c.reference.in_(free.scalar_subquery()))
            .values(due_at=self.clock.now() + LEASE)
            .returning(*owner_notices.c)
        )
        return list((await uow.execute(taken)).all())

    async def _finish(self, drafts: list[Any]) -> int:
        """Sends the drafts whose content blob located (or that waited long enough), puts the
        others off; answers how many went out."""
        accounts: dict[Any, list[Any]] = {}
        for draft in drafts:
            accounts.setdefault(draft.account_id, []).append(draft.node_id)
        found = await asyncio.gather(*(self.places(account, node_ids) for account, node_ids in accounts.items()))
        places = dict(zip(accounts, found, strict=True))
        now = self.clock.now()
        outgoing: dict[str, tuple[Any, notices.Message | None, Place]] = {}
        waiting = []
        for draft in drafts:
            place = places[draft.account_id][str(draft.node_id)]
            if not place.known and now - draft.created_at < PATIENCE:
                waiting.append(draft)
                continue
            try:
                message = notices.render(draft.kind, draft.args, notices.name(About(**draft.about), place))
            except Exception as exc:  # a draft this code cannot word: left to its lease, the others go on
                log.error("owner_notice_not_worded", reference=draft.reference, error=type(exc).__name__)
                continue
            outgoing[draft.reference] = (draft, message, place)
        async with self.db.unit_of_work() as uow:
            if waiting:
                await uow.execute(
                    sa.update(owner_notices)
                    .where(owner_notices.c.reference == sa.bindparam("ref"))
                    .values(attempts=owner_notices.c.attempts + 1, due_at=sa.bindparam("due")),
                    [{"ref": d.reference, "due": now + _backoff(d.attempts)} for d in waiting],
                )
            sent: list[str] = []
            if outgoing:
                # A draft someone else deleted meanwhile was sent by them.
                deleted = sa.delete(owner_notices).where(owner_notices.c.reference.in_(list(outgoing))).returning(owner_notices.c.reference)
                sent = list((await uow.execute(deleted)).scalars())
                for reference in sent:
                    draft, message, _ = outgoing[reference]
                    _notify(uow, draft.account_id, reference, message)
            await uow.commit()
        for reference in sent:
            log.info("owner_notice_sent", reference=reference, named=bool(outgoing[reference][2].path))
        return len(sent)


def _backoff(attempts: int) -> dt.timedelta:
    return min(dt.timedelta(seconds=2 ** min(attempts + 1, 10)), MAX_BACKOFF)


def _notify(uow: UnitOfWork, account_id: Any, reference: str, message: notices.Message | None) -> None:
    if message is not None:  # None: nothing the owner has to hear of
        notify(uow, account_id, reference, message)
