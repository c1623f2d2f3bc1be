"""One writer per upload, holding no database connection while it waits for its client.

An UploadChunks stream claims the upload's lease (a row of `upload_writers`) in a short
transaction, renews it every few seconds while it streams, and gives it back when it ends;
each renewal takes a pooled connection for one statement. A lease is judged by the database's
clock, so it lapses by itself LEASE after a writer's process died (a resume may meet
UPLOAD_BUSY until then). Cancelling and expiring leave an upload under a live lease alone; a
purge goes on regardless, and the writer finds its upload closed at its next write.

Every write of the stream's progress names the writer (`still_writer`): a stream whose lease
was taken over — its renewals failed for longer than LEASE — records nothing more.

Letting go must never change how the stream ended: it runs shielded from the stream's own
cancellation (the client's Ctrl-C), on a connection of its own, and a failure to let go is
logged only — the lease then lapses by itself."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_blob.adapters.tables import upload_writers
from cumulo_platform.db import Database
from cumulo_platform.logging import get_logger

log = get_logger(__name__)

LEASE = dt.timedelta(seconds=15)
RENEW_EVERY = LEASE.total_seconds() / 3
_LEASE_INTERVAL = sa.literal(LEASE, sa.Interval())
LET_GO_ATTEMPTS = 2  # a pooled connection the database dropped fails once; the next is new


def held(upload_id: uuid.UUID | sa.ColumnElement[uuid.UUID]) -> sa.Exists:
    """Whether a live writer holds the upload (for those who must leave it alone)."""
    return sa.exists().where(upload_writers.c.upload_id == upload_id, upload_writers.c.held_until > sa.func.now())


def still_writer(upload_id: uuid.UUID, writer_id: uuid.UUID) -> sa.Exists:
    """Whether this writer's lease is still its own (nobody took the upload over)."""
    return sa.exists().where(upload_writers.c.upload_id == upload_id, upload_writers.c.writer_id == writer_id)


def claim(upload_id: uuid.UUID, account_id: uuid.UUID, writer_id: uuid.UUID) -> sa.Executable:
    """The statement that takes the upload for `writer_id` unless a live writer holds it: it
    returns a row when taken."""
    statement = pg_insert(upload_writers).values(
        upload_id=upload_id, account_id=account_id, writer_id=writer_id, held_until=sa.func.now() + _LEASE_INTERVAL
    )
    return statement.on_conflict_do_update(
        index_elements=[upload_writers.c.upload_id],
        set_={"writer_id": statement.excluded.writer_id, "held_until": statement.excluded.held_until},
        where=upload_writers.c.held_until <= sa.func.now(),
    ).returning(upload_writers.c.writer_id)


class WriterLease:
    """A claimed upload: renewed in the background while the stream lasts, then let go."""

    def __init__(self, db: Database, upload_id: uuid.UUID, writer_id: uuid.UUID) -> None:
        self.db = db
        self.upload_id = upload_id
        self.writer_id = writer_id
        self.lost = False  # taken over, or the upload went (a purge): nothing more to write

    def still_mine(self) -> sa.Exists:
        return still_writer(self.upload_id, self.writer_id)

    async def _renew_forever(self) -> None:
        while not self.lost:
            await asyncio.sleep(RENEW_EVERY)
            try:
                async with self.db.read() as conn:
                    renewed = await conn.execute(
                        sa.update(upload_writers)
                        .where(upload_writers.c.upload_id == self.upload_id, upload_writers.c.writer_id == self.writer_id)
                        .values(held_until=sa.func.now() + _LEASE_INTERVAL)
                    )
                self.lost = renewed.rowcount == 0
            except Exception as exc:  # the database away for a moment: the lease outlasts a few tries
                log.warning("upload_writer_lease_not_renewed", upload_id=str(self.upload_id), error=type(exc).__name__)

    async def _let_go(self) -> None:
        for attempt in range(LET_GO_ATTEMPTS):
            try:
                async with self.db.read() as conn:
                    await conn.execute(
                        sa.delete(upload_writers).where(
                            upload_writers.c.upload_id == self.upload_id, upload_writers.c.writer_id == self.writer_id
                        )
                    )
                return
            except Exception as exc:
                if attempt + 1 == LET_GO_ATTEMPTS:
                    log.warning("upload_writer_lock_dropped", upload_id=str(self.upload_id), error=type(exc).__name__)


@contextlib.asynccontextmanager
async def renewed(lease: WriterLease) -> AsyncIterator[WriterLease]:
    """Keeps a claimed lease alive while the block runs, and lets it go after, whatever ended it."""
    renewing = asyncio.create_task(lease._renew_forever(), name=f"upload-lease-{lease.upload_id}")
    try:
        yield lease
    finally:
        renewing.cancel()
        letting_go = asyncio.create_task(_after(renewing, lease._let_go()))
        try:
            await asyncio.shield(letting_go)
        except asyncio.CancelledError:
            # Cancelled again while letting go: the release finishes on its own; the stream's
            # end stays what it was.
            _unattended.add(letting_go)
            letting_go.add_done_callback(_unattended.discard)
            raise


_unattended: set[asyncio.Task[None]] = set()


async def _after(renewing: asyncio.Task[None], release: Awaitable[None]) -> None:
    """A renewal still in flight ends before the lease is let go (it could otherwise land after)."""
    await asyncio.gather(renewing, return_exceptions=True)
    await release
