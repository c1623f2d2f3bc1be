"""The lifecycle, on purpose: one account aged (a year unused, a grace over) once every access
event already made has landed, and its e-mails sent."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cumulo_devstack.testing.streams import nats_connect
from cumulo_devstack.testing.waiting import eventually
from cumulo_lifecycle.adapters.tables import accounts, notices
from cumulo_platform.events import STREAM_NAME


class Ages:
    """Ages one account on purpose. First it waits until every access event already made
    (auth's and blob's recorders, their outboxes, the lifecycle's consumer) has been applied,
    so that a late event cannot undo the aging."""

    def __init__(self, lifecycle: Any, services: Sequence[Any], nats_url: str) -> None:
        self.lifecycle = lifecycle
        self.services = services  # the running services whose access events must land first
        self.nats_url = nats_url
        self.cal = lifecycle.app.settings.calendar

    async def _settled(self) -> bool:
        for service in self.services:
            if not service.app.recorder.idle:
                return False
            async with service.app.db.read() as conn:
                if (await conn.execute(sa.select(sa.func.count()).select_from(service.app.db.outbox))).scalar_one():
                    return False
        connection = await nats_connect(self.nats_url)
        try:
            info = await connection.jetstream().consumer_info(STREAM_NAME, "lifecycle-access")
        finally:
            await connection.close()
        return info.num_pending == 0 and info.num_ack_pending == 0

    async def settle(self) -> None:
        await eventually(self._settled, timeout=30, what="every access event to reach the lifecycle")

    async def _update(self, account_id: str, **values: Any) -> None:
        async with self.lifecycle.app.db.unit_of_work() as uow:
            await uow.execute(sa.update(accounts).where(accounts.c.account_id == uuid.UUID(account_id)).values(**values))
            await uow.commit()

    async def unused_for_a_year(self, account_id: str) -> None:
        await self.settle()
        past = self.lifecycle.clock.now() - dt.timedelta(days=400)
        await self._update(
            account_id,
            last_access_at=past,
            freeze_at=self.cal.freeze_at(past),
            reminders_done=len(self.cal.freeze_reminders),
            next_due_at=self.lifecycle.clock.now(),
        )

    async def grace_over(self, account_id: str) -> None:
        await self.settle()
        now = self.lifecycle.clock.now()
        await self._update(
            account_id,
            frozen_at=now - dt.timedelta(days=31),
            delete_at=now - self.cal.safety_margin - dt.timedelta(minutes=1),
            reminders_done=len(self.cal.deletion_reminders),
            next_due_at=now,
        )

    async def freeze(self, account_id: str) -> Any:
        await self.unused_for_a_year(account_id)
        planned, done = await self.lifecycle.app.cases.sweeper.sweep()
        row = await self.lifecycle.app.cases.reports.state_of(account_id)
        assert row.state == "frozen", (row.state, [p for p in planned if str(p.account_id) == account_id])
        return row


async def notices_sent(lifecycle: Any, account_id: str) -> None:
    """Waits until the session lifecycle has no e-mail of the account still to send."""
    async def sent() -> bool:
        async with lifecycle.app.db.read() as conn:
            pending = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(notices)
                    .where(notices.c.account_id == uuid.UUID(account_id), notices.c.channel == "email", notices.c.status == "pending")
                )
            ).scalar_one()
        return pending == 0

    await eventually(sent, what="the account's e-mails to be sent")
