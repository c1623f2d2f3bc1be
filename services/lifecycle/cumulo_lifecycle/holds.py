"""Legal holds, of which the lifecycle is the authority (§3.3.1, §6.7): a hold is written to the
lifecycle's `legal_holds` table (the platform's, the one store every question asks) and
announced as `account.hold_changed` in the same unit of work; every other service keeps its
copy from that event. A held account is not deleted: its deletion waits, and a deletion asked
for meanwhile starts at the release."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_lifecycle.adapters.tables import accounts
from cumulo_lifecycle.domain.calendar import ACTIVE, DELETED, DELETING, FROZEN
from cumulo_lifecycle.rows import AccountRows, hold_placed, hold_released
from cumulo_lifecycle.saga import Saga
from cumulo_lifecycle.schedule import Schedule
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, NotFound, parse_id, require_audit
from cumulo_platform.legal_holds import EVENT_TYPE as HOLD_CHANGED
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger

log = get_logger(__name__)


class Holds:
    def __init__(
        self, db: Database, clock: Clock, *, holds: LegalHolds, rows: AccountRows, schedule: Schedule, saga: Saga
    ) -> None:
        self.db = db
        self.clock = clock
        self.holds = holds
        self.rows = rows
        self.schedule = schedule
        self.saga = saga

    async def set_hold(self, account_id: str, *, held: bool, reason: str, actor: str) -> Any:
        """Places or releases a hold; returns the account's row as the answers show it."""
        account = parse_id(account_id, "account_id", "account")
        require_audit(reason, actor)
        async with self.db.unit_of_work() as uow:
            row = await self.rows.lock(uow, account)
            if row is None:
                raise NotFound("the lifecycle knows no such account", reason="ACCOUNT_NOT_FOUND")
            if row.state == DELETED or (row.state == DELETING and held):
                raise FailedPrecondition(f"the account is {row.state}; a hold comes too late", reason="ACCOUNT_DELETED")
            # The authority's changes carry strictly growing times: they order every copy.
            at = await self.holds.change_time(uow, account, self.clock.now())
            uow.emit(HOLD_CHANGED, events_pb2.LegalHoldChanged(account_id=str(account), held=held), account_id=str(account), occurred_at=at)
            await self.holds.record(uow, account, held, at)
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == account)
                .values(next_due_at=self.schedule.next_due(row, held=held), updated_at=self.clock.now())
            )
            record = hold_placed(actor, reason) if held else hold_released(actor, reason)
            await self.rows.record(uow, account, row.state, row.state, record, actor=actor)
            if not held and row.cancel_requested_at is not None and row.state in (ACTIVE, FROZEN):
                row = await self.rows.reread(uow, account)
                await self.saga.start(uow, row, reason=row.cancel_reason or "cancellation")
            answer = (await uow.execute(self.rows.select_described().where(accounts.c.account_id == account))).one()
            await uow.commit()
        log.info("lifecycle_hold_set" if held else "lifecycle_hold_released", account_id=str(account), actor=actor)
        return answer
