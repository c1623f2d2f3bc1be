"""What operators (cumulo-admin, other services) and an account's owner read: an account with
its history and notices, lists by state, the numbers ahead, and the purges under way."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo_lifecycle.adapters.tables import accounts, notices, purge_participants, purges, transitions
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.domain.calendar import ACTIVE, DELETED, DELETING, FROZEN
from cumulo_lifecycle.rows import AccountRows
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument, NotFound, parse_id
from cumulo_platform.legal_holds import LegalHolds


class Reports:
    def __init__(self, db: Database, settings: LifecycleSettings, clock: Clock, *, rows: AccountRows, holds: LegalHolds) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.rows = rows
        self.holds = holds

    async def get(self, account_id: str) -> tuple[Any, list[Any], list[Any]]:
        account = parse_id(account_id, "account_id", "account")
        async with self.db.read() as conn:
            row = (await conn.execute(self.rows.select_described().where(accounts.c.account_id == account))).first()
            if row is None:
                raise NotFound("the lifecycle knows no such account", reason="ACCOUNT_NOT_FOUND")
            history = (await conn.execute(sa.select(transitions).where(transitions.c.account_id == account).order_by(transitions.c.transition_id))).all()
            sent = (await conn.execute(sa.select(notices).where(notices.c.account_id == account).order_by(notices.c.created_at))).all()
        return row, list(history), list(sent)

    async def state_of(self, account_id: str) -> Any | None:
        async with self.db.read() as conn:
            return (await conn.execute(self.rows.select_described().where(accounts.c.account_id == uuid.UUID(account_id)))).first()

    async def list_accounts(self, *, state: str, page_size: int, page_token: str) -> tuple[list[Any], str]:
        if not 0 <= page_size <= 1000:
            raise InvalidArgument("page_size", "must be between 1 and 1000")
        size = page_size or 100
        query = self.rows.select_described().order_by(accounts.c.account_id).limit(size + 1)
        if state:
            query = query.where(accounts.c.state == state)
        if page_token:
            query = query.where(accounts.c.account_id > parse_id(page_token, "page_token", "a token from a previous page"))
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > size
        rows = rows[:size]
        return list(rows), str(rows[-1].account_id) if more else ""

    async def report(self) -> dict[str, int]:
        now = self.clock.now()
        week, month = now + dt.timedelta(days=7), now + dt.timedelta(days=30)
        c = accounts.c
        margin = self.settings.calendar.safety_margin
        held, not_held = self.holds.is_held(c.account_id), self.holds.not_held(c.account_id)
        async with self.db.read() as conn:
            counts: dict[str, int] = dict((await conn.execute(sa.select(c.state, sa.func.count()).group_by(c.state))).all())
            row = (
                await conn.execute(
                    sa.select(
                        sa.func.count().filter(held),
                        sa.func.count().filter(c.state == ACTIVE, c.freeze_at <= week),
                        sa.func.count().filter(c.state == ACTIVE, c.freeze_at <= month),
                        sa.func.count().filter(c.state == FROZEN, not_held, c.delete_at + margin <= week),
                        sa.func.count().filter(c.state == FROZEN, not_held, c.delete_at + margin <= month),
                    )
                )
            ).one()
            stuck = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(purges)
                    .where(purges.c.completed_at.is_(None), purges.c.started_at <= now - self.settings.purge_stuck_after)
                )
            ).scalar_one()
        return {
            "active": counts.get(ACTIVE, 0),
            "frozen": counts.get(FROZEN, 0),
            "deleting": counts.get(DELETING, 0),
            "deleted": counts.get(DELETED, 0),
            "held": row[0],
            "freezes_next_7_days": row[1],
            "freezes_next_30_days": row[2],
            "deletions_next_7_days": row[3],
            "deletions_next_30_days": row[4],
            "stuck_purges": stuck,
        }

    async def purges(self, *, stuck_only: bool) -> list[tuple[Any, list[Any], bool]]:
        now = self.clock.now()
        threshold = now - self.settings.purge_stuck_after
        query = sa.select(purges).where(purges.c.completed_at.is_(None)).order_by(purges.c.started_at).limit(1000)
        if stuck_only:
            query = query.where(purges.c.started_at <= threshold)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
            found = []
            for purge in rows:
                parts = (
                    await conn.execute(
                        sa.select(purge_participants).where(purge_participants.c.account_id == purge.account_id).order_by(purge_participants.c.service)
                    )
                ).all()
                found.append((purge, list(parts), purge.started_at <= threshold))
        return found
