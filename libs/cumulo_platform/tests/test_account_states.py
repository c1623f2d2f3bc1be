"""AccountStates, the account-state cache every service keeps: `account.state_changed` events
applied to a table of the service's schema (newer versions win, late and repeated events change
nothing) and mirrored in memory; restored by `load()` after a restart; the gate that serves
active accounts, has frozen ones reactivated and refuses deleted ones. On the session's real
PostgreSQL (a fresh database per test), NATS, and the real lifecycle and blob services."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa
from nats.js.errors import NotFoundError

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import eventually, identity
from cumulo_platform.account_states import (
    ACTIVE,
    DELETED,
    DELETING,
    EVENT_TYPE,
    FROZEN,
    AccountDeleted,
    AccountStates,
    EnsureActive,
)
from cumulo_platform.db import Database, create_engine, make_envelope
from cumulo_platform.errors import FailedPrecondition
from cumulo_platform.event_types import decode, event_subject
from cumulo_platform.events import STREAM_NAME, Nats
from cumulo_platform.identity import OPERATOR

SCHEMA = "t1"


# --- helpers ------------------------------------------------------------------------------------


def changed(account_id: str, state: str, version: int) -> events_pb2.Envelope:
    """An `account.state_changed` envelope as the lifecycle emits it."""
    return make_envelope(
        EVENT_TYPE,
        events_pb2.AccountStateChanged(account_id=account_id, state=state, version=version, reason="test"),
        account_id=account_id,
        producer="lifecycle",
        occurred_at=dt.datetime.now(dt.UTC),
    )


async def apply(states: AccountStates, *envelopes: events_pb2.Envelope) -> None:
    """Each envelope in its own committed transaction, as the consumer applies them."""
    for envelope in envelopes:
        async with states.db.unit_of_work() as uow:
            await states.apply(decode(envelope), uow)
            await uow.commit()


async def stored(states: AccountStates) -> dict[str, tuple[str, int]]:
    """The cache's table: account id -> (state, version)."""
    table = states.table
    async with states.db.read() as conn:
        rows = (await conn.execute(sa.select(table.c.account_id, table.c.state, table.c.version))).all()
    return {str(row.account_id): (row.state, row.version) for row in rows}


class Lifecycle:
    """Stands for the lifecycle's EnsureActive: records the accounts asked about and answers
    `answer` (the state after the call)."""

    def __init__(self, answer: str = ACTIVE) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def __call__(self, account_id: str) -> str:
        self.asked.append(account_id)
        return self.answer


@dataclasses.dataclass
class Opened:
    url: str
    databases: list[Database] = dataclasses.field(default_factory=list)

    async def states(self, ensure_active: EnsureActive | None = None) -> AccountStates:
        """A service process's cache on this database (a new Database each time, as after a
        restart), its table created if missing."""
        db = Database(create_engine(self.url, pool_size=2), schema=SCHEMA, producer="test")
        self.databases.append(db)
        states = AccountStates(db, ensure_active)
        async with db.engine.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
            await conn.run_sync(db.metadata.create_all)
        return states


@pytest.fixture
async def opened(infra) -> AsyncIterator[Opened]:
    """A fresh database of the session's PostgreSQL; every Database opened on it is disposed."""
    opened = Opened(infra.new_database())
    try:
        yield opened
    finally:
        for db in opened.databases:
            await db.dispose()


def new_id() -> str:
    return str(uuid.uuid4())


# --- apply ------------------------------------------------------------------------------------------


async def test_a_newer_version_wins_and_a_late_older_event_changes_nothing(opened):
    states = await opened.states(Lifecycle())
    account = new_id()
    await apply(states, changed(account, FROZEN, 3))
    assert states.state_of(account) == FROZEN
    assert await stored(states) == {account: (FROZEN, 3)}

    # Late: the reactivation before the freeze (version 2) arrives after it.
    await apply(states, changed(account, ACTIVE, 2))
    assert states.state_of(account) == FROZEN
    assert await stored(states) == {account: (FROZEN, 3)}

    await apply(states, changed(account, DELETING, 4))
    assert states.state_of(account) == DELETING
    # Older ones, in any order, change nothing.
    await apply(states, changed(account, FROZEN, 3), changed(account, ACTIVE, 1), changed(account, ACTIVE, 2))
    assert states.state_of(account) == DELETING
    assert await stored(states) == {account: (DELETING, 4)}

    await apply(states, changed(account, DELETED, 5))
    assert states.state_of(account) == DELETED
    assert await stored(states) == {account: (DELETED, 5)}


async def test_an_account_active_again_leaves_the_memory_but_keeps_its_version(opened):
    states = await opened.states(Lifecycle())
    account = new_id()
    await apply(states, changed(account, FROZEN, 1), changed(account, ACTIVE, 2))
    assert states.state_of(account) == ACTIVE
    assert account not in states._states  # only accounts that are not active are held
    assert await stored(states) == {account: (ACTIVE, 2)}
    # The freeze arriving late does not freeze it again.
    await apply(states, changed(account, FROZEN, 1))
    assert states.state_of(account) == ACTIVE
    assert await stored(states) == {account: (ACTIVE, 2)}


