"""Delivers queued notices: a few at a time, each row locked while it is sent (`SKIP LOCKED`:
two replicas never send the same notice), retried with a growing delay, and recorded as
undeliverable after the last attempt; the lifecycle never waits for them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cumulo_lifecycle.adapters.delivery import Delivery, DeliveryFailed
from cumulo_lifecycle.adapters.tables import notices
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.domain import notices as texts
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.logging import get_logger
from cumulo_platform.text import mask_contact as mask

log = get_logger(__name__)
BATCH = 20


async def cancel_pending_notices(uow: UnitOfWork, account_id: Any) -> int:
    """A deleted account's notices still waiting go no further: cancelled, their text gone and
    their address masked like a delivered one's."""
    rows = (
        await uow.execute(
            sa.select(notices.c.account_id, notices.c.notice_id, notices.c.destination, notices.c.kind, notices.c.subject)
            .where(notices.c.account_id == account_id, notices.c.status == "pending")
            .with_for_update()
        )
    ).all()
    for row in rows:
        await uow.execute(
            sa.update(notices)
            .where(notices.c.account_id == row.account_id, notices.c.notice_id == row.notice_id)
            .values(
                status="cancelled", body="", subject=texts.kept_subject(row.kind, row.subject), destination=mask(row.destination),
                next_attempt_at=None, last_error="the account was deleted",
            )
        )
    if rows:
        log.info("notices_cancelled", account_id=str(account_id), count=len(rows))
    return len(rows)


class Notifier:
    def __init__(self, db: Database, settings: LifecycleSettings, clock: Clock, delivery: Delivery) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.delivery = delivery

    async def deliver_due(self) -> int:
        """Sends what is due; returns how many notices reached a final state."""
        finished = 0
        while True:
            now = self.clock.now()
            async with self.db.unit_of_work() as uow:
                rows = (
                    await uow.execute(
                        sa.select(notices)
                        .where(notices.c.status == "pending", notices.c.next_attempt_at <= now)
                        .order_by(notices.c.next_attempt_at)
                        .limit(BATCH)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                for row in rows:
                    attempts = row.attempts + 1
                    try:
                        await self.delivery.send(row.channel, row.destination, row.subject, row.body)
                    except DeliveryFailed as failure:
                        final = failure.permanent or attempts >= self.settings.notice_attempts
                        delay = self.settings.notice_retry * 2 ** min(row.attempts, 10)
                        values = {"attempts": attempts, "last_error": failure.reason}
                        if final:
                            values.update(
                                status="undeliverable", body="", subject=texts.kept_subject(row.kind, row.subject),
                                destination=mask(row.destination), next_attempt_at=None,
                            )
                            finished += 1
                        else:
                            values.update(next_attempt_at=self.clock.now() + delay)
                        log.warning(
                            "notice_not_delivered", notice_id=str(row.notice_id), kind=row.kind, channel=row.channel,
                            attempts=attempts, final=final, error=failure.reason,
                        )
                    else:
                        values = {
                            "attempts": attempts, "status": "sent", "sent_at": self.clock.now(), "body": "",
                            "subject": texts.kept_subject(row.kind, row.subject),
                            "destination": mask(row.destination), "next_attempt_at": None, "last_error": "",
                        }
                        finished += 1
                        log.info("notice_sent", notice_id=str(row.notice_id), kind=row.kind, channel=row.channel)
                    await uow.execute(
                        sa.update(notices)
                        .where(notices.c.account_id == row.account_id, notices.c.notice_id == row.notice_id)
                        .values(**values)
                    )
                await uow.commit()
            if len(rows) < BATCH:
                return finished
