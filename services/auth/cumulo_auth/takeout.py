"""Auth's part of a take-out: the account as the owner registered it (contacts, whether they
are verified, birth date, guardian, terms), its sessions, every terms version accepted, and
whether two-step sign-in is on (never a secret, a hash or a token)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import sqlalchemy as sa

from cumulo_auth.adapters.tables import accounts, second_factors, sessions, terms_acceptances
from cumulo_platform.db import Database
from cumulo_platform.evidence import paged
from cumulo_platform.takeout import Part, exported_columns


class AuthTakeout:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def parts(self, account: uuid.UUID) -> AsyncIterator[Part]:
        yield "account/account.jsonl", paged(
            self.db, sa.select(*exported_columns(accounts, leave_out=("roles", "updated_at"))).where(accounts.c.account_id == account),
            [accounts.c.account_id], kind="account",
        )
        yield "account/sessions.jsonl", paged(
            self.db, sa.select(*exported_columns(sessions)).where(sessions.c.account_id == account), [sessions.c.session_id], kind="session"
        )
        yield "account/terms.jsonl", paged(
            self.db, sa.select(*exported_columns(terms_acceptances)).where(terms_acceptances.c.account_id == account),
            [terms_acceptances.c.version], kind="terms_accepted",
        )
        yield "account/two_step.jsonl", paged(
            self.db, sa.select(second_factors.c.account_id, second_factors.c.created_at).where(second_factors.c.account_id == account),
            [second_factors.c.account_id], kind="two_step",
        )
