"""Last access: `access.recorded` events from every service move an account's clock forward,
and any use brings a frozen account back (here from the events; `ensure_active` and the
notice's link synchronously)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_lifecycle.adapters.tables import accounts, reactivation_links
from cumulo_lifecycle.domain.calendar import ACTIVE, DELETED, DELETING, FROZEN
from cumulo_lifecycle.notices import token_hash
from cumulo_lifecycle.rows import AccountRows
from cumulo_lifecycle.schedule import Schedule
from cumulo_lifecycle.transitions import Transitions
from cumulo_platform.account_states import AccountDeleted
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import InvalidArgument, NotFound, parse_id
from cumulo_platform.event_types import Event
from cumulo_platform.logging import get_logger
from cumulo_platform.tracing import within

log = get_logger(__name__)


def _link_invalid() -> NotFound:
    return NotFound("this reactivation link is not valid (any more); sign in to use your account", reason="LINK_INVALID")


def _linked_account(token: str, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """`columns` of the account a notice's link token names (a token too long to be one is
    refused before any query)."""
    if not token or len(token) > 200:
        raise InvalidArgument("token", "is not a reactivation link token")
    return (
        sa.select(*columns)
        .join(reactivation_links, reactivation_links.c.account_id == accounts.c.account_id)
        .where(reactivation_links.c.token_hash == token_hash(token))
    )


# Access events, applied in bulk: new accounts appear, active ones move their clock forward
# only (duplicates and late events match nothing), other states are left to the transitions.
_APPLY_ACCESS = sa.text(
    """
    INSERT INTO lifecycle.accounts AS a
        (account_id, state, last_access_at, freeze_at, next_due_at, reminders_done, updated_at)
    SELECT id, 'active', at, freeze_at, next_due, 0, :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:last_access AS timestamptz[]),
                CAST(:freeze_at AS timestamptz[]), CAST(:next_due AS timestamptz[])) AS e(id, at, freeze_at, next_due)
    ON CONFLICT (account_id) DO UPDATE
    SET last_access_at = excluded.last_access_at, freeze_at = excluded.freeze_at,
        next_due_at = excluded.next_due_at, reminders_done = 0, updated_at = excluded.updated_at
    WHERE a.state = 'active' AND a.last_access_at < excluded.last_access_at
    """
)
_FROZEN_AMONG = sa.text(
    "SELECT account_id, last_access_at FROM lifecycle.accounts "
    "WHERE account_id = ANY(CAST(:ids AS uuid[])) AND state = 'frozen'"
)


def _latest(events: list[Event[events_pb2.AccessRecorded]]) -> tuple[dict[uuid.UUID, dt.datetime], dict[uuid.UUID, Event[events_pb2.AccessRecorded]]]:
    """Each account's latest use in the batch, and the event that reported it."""
    latest: dict[uuid.UUID, dt.datetime] = {}
    causes: dict[uuid.UUID, Event[events_pb2.AccessRecorded]] = {}
    for received in events:
        event = received.message
        try:
            account_id = uuid.UUID(event.account_id)
        except ValueError:
            log.warning("access_event_bad_account")
            continue
        at = event.accessed_at.ToDatetime(tzinfo=dt.UTC)
        if account_id not in latest or at > latest[account_id]:
            latest[account_id] = at
            causes[account_id] = received
    return latest, causes


class Access:
    def __init__(self, db: Database, clock: Clock, *, schedule: Schedule, rows: AccountRows, transitions: Transitions) -> None:
        self.db = db
        self.clock = clock
        self.schedule = schedule
        self.rows = rows
        self.transitions = transitions

    async def apply_batch(self, events: list[Event[events_pb2.AccessRecorded]], uow: UnitOfWork) -> None:
        """`access.recorded` events, a fetched batch at a time: last access only moves forward
        (duplicates and out-of-order events change nothing); a frozen account used after its
        last known access is reactivated."""
        latest, causes = _latest(events)
        if not latest:
            return
        ordered = sorted(latest.items())
        schedules = [self.schedule.active(at) for _, at in ordered]
        params = {
            "ids": [account_id for account_id, _ in ordered],
            "last_access": [at for _, at in ordered],
            "freeze_at": [sched["freeze_at"] for sched in schedules],
            "next_due": [sched["next_due_at"] for sched in schedules],
            "now": self.clock.now(),
        }
        # One statement with four arrays, however big the batch: no per-row SQL to build.
        await uow.execute(_APPLY_ACCESS, params)
        frozen = (await uow.execute(_FROZEN_AMONG, {"ids": params["ids"]})).all()
        for account_id, last_access in frozen:
            if latest[account_id] <= last_access:
                continue
            row = await self.rows.lock(uow, account_id)
            if row.state == FROZEN and latest[account_id] > row.last_access_at:
                # In the trace of the call that used the account (its event's span), as is
                # what the reactivation announces.
                cause = causes[account_id].span
                with within(cause):
                    if cause is not None:
                        cause.add_event("account reactivated")
                    await self.transitions.reactivate(uow, row, at=latest[account_id], reason="used")

    async def ensure_active(self, account_id: str, *, reason: str = "used") -> str:
        """A frozen account is reactivated; once deletion has begun, ACCOUNT_DELETED."""
        account = parse_id(account_id, "account_id", "account")
        async with self.db.read() as conn:
            state = (await conn.execute(sa.select(accounts.c.state).where(accounts.c.account_id == account))).scalar_one_or_none()
        if state is None or state == ACTIVE:
            return ACTIVE
        async with self.db.unit_of_work() as uow:
            row = await self.rows.lock(uow, account)
            if row.state in (DELETING, DELETED):
                raise AccountDeleted()
            if row.state == FROZEN:
                await self.transitions.reactivate(uow, row, at=self.clock.now(), reason=reason)
            await uow.commit()
        return ACTIVE

    async def inspect_link(self, token: str) -> tuple[str, dt.datetime | None]:
        """What the link would bring back: the account's state and, frozen, its deletion time."""
        query = _linked_account(token, accounts.c.state, accounts.c.delete_at)
        async with self.db.read() as conn:
            found = (await conn.execute(query)).first()
        if found is None:
            raise _link_invalid()
        return found.state, found.delete_at if found.state == FROZEN else None

    async def reactivate_with_link(self, token: str) -> str:
        """The link in a freeze or deletion-reminder notice: valid while the account is frozen."""
        query = _linked_account(token, accounts.c.account_id).with_for_update(of=accounts)
        async with self.db.unit_of_work() as uow:
            found = (await uow.execute(query)).first()
            if found is None:
                raise _link_invalid()
            row = await self.rows.reread(uow, found.account_id)
            if row.state == FROZEN:
                await self.transitions.reactivate(uow, row, at=self.clock.now(), reason="reactivation link")
            await uow.commit()
        return ACTIVE
