"""Legal holds as every data service honours them (SPEC R3.6): while an account is held,
nothing of it is deleted automatically (retention, clean-up jobs). The lifecycle is the
authority: it announces each hold and release as an `account.hold_changed` event, and each
service keeps the held accounts in a small table of its own schema, which its clean-up
statements exclude (`not_held`). The account's deletion itself is stopped by the lifecycle."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.events import EventConsumer, Nats

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
    """Keeps a service's `legal_holds` table (declared with `legal_holds_table`) in step
    with the lifecycle's events."""

    def __init__(self, db: Database, table: sa.Table) -> None:
        self.db = db
        self.table = table

    async def apply(self, envelope: events_pb2.Envelope, uow: UnitOfWork) -> None:
        changed = events_pb2.LegalHoldChanged()
        envelope.payload.Unpack(changed)
        statement = pg_insert(self.table).values(
            account_id=uuid.UUID(changed.account_id), held=changed.held, changed_at=envelope.occurred_at.ToDatetime(dt.UTC)
        )
        await uow.execute(
            statement.on_conflict_do_update(
                index_elements=[self.table.c.account_id],
                set_={"held": statement.excluded.held, "changed_at": statement.excluded.changed_at},
                where=self.table.c.changed_at < statement.excluded.changed_at,
            )
        )

    def consumer(self, nats_client: Nats, service: str) -> EventConsumer:
        return EventConsumer(self.db, nats_client, durable=f"{service}-legal-holds", event_types=[EVENT_TYPE], handler=self.apply)
