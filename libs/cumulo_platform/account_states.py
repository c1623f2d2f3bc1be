"""The account states every service honours: the lifecycle alone decides them.

The lifecycle service is the only authority on an account's state and announces every change
as an `account.state_changed` event. Each service keeps the accounts that are not simply
active in a small local cache: a table of its own schema (so a restart knows them at once)
mirrored in memory (so the check costs nothing per call). The interceptor's account gate asks
the cache for every authenticated call:

- active (or unknown): served;
- frozen: lifecycle's `EnsureActive` is called first, which reactivates the account (the call
  is then served) or answers that deletion has begun;
- deleting or deleted: refused with `ACCOUNT_DELETED`.

A frozen account whose event has not reached a service yet is served; its access event reaches
the lifecycle, which reactivates it just the same.

Replicas: the service's durable consumer hands each event to one replica, which writes the
table; every replica refreshes its memory from the table's recent changes every second.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import Database, UnitOfWork, Watermark
from cumulo_platform.errors import FailedPrecondition
from cumulo_platform.event_types import Event
from cumulo_platform.events import Nats
from cumulo_platform.logging import get_logger
from cumulo_platform.remote import Remote
from cumulo_platform.runtime import Job, periodic
from cumulo_platform.tokens import Principal

EVENT_TYPE = "account.state_changed"
ACTIVE, FROZEN, DELETING, DELETED = "active", "frozen", "deleting", "deleted"
STATES = (ACTIVE, FROZEN, DELETING, DELETED)

log = get_logger(__name__)
REFRESH_EVERY = 1.0  # seconds between a replica's looks at what the others wrote
# The version a purge writes: above any the lifecycle gives, so no later event undoes it.
PURGED_VERSION = 2**62

# An account's writes hold its lock shared until they commit; the purge's mark takes it
# exclusively (the key space of hashtextextended, apart from the two-key form).
_LOCK_SHARED = sa.text(
    "SELECT pg_advisory_xact_lock_shared(hashtextextended('account-writes:' || a, 0)) FROM unnest(CAST(:ids AS text[])) AS a ORDER BY a"
)
_LOCK_EXCLUSIVE = sa.text(
    "SELECT pg_advisory_xact_lock(hashtextextended('account-writes:' || a, 0)) FROM unnest(CAST(:ids AS text[])) AS a"
)

# Answers an account id with the state after reactivation ("active"), or raises.
EnsureActive = Callable[[str], Awaitable[str]]


def account_states_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "account_states",
        metadata,
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Index(f"{metadata.schema}_account_states_updated_at", "updated_at"),
    )


class AccountDeleted(FailedPrecondition):
    default_reason = "ACCOUNT_DELETED"

    def __init__(self) -> None:
        super().__init__("this account has been deleted (it was unused or cancelled)")


def remote_ensure_active(lifecycle: Remote[lifecycle_pb2_grpc.LifecycleInternalServiceStub]) -> EnsureActive:
    names = {
        lifecycle_pb2.ACCOUNT_STATE_ACTIVE: ACTIVE,
        lifecycle_pb2.ACCOUNT_STATE_FROZEN: FROZEN,
        lifecycle_pb2.ACCOUNT_STATE_DELETING: DELETING,
        lifecycle_pb2.ACCOUNT_STATE_DELETED: DELETED,
    }

    async def ensure_active(account_id: str) -> str:
        try:
            response = await lifecycle.call(lifecycle.stub.EnsureActive, lifecycle_pb2.EnsureActiveRequest(account_id=account_id))
        except FailedPrecondition:
            return DELETING  # the lifecycle's ACCOUNT_DELETED
        return names.get(response.state, ACTIVE)

    return ensure_active


class AccountStates:
    def __init__(self, db: Database, ensure_active: EnsureActive | None) -> None:
        self.db = db
        self.table = account_states_table(db.metadata)
        self.ensure_active = ensure_active
        self._refused = sa.text(self.refusing("CAST(:ids AS uuid[])"))
        self._states: dict[str, str] = {}  # only accounts that are not active
        self._watermark = Watermark()

    async def load(self) -> None:
        """The whole state again (at start)."""
        self._watermark.reset()
        await self.refresh()

    async def refresh(self) -> int:
        """What other replicas wrote lately (cumulo_platform.db.Watermark)."""
        query = sa.select(self.table.c.account_id, self.table.c.state)
        async with self.db.read() as conn:
            since, now = await self._watermark.window(conn)
            rows = (await conn.execute(query.where(self.table.c.state != ACTIVE) if since is None else query.where(self.table.c.updated_at > since))).all()
        if since is None:
            self._states = {}
        for row in rows:
            self._remember(str(row.account_id), row.state)
        self._watermark.advance(now)
        return len(rows)

    def jobs(self, nats_client: Nats, service: str) -> list[Job]:
        """Run by every replica: the shared consumer (one replica per event) and the refresh."""
        return [self.consumer(nats_client, service).run, periodic(self.refresh, every=REFRESH_EVERY)]

    def state_of(self, account_id: str) -> str:
        return self._states.get(account_id, ACTIVE)

    def _remember(self, account_id: str, state: str) -> None:
        if state == ACTIVE:
            self._states.pop(account_id, None)
        else:
            self._states[account_id] = state

    async def apply(self, received: Event[events_pb2.AccountStateChanged], uow: UnitOfWork) -> None:
        """The `account.state_changed` handler: a newer version replaces an older one; a late,
        older event changes nothing."""
        event = received.message
        if event.state not in STATES:
            log.warning("account_state_unknown", state=event.state)
            return
        insert = pg_insert(self.table).values(
            account_id=uuid.UUID(event.account_id), state=event.state, version=event.version, updated_at=sa.func.clock_timestamp()
        )
        statement = insert.on_conflict_do_update(
            index_elements=[self.table.c.account_id],
            set_={"state": insert.excluded.state, "version": insert.excluded.version, "updated_at": sa.func.clock_timestamp()},
            where=self.table.c.version < insert.excluded.version,
        ).returning(self.table.c.state)
        changed = (await uow.execute(statement)).first()
        if changed is not None:
            self._remember(event.account_id, event.state)

    async def admit_writes(self, uow: UnitOfWork, accounts: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """In a write's unit of work, before it writes anything of `accounts`: those whose
        deletion has begun here (the caller refuses their writes).

        A replica's memory learns of a purge up to a second late, and a call that passed the
        gate may still be writing: the write holds the account's lock shared until it commits,
        and the purge's mark (`mark_deleted`) takes it exclusively, so the mark waits for the
        writes in flight (which the purge then deletes) and every write after it reads the
        mark from the table, here, whatever its replica's memory says."""
        if not accounts:
            return set()
        await self.hold_writes(uow, accounts)
        rows = await uow.execute(self._refused, {"ids": list(accounts)})
        return set(rows.scalars())

    async def hold_writes(self, uow: UnitOfWork, accounts: Collection[uuid.UUID]) -> None:
        """The first half of `admit_writes`, for a writer that reads the states itself in its
        next statement (one round trip fewer on a hot path): the accounts' locks, shared. That
        statement must be a later one than this (its snapshot then sees a purge's mark that
        this waited for) and refuse the accounts `refusing(...)` names."""
        await uow.execute(_LOCK_SHARED, {"ids": sorted(str(account) for account in accounts)})

    def refusing(self, accounts_sql: str) -> str:
        """SQL naming those of `accounts_sql` (an SQL expression: a uuid[]) whose deletion has
        begun here: `account_id IN (<this>)` refuses their writes, after `hold_writes`."""
        return f"SELECT account_id FROM {self.table.fullname} WHERE account_id = ANY({accounts_sql}) AND state IN ('{DELETING}', '{DELETED}')"

    async def admit_write(self, uow: UnitOfWork, account: uuid.UUID) -> None:
        """`admit_writes` for one account: raises AccountDeleted when its deletion has begun."""
        if await self.admit_writes(uow, (account,)):
            raise AccountDeleted()

    async def mark_deleted(self, uow: UnitOfWork, account_id: str) -> None:
        """This service purged the account: from now on every replica refuses it, whatever
        the lifecycle's events say later (a purge is never undone). Waits for the account's
        writes in flight (`admit_writes`), so that what they wrote is there to be purged."""
        await uow.execute(_LOCK_EXCLUSIVE, {"ids": [account_id]})
        statement = pg_insert(self.table).values(
            account_id=uuid.UUID(account_id), state=DELETED, version=PURGED_VERSION, updated_at=sa.func.clock_timestamp()
        )
        await uow.execute(
            statement.on_conflict_do_update(
                index_elements=[self.table.c.account_id],
                set_={"state": DELETED, "version": PURGED_VERSION, "updated_at": sa.func.clock_timestamp()},
            )
        )
        self._remember(account_id, DELETED)

    def consumer(self, nats_client: Nats, service: str) -> EventConsumer:
        return EventConsumer(
            self.db, nats_client, durable=f"{service}-account-states", event_types=[EVENT_TYPE], handler=self.apply
        )

    async def ensure_usable(self, account_id: str) -> None:
        """Serves active accounts, reactivates frozen ones, refuses deleted ones."""
        state = self._states.get(account_id)
        if state is None:
            return
        if state == FROZEN and self.ensure_active is not None:
            state = await self.ensure_active(account_id)
            if state == ACTIVE:
                # The state event that follows confirms it; until then, do not ask again.
                self._states.pop(account_id, None)
                return
        if state in (DELETING, DELETED):
            raise AccountDeleted()

    async def gate(self, principal: Principal) -> None:
        await self.ensure_usable(principal.account_id)
