"""The outbox relay: publishes outbox rows in batches with `Nats-Msg-Id` = event id, so a
publish retried after a crash is de-duplicated by JetStream; rows are deleted only once
acknowledged. While NATS is down, rows wait in the outbox: nothing is lost. With tracing on,
each publish is a span under the context the event was written in, and the message carries
the span's context in its `traceparent` header (cumulo_platform.tracing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa

from cumulo_platform.db import Database
from cumulo_platform.events import Nats
from cumulo_platform.logging import get_logger
from cumulo_platform.runtime import raise_if_cancelled
from cumulo_platform.tracing import end_publish_span, publish_span, span_headers

log = get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        nats_client: Nats,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        on_failed: Callable[[int], None] | None = None,
    ) -> None:
        self.on_failed = on_failed  # told how many events JetStream did not acknowledge (metrics)
        self.db = db
        self.nats = nats_client
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout

    async def run(self) -> None:
        backoff = 0.2
        while True:
            # Cleared before the batch: a commit during the batch wakes the next round at once.
            self.db.outbox_written.clear()
            try:
                published = await self.publish_batch()
                backoff = 0.2
            except Exception as exc:  # NATS or PostgreSQL away: wait and try again
                log.warning("outbox_relay_retry", error=type(exc).__name__, retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self.batch_size:
                try:
                    await asyncio.wait_for(self.db.outbox_written.wait(), self.poll_interval)
                except TimeoutError:
                    pass
                raise_if_cancelled()

    async def publish_once(self) -> None:
        """Best effort on shutdown: what is left stays in the outbox for the next start."""
        try:
            await asyncio.wait_for(self.publish_batch(), self.publish_timeout)
        except Exception as exc:
            log.info("outbox_left_for_next_start", error=type(exc).__name__)

    async def publish_batch(self) -> int:
        """Publish up to one batch; returns how many were published and removed."""
        outbox = self.db.outbox
        js = await self.nats.jetstream()  # before the transaction: never hold row locks while connecting
        async with self.db.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(outbox.c.event_id, outbox.c.subject, outbox.c.envelope)
                    .order_by(outbox.c.created_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            tracing = self.nats.tracing
            spans = [publish_span(tracing, row.subject, row.envelope) for row in rows] if tracing is not None else None
            results = await asyncio.gather(
                *(
                    js.publish(
                        row.subject,
                        row.envelope,
                        timeout=self.publish_timeout,
                        headers={"Nats-Msg-Id": str(row.event_id), **(span_headers(spans[i]) if spans else {})},
                    )
                    for i, row in enumerate(rows)
                ),
                return_exceptions=True,
            )
            for span, result in zip(spans or (), results, strict=False):
                end_publish_span(span, result)
            done = [row.event_id for row, result in zip(rows, results) if not isinstance(result, BaseException)]
            failed = [row.event_id for row, result in zip(rows, results) if isinstance(result, BaseException)]
            if done:
                await session.execute(sa.delete(outbox).where(outbox.c.event_id.in_(done)))
            if failed:
                await session.execute(
                    sa.update(outbox)
                    .where(outbox.c.event_id.in_(failed))
                    .values(attempts=outbox.c.attempts + 1)
                )
        if failed:
            if self.on_failed is not None:
                self.on_failed(len(failed))
            raise ConnectionError(f"{len(failed)} of {len(rows)} events not acknowledged by JetStream")
        return len(done)