async def test_repeated_events_are_harmless(opened):
    states = await opened.states(Lifecycle())
    account, other = new_id(), new_id()
    frozen = changed(account, FROZEN, 7)
    # The same envelope twice, and the same change under another event id.
    await apply(states, frozen, frozen, changed(account, FROZEN, 7), changed(other, DELETING, 1), changed(other, DELETING, 1))
    assert states.state_of(account) == FROZEN
    assert states.state_of(other) == DELETING
    assert await stored(states) == {account: (FROZEN, 7), other: (DELETING, 1)}
    # A duplicate also never undoes what the gate did meanwhile: once the lifecycle said
    # "active", the frozen account is served without asking again until a newer event comes.
    lifecycle = states.ensure_active
    await states.ensure_usable(account)
    assert lifecycle.asked == [account]
    await apply(states, frozen)
    await states.ensure_usable(account)
    assert lifecycle.asked == [account]
    await apply(states, changed(account, FROZEN, 9))  # frozen again, later
    await states.ensure_usable(account)
    assert lifecycle.asked == [account, account]


async def test_an_event_with_an_unknown_state_is_ignored(opened):
    states = await opened.states(Lifecycle())
    account = new_id()
    await apply(states, changed(account, FROZEN, 1), changed(account, "suspended", 2))
    assert states.state_of(account) == FROZEN
    assert await stored(states) == {account: (FROZEN, 1)}


async def test_a_rolled_back_transaction_stores_nothing(opened):
    states = await opened.states(Lifecycle())
    account = new_id()
    async with states.db.unit_of_work() as uow:
        await states.apply(decode(changed(account, FROZEN, 1)), uow)
    assert await stored(states) == {}
    # Redelivered (the consumer naks what it did not commit), it is applied then.
    await apply(states, changed(account, FROZEN, 1))
    assert await stored(states) == {account: (FROZEN, 1)}
    assert states.state_of(account) == FROZEN


# --- load ----------------------------------------------------------------------------------------------


async def test_load_restores_the_accounts_that_are_not_active_after_a_restart(opened):
    before = await opened.states(Lifecycle())
    frozen, deleting, deleted, back, active = (new_id() for _ in range(5))
    await apply(
        before,
        changed(frozen, FROZEN, 1),
        changed(deleting, FROZEN, 1),
        changed(deleting, DELETING, 2),
        changed(deleted, DELETED, 4),
        changed(back, FROZEN, 1),
        changed(back, ACTIVE, 2),
        changed(active, ACTIVE, 1),
    )

    lifecycle = Lifecycle(answer=ACTIVE)
    after = await opened.states(lifecycle)  # a new process: a new Database, an empty memory
    assert after.db is not before.db
    assert all(after.state_of(a) == ACTIVE for a in (frozen, deleting, deleted, back, active))
    await after.load()
    assert {a: after.state_of(a) for a in (frozen, deleting, deleted, back, active)} == {
        frozen: FROZEN, deleting: DELETING, deleted: DELETED, back: ACTIVE, active: ACTIVE
    }
    assert sorted(after._states) == sorted([frozen, deleting, deleted])
    # The restarted gate acts on them at once ...
    await after.ensure_usable(frozen)
    assert lifecycle.asked == [frozen]
    for gone in (deleting, deleted):
        with pytest.raises(AccountDeleted):
            await after.ensure_usable(gone)
    # ... and goes on applying events from where the table is.
    await apply(after, changed(deleted, ACTIVE, 3), changed(back, FROZEN, 3))
    assert after.state_of(deleted) == DELETED
    assert after.state_of(back) == FROZEN


async def test_load_on_an_empty_table_knows_no_account(opened):
    states = await opened.states(Lifecycle())
    await states.load()
    assert states._states == {}
    assert states.state_of(new_id()) == ACTIVE


# --- ensure_usable ----------------------------------------------------------------------------------


async def test_active_and_unknown_accounts_are_served_without_asking_the_lifecycle(opened):
    lifecycle = Lifecycle(answer=DELETING)  # would refuse, if it were asked
    states = await opened.states(lifecycle)
    active = new_id()
    await apply(states, changed(active, ACTIVE, 1))
    await states.ensure_usable(active)
    await states.ensure_usable(new_id())
    assert lifecycle.asked == []


async def test_a_frozen_account_is_reactivated_first_then_served(opened):
    lifecycle = Lifecycle(answer=ACTIVE)
    states = await opened.states(lifecycle)
    account = new_id()
    await apply(states, changed(account, FROZEN, 1))
    await states.ensure_usable(account)
    assert lifecycle.asked == [account]
    assert states.state_of(account) == ACTIVE
    # Not asked again while the confirming event is on its way.
    await states.ensure_usable(account)
    assert lifecycle.asked == [account]
    await apply(states, changed(account, ACTIVE, 2))
    await states.ensure_usable(account)
    assert lifecycle.asked == [account]
    assert await stored(states) == {account: (ACTIVE, 2)}


