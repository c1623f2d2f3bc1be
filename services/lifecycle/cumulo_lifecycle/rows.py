"""The ledger's account rows as every use case reads them: with `held` asked of the legal holds
(the lifecycle's `legal_holds` table, the one store), locked for a transition, and each change of
state or hold put on the record (`transitions`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo_lifecycle.adapters.tables import LEDGER_COLUMNS, accounts, transitions
from cumulo_platform.clock import Clock
from cumulo_platform.db import UnitOfWork
from cumulo_platform.legal_holds import LegalHolds

HOLD_PLACED = "legal hold placed by "


def hold_placed(actor: str, reason: str) -> str:
    return f"{HOLD_PLACED}{actor}: {reason}"


def hold_released(actor: str, reason: str) -> str:
    return f"legal hold released by {actor}: {reason}"


def _hold_reason(account_column: sa.ColumnElement[uuid.UUID]) -> sa.ScalarSelect[Any]:
    """Why the account is held: the reason of its latest placement on record (the history
    keeps who and why; the answer shows the why)."""
    t = transitions.c
    prefix = sa.literal(HOLD_PLACED) + t.actor + sa.literal(": ")
    return (
        sa.select(sa.func.substr(t.reason, sa.func.char_length(prefix) + 1))
        .where(t.account_id == account_column, t.actor != "", sa.func.left(t.reason, sa.func.char_length(prefix)) == prefix)
        .order_by(t.transition_id.desc())
        .limit(1)
        .scalar_subquery()
    )


class AccountRows:
    def __init__(self, holds: LegalHolds, clock: Clock) -> None:
        self.holds = holds
        self.clock = clock

    def held(self) -> sa.ColumnElement[bool]:
        return self.holds.is_held(accounts.c.account_id).label("held")

    def select(self) -> sa.Select[Any]:
        """Account rows with `held`, as the schedule needs them."""
        return sa.select(*LEDGER_COLUMNS, self.held())

    def select_described(self) -> sa.Select[Any]:
        """Account rows with `held` and `hold_reason`, as the answers show them."""
        held = self.holds.is_held(accounts.c.account_id)
        reason = sa.case((held, sa.func.coalesce(_hold_reason(accounts.c.account_id), "")), else_="")
        return sa.select(*LEDGER_COLUMNS, held.label("held"), reason.label("hold_reason"))

    async def lock(self, uow: UnitOfWork, account_id: uuid.UUID) -> Any:
        """The account's row, locked for the rest of the unit of work (None if unknown). Whether
        it is held is read after the lock is granted: a hold placed meanwhile has committed."""
        locked = (
            await uow.execute(sa.select(accounts.c.account_id).where(accounts.c.account_id == account_id).with_for_update())
        ).first()
        if locked is None:
            return None
        return (await uow.execute(self.select().where(accounts.c.account_id == account_id))).one()

    async def reread(self, uow: UnitOfWork, account_id: uuid.UUID) -> Any:
        return (await uow.execute(self.select().where(accounts.c.account_id == account_id))).one()

    async def record(
        self, uow: UnitOfWork, account_id: uuid.UUID, from_state: str, to_state: str, reason: str, *, actor: str = "",
        at: dt.datetime | None = None,
    ) -> None:
        await uow.execute(
            sa.insert(transitions).values(
                account_id=account_id, from_state=from_state, to_state=to_state, reason=reason, actor=actor,
                at=at or self.clock.now(),
            )
        )
