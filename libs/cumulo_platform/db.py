"""Database access: one async engine per service, each service in its own schema, and the
unit of work that commits state changes together with their outbox events."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from google.protobuf import any_pb2, message, timestamp_pb2
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from cumulo.events.v1 import events_pb2
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.event_types import check_type, event_subject
from cumulo_platform.tracing import current_traceparent

# The unit of work open in this task, if any: calls to other services check it (see remote).
_open_unit: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar("cumulo_open_unit_of_work", default=None)


class RemoteCallInTransaction(RuntimeError):
    """A call to another service was made while a unit of work was open: it would hold row
    locks (and a pooled connection) for as long as the other service takes, or for ever
    when it hangs. A programming error: carry the call out before or after the unit of work."""


def assert_no_open_unit_of_work(what: str) -> None:
    if _open_unit.get() is not None:
        raise RemoteCallInTransaction(f"{what} was called inside an open unit of work")


def async_url(url: str) -> str:
    """Accept plain postgresql:// URIs (as pgserver and most operators give them)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # No pre-ping: it costs a round trip per checkout; connections broken by a database
    # restart are invalidated on their first error and the pool reconnects.
    # hide_parameters: a database error's text must not carry password hashes, contacts or keys.
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, hide_parameters=True
    )


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """Events waiting to be published, written in the transaction of the state change."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Index("outbox_created_at", "created_at"),
    )


def processed_events_table(metadata: sa.MetaData) -> sa.Table:
    """Event ids a consumer has applied, so that redelivery is harmless."""
    return sa.Table(
        "processed_events",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def make_envelope(
    event_type: str,
    payload: message.Message,
    *,
    account_id: str,
    producer: str,
    occurred_at: dt.datetime,
    trace: tuple[str, str] | None = None,
) -> events_pb2.Envelope:
    """`trace`: the (traceparent, tracestate) the event carries on; by default the current
    span's (cumulo_platform.tracing), none when untraced."""
    packed = any_pb2.Any()
    packed.Pack(payload)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(occurred_at)
    envelope = events_pb2.Envelope(
        event_id=str(uuid.uuid4()),
        type=event_type,
        account_id=account_id,
        occurred_at=stamp,
        producer=producer,
        payload=packed,
    )
    traceparent, tracestate = trace if trace is not None else current_traceparent()
    if traceparent:
        envelope.traceparent = traceparent
        envelope.tracestate = tracestate
    return envelope


# How far back a replica's look at what changed reads again: a transaction may commit after a
# later one started, and writers' clocks differ a little. Reading a change twice is harmless.
REREAD = dt.timedelta(seconds=30)


class Watermark:
    """Where a replica's in-memory copy of a table stands (account states, revocations, auth's
    live sessions): each look reads the rows changed after the previous one, less REREAD, by the
    database's clock."""

    def __init__(self) -> None:
        self.seen_until: dt.datetime | None = None

    async def window(self, conn: AsyncConnection) -> tuple[dt.datetime | None, dt.datetime]:
        """(since, now): read what changed after `since` (None: the first look, or a reset: read
        the whole state), then `advance(now)` once it is applied."""
        now = (await conn.execute(sa.select(sa.func.clock_timestamp()))).scalar_one()
        return (None if self.seen_until is None else self.seen_until - REREAD), now

    def advance(self, now: dt.datetime) -> None:
        self.seen_until = now

    def reset(self) -> None:
        self.seen_until = None


class Database:
    """A service's database: engine, session factory, its outbox, and the relay's wake-up."""

    def __init__(
        self, engine: AsyncEngine, *, schema: str, producer: str, clock: Clock | None = None
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.producer = producer
        self.clock = clock or SystemClock()
        self.metadata = sa.MetaData(schema=schema)
        self.outbox = outbox_table(self.metadata)
        self.processed_events = processed_events_table(self.metadata)
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.outbox_written = asyncio.Event()
        # Reads outside a unit of work: no BEGIN/ROLLBACK round trips around a lone SELECT.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    def read(self) -> AsyncConnection:
        """`async with db.read() as conn:` for single read-only statements on the hot path."""
        return self._autocommit.connect()

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self)

    async def dispose(self) -> None:
        await self.engine.dispose()


class UnitOfWork:
    """`async with db.unit_of_work() as uow:` ... `await uow.commit()`.

    Rolls back unless commit() ran. Events emitted through it are written to the outbox in
    the same transaction, so a state change and its events commit or vanish together.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._events: list[events_pb2.Envelope] = []
        self._committed = False
        self._after_commit: list[Callable[[], None]] = []
        self.session: AsyncSession
        self._open_token: contextvars.Token[UnitOfWork | None] | None = None

    async def __aenter__(self) -> UnitOfWork:
        self.session = self.db.sessions()
        await self.session.begin()
        self._open_token = _open_unit.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._open_token is not None:
            _open_unit.reset(self._open_token)
            self._open_token = None
        try:
            if not self._committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    def emit(
        self, event_type: str, payload: message.Message, *, account_id: str = "", occurred_at: dt.datetime | None = None,
        trace: tuple[str, str] | None = None,
    ) -> events_pb2.Envelope:
        """Queues an event for the outbox; its type must carry this payload (event_types). It
        occurred now, unless the change it announces is ordered by a time of its own; it
        carries the current trace context unless given the one of what caused it (`trace`)."""
        check_type(event_type, payload)
        envelope = make_envelope(
            event_type,
            payload,
            account_id=account_id,
            producer=self.db.producer,
            occurred_at=occurred_at or self.db.clock.now(),
            trace=trace,
        )
        self._events.append(envelope)
        return envelope

    async def execute(self, statement: sa.Executable, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Any:
        """The statement's result (a CursorResult for DML: `.rowcount` works)."""
        return await self.session.execute(statement, params)

    async def commit(self) -> None:
        if self._events:
            await self.session.execute(
                sa.insert(self.db.outbox),
                [
                    {
                        "event_id": uuid.UUID(e.event_id),
                        "subject": event_subject(e.producer, e.type),
                        "envelope": e.SerializeToString(),
                    }
                    for e in self._events
                ],
            )
        await self.session.commit()
        self._committed = True
        if self._events:
            self.db.outbox_written.set()
        for callback in self._after_commit:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """`callback()` once the unit of work has committed (never if it rolls back): wakes a
        job that must see what this transaction wrote."""
        self._after_commit.append(callback)


async def delete_in_batches(db: Database, table: str, where: str, params: dict[str, object], *, batch: int) -> int:
    """DELETE FROM `table` WHERE `where`, `batch` rows per short transaction, until none is
    left: never one long statement holding a big table. Returns the rows deleted."""
    statement = sa.text(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {where} LIMIT :batch_size))"
    )
    deleted = 0
    while True:
        async with db.unit_of_work() as uow:
            count = (await uow.execute(statement, {**params, "batch_size": batch})).rowcount or 0
            await uow.commit()
        deleted += count
        if count < batch:
            return deleted
