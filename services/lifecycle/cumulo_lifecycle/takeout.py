"""The lifecycle's part of a take-out: the account's state and dates, every transition it went
through, and the notices sent about it (when, by which channel: not their text, which may carry
a reactivation link)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import sqlalchemy as sa

from cumulo_lifecycle.adapters.tables import accounts, notices, transitions
from cumulo_platform.db import Database
from cumulo_platform.evidence import paged
from cumulo_platform.takeout import Part


class LifecycleTakeout:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def parts(self, account: uuid.UUID) -> AsyncIterator[Part]:
        state = [
            accounts.c.account_id, accounts.c.state, accounts.c.created_at, accounts.c.last_access_at, accounts.c.freeze_at,
            accounts.c.frozen_at, accounts.c.delete_at, accounts.c.cancel_requested_at,
        ]
        yield "account/lifecycle.jsonl", paged(self.db, sa.select(*state).where(accounts.c.account_id == account), [accounts.c.account_id], kind="state")
        moves = sa.select(transitions.c.transition_id, transitions.c.from_state, transitions.c.to_state, transitions.c.reason, transitions.c.at)
        yield "account/transitions.jsonl", paged(
            self.db, moves.where(transitions.c.account_id == account), [transitions.c.transition_id], kind="transition"
        )
        sent = sa.select(
            notices.c.notice_id, notices.c.kind, notices.c.channel, notices.c.status, notices.c.created_at, notices.c.sent_at
        ).where(notices.c.account_id == account)
        yield "account/notices.jsonl", paged(self.db, sent, [notices.c.notice_id], kind="notice")
