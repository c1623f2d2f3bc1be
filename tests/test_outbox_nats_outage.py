"""Requirement: an `account.created` event is published exactly once even when NATS is
stopped during registration and started again afterwards (and when NATS crashes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import PASSWORD, Delivered, eventually, read_stream
from cumulo_platform.event_types import event_filter, event_subject

SUBJECT = event_filter("account.created")


async def outbox_rows_for(db, account_id: str) -> list[tuple[events_pb2.Envelope, int]]:
    """(envelope, attempts) of account.created events for this account waiting in auth's outbox."""
    async with db.sessions() as session:
        rows = (
            await session.execute(
                sa.select(db.outbox.c.envelope, db.outbox.c.attempts).where(db.outbox.c.subject == event_subject("auth", "account.created"))
            )
        ).all()
    found = [(events_pb2.Envelope.FromString(row.envelope), row.attempts) for row in rows]
    return [(envelope, attempts) for envelope, attempts in found if envelope.account_id == account_id]


async def outbox_events_for(db, account_id: str) -> list[events_pb2.Envelope]:
    return [envelope for envelope, _ in await outbox_rows_for(db, account_id)]


def published_for(url: str, account_id: str) -> list[Delivered]:
    """Every account.created message in the stream for this account, as the stream holds them now."""
    return read_stream(url, SUBJECT, lambda envelope: envelope.account_id == account_id, at_least=0)


async def relay_connected(infra, auth, direct, email: str) -> None:
    """NATS is up and auth's relay has published through it: the outage hits a live connection."""
    account = await direct.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))

    async def drained() -> bool:
        return not await outbox_events_for(auth.app.db, account.account_id)

    await eventually(drained, timeout=30, what="auth's relay to publish before the outage")


async def register_during_outage(infra, auth, direct, email: str, take_nats_down: Callable[[], None]) -> None:
    await relay_connected(infra, auth, direct, "warm-up-" + email)
    take_nats_down()
    restarted = False
    try:
        # Registration does not need NATS: it succeeds, and the event waits in the outbox.
        account = await direct.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
        assert account.account_id
        waiting = await outbox_events_for(auth.app.db, account.account_id)
        assert len(waiting) == 1, "the account.created event must wait in auth's outbox while NATS is down"
        (event,) = waiting
        assert event.type == "account.created"
        assert event.producer == "auth"
        payload = events_pb2.AccountCreated()
        assert event.payload.Unpack(payload)
        assert payload.account_id == account.account_id

        # Keep NATS away until the relay has tried to publish and given up at least once: its
        # publishes are buffered by the client and retried, so copies reach NATS after restart.
        async def relay_failed() -> bool:
            rows = await outbox_rows_for(auth.app.db, account.account_id)
            return len(rows) == 1 and rows[0][1] >= 1

        await eventually(relay_failed, timeout=30, what="the relay to fail publishing while NATS is down")
        infra.nats.start()
        restarted = True
    finally:
        if not restarted:
            infra.nats.start()

    # The relay publishes it once NATS is back, and removes it from the outbox.
    async def outbox_drained() -> bool:
        return not await outbox_events_for(auth.app.db, account.account_id)

    await eventually(outbox_drained, timeout=30, what="auth's relay to publish the waiting event")

    async def readable() -> list | None:
        try:
            return await published_for(infra.nats.url, account.account_id)
        except Exception:
            return None

    messages = await eventually(readable, timeout=30, what="the stream to be readable")
    assert len(messages) == 1, f"account.created published {len(messages)} times"
    msg_id, published = messages[0].headers.get("Nats-Msg-Id"), messages[0].envelope
    assert published == event
    assert msg_id == event.event_id


async def test_account_created_published_once_when_nats_is_stopped(infra, auth, direct, new_email):
    await register_during_outage(infra, auth, direct, new_email, infra.nats.stop)


async def test_account_created_published_once_when_nats_is_killed(infra, auth, direct, new_email):
    await register_during_outage(infra, auth, direct, new_email, infra.nats.kill)


async def test_account_created_published_once_when_nats_was_up(infra, auth, direct, new_email):
    # The same path without an outage, so the two tests above compare with the ordinary case.
    account = await direct.register(email=new_email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))

    async def outbox_drained() -> bool:
        return not await outbox_events_for(auth.app.db, account.account_id)

    await eventually(outbox_drained, timeout=30, what="auth's relay to publish the event")
    messages = await published_for(infra.nats.url, account.account_id)
    assert len(messages) == 1
    assert messages[0].headers.get("Nats-Msg-Id") == messages[0].envelope.event_id