async def test_a_frozen_account_whose_deletion_has_begun_is_refused(opened):
    lifecycle = Lifecycle(answer=DELETING)
    states = await opened.states(lifecycle)
    account = new_id()
    await apply(states, changed(account, FROZEN, 1))
    with pytest.raises(AccountDeleted) as caught:
        await states.ensure_usable(account)
    assert lifecycle.asked == [account]
    error = caught.value
    assert isinstance(error, FailedPrecondition)
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "ACCOUNT_DELETED"
    assert error.to_status().code == grpc.StatusCode.FAILED_PRECONDITION.value[0]


@pytest.mark.parametrize("state", [DELETING, DELETED])
async def test_a_deleting_or_deleted_account_is_refused_without_asking(opened, state):
    lifecycle = Lifecycle(answer=ACTIVE)  # would let it through, if it were asked
    states = await opened.states(lifecycle)
    account = new_id()
    await apply(states, changed(account, FROZEN, 1), changed(account, state, 2))
    for _ in range(2):
        with pytest.raises(AccountDeleted) as caught:
            await states.ensure_usable(account)
        assert caught.value.reason == "ACCOUNT_DELETED"
    assert lifecycle.asked == []


async def test_the_lifecycles_failure_is_not_taken_for_an_answer(opened):
    """EnsureActive failing (the lifecycle unreachable) refuses the call, and the account
    stays frozen: the next call asks again."""

    class Unreachable(Exception):
        pass

    asked: list[str] = []

    async def unreachable(account_id: str) -> str:
        asked.append(account_id)
        raise Unreachable()

    states = await opened.states(unreachable)
    account = new_id()
    await apply(states, changed(account, FROZEN, 1))
    with pytest.raises(Unreachable):
        await states.ensure_usable(account)
    assert states.state_of(account) == FROZEN
    with pytest.raises(Unreachable):
        await states.ensure_usable(account)
    assert asked == [account, account]


async def test_a_purged_account_is_refused_and_no_later_event_brings_it_back(opened):
    lifecycle = Lifecycle(answer=ACTIVE)
    states = await opened.states(lifecycle)
    account = new_id()
    async with states.db.unit_of_work() as uow:
        await states.mark_deleted(uow, account)
        await uow.commit()
    with pytest.raises(AccountDeleted):
        await states.ensure_usable(account)
    # The lifecycle's events come later, with any version: the purge stays.
    await apply(states, changed(account, ACTIVE, 7), changed(account, FROZEN, 8))
    assert (await stored(states))[account][0] == DELETED
    with pytest.raises(AccountDeleted):
        await states.ensure_usable(account)
    # Another replica (a fresh start) learns it from the table.
    other = await opened.states(lifecycle)
    await other.load()
    assert other.state_of(account) == DELETED
    assert lifecycle.asked == []


# --- replicas -------------------------------------------------------------------------------------------


async def test_every_replica_of_a_service_learns_a_state_change(opened, infra):
    service = f"test-{uuid.uuid4().hex[:10]}"
    replicas = [await opened.states(Lifecycle()) for _ in range(2)]
    buses = [Nats(infra.nats.url, identity=identity(OPERATOR)) for _ in range(2)]
    tasks = [asyncio.create_task(job()) for states, bus in zip(replicas, buses) for job in states.jobs(bus, service)]
    publisher = Nats(infra.nats.url, identity=identity(OPERATOR))
    durable = f"{service}-account-states"
    account = new_id()
    try:
        js = await publisher.jetstream()
        event = changed(account, DELETED, 1)
        await js.publish(event_subject(event.producer, EVENT_TYPE), event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})

        async def one_replica_knows() -> bool:
            return any(r.state_of(account) == DELETED for r in replicas)

        await eventually(one_replica_knows, timeout=30, what="a replica to learn that the account is deleted")

        async def settled() -> bool:
            with contextlib.suppress(NotFoundError):
                info = await js.consumer_info(STREAM_NAME, durable)
                return info.num_pending == 0 and info.num_ack_pending == 0
            return False

        await eventually(settled, what="the durable consumer to have acknowledged everything")
        # Every replica must now refuse the deleted account.
        for states in replicas:
            await eventually(
                lambda states=states: _known(states, account, DELETED), timeout=5, what="every replica to learn that the account is deleted"
            )
            with pytest.raises(AccountDeleted):
                await states.ensure_usable(account)
    finally:
        for task in tasks:
            task.cancel()
        # Bounded, as the service runtime does: a job must not hold the test for ever.
        _, stuck = await asyncio.wait(tasks, timeout=10)
        assert not stuck, f"jobs that did not stop: {stuck}"
        with contextlib.suppress(Exception):
            await (await publisher.jetstream()).delete_consumer(STREAM_NAME, durable)
        for bus in [*buses, publisher]:
            # Not Nats.close(): its drain can wait 30 s on a pull subscription (see test_consumer).
            await (await bus.connection()).close()
            await bus.close()


async def _known(states: AccountStates, account: str, state: str) -> bool:
    return states.state_of(account) == state
