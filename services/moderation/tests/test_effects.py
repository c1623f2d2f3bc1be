"""Pending effects that cannot be carried out: an outage keeps one pending for as long as it
lasts; anything else is tried a bounded number of times, then the effect lets go of its
content or account (a later decision on it is not refused for ever)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from cumulo_moderation.adapters.tables import effects
from cumulo_moderation.effects import MAX_ATTEMPTS, account_subject


async def _pending(moderation, subject: str) -> list:
    async with moderation.app.db.read() as conn:
        return (await conn.execute(sa.select(effects).where(effects.c.subject == subject))).all()


async def _record(moderation, *, action: str, attempts: int = 0) -> str:
    account = uuid.uuid4()
    subject = account_subject(account)
    async with moderation.app.db.unit_of_work() as uow:
        row = await moderation.app.effects.record(
            uow, purpose="decision", subject=subject, action=action, account_id=account, actor="tests", reason="r",
            call_reason="r", due_now=True,
        )
        await uow.execute(sa.update(effects).where(effects.c.effect_id == row.effect_id).values(attempts=attempts))
        await uow.commit()
    return subject


async def test_a_failing_effect_is_retried_then_given_up_and_its_subject_freed(moderation):
    subject = await _record(moderation, action="explode")  # no service knows it: a bug, not an outage
    await moderation.app.effects.resume_due()
    [row] = await _pending(moderation, subject)
    assert row.attempts == 1  # still pending, a little later
    async with moderation.app.db.unit_of_work() as uow:
        await uow.execute(sa.update(effects).where(effects.c.subject == subject).values(attempts=MAX_ATTEMPTS - 1, due_at=moderation.app.effects.clock.now()))
        await uow.commit()
    await moderation.app.effects.resume_due()
    assert await _pending(moderation, subject) == []
