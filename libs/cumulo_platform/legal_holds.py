"""Legal holds as every service honours them (§3.3.1, §6.7): while an account is held, nothing
of it is deleted, neither by the service itself (retention, clean-up jobs, the user's own
deletions where the service refuses them) nor by the account's deletion, which the lifecycle
stops. The lifecycle is the authority: it records each hold and release in its own copy of
this table and announces it as an `account.hold_changed` event in the same transaction; every
other service that needs to know keeps the same table in its schema, fed by that event
(`Foundation.legal_holds()`). The one way to ask: `held()` in code, `is_held`/`not_held` in
statements."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.event_types import Event
from cumulo_platform.events import Nats

EVENT_TYPE = "account.hold_changed"


def legal_holds_table(metadata: sa.MetaData) -> sa.Table:
    """One row per account ever held: whether it is held now, as of which event (an event
    that comes late, after a retry, never undoes a newer one)."""
    return sa.Table(
        "legal_holds",
        metadata,
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("held", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def is_held(holds: sa.Table, account_column: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[bool]:
    return sa.exists().where(holds.c.account_id == account_column, holds.c.held)


def not_held(holds: sa.Table, account_column: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[bool]:
    """A condition for clean-up statements: the row's account is not held."""
    return ~is_held(holds, account_column)


class LegalHolds:
    """A service's `legal_holds` table (in `db.metadata`; the service's migrations create it),
    kept in step with the lifecycle's events by `consumer`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.table = legal_holds_table(db.metadata)

    async def held(self, account_id: uuid.UUID) -> bool:
        async with self.db.read() as conn:
            return bool((await conn.execute(sa.select(is_held(self.table, sa.literal(account_id, sa.Uuid))))).scalar())

    def is_held(self, account_column: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[bool]:
        return is_held(self.table, account_column)

    def not_held(self, account_column: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[bool]:
        return not_held(self.table, account_column)

    async def apply(self, event: Event[events_pb2.LegalHoldChanged], uow: UnitOfWork) -> None:
        """The `account.hold_changed` handler."""
        await self.record(uow, uuid.UUID(event.message.account_id), event.message.held, event.occurred_at)

    async def change_time(self, uow: UnitOfWork, account_id: uuid.UUID, now: dt.datetime) -> dt.datetime:
        """For the authority, with the account locked: the time to announce a change at —
        now, or just after the last change if the clock says otherwise (another replica's
        clock, a clock stepped back). Each account's holds and releases then carry strictly
        growing times, which is what orders them in every service's copy."""
        last = (await uow.execute(sa.select(self.table.c.changed_at).where(self.table.c.account_id == account_id))).scalar()
        return now if last is None or now > last else last + dt.timedelta(microseconds=1)

    async def record(self, uow: UnitOfWork, account_id: uuid.UUID, held: bool, changed_at: dt.datetime) -> None:
        """Held or not as of `changed_at`: a change older than the one recorded (a late or
        redelivered event) changes nothing."""
        statement = pg_insert(self.table).values(account_id=account_id, held=held, changed_at=changed_at)
        await uow.execute(
            statement.on_conflict_do_update(
                index_elements=[self.table.c.account_id],
                set_={"held": statement.excluded.held, "changed_at": statement.excluded.changed_at},
                where=self.table.c.changed_at < statement.excluded.changed_at,
            )
        )

    def consumer(self, nats_client: Nats, service: str) -> EventConsumer:
        return EventConsumer(self.db, nats_client, durable=f"{service}-legal-holds", event_types=[EVENT_TYPE], handler=self.apply)
