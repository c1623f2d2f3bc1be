"""Auth keeps each session's row and its account's in memory (cumulo_auth.live_sessions): a
call after the first reads nothing from the database. What this replica changes it forgets at
once; what another replica changes (written to the tables directly here, as another replica
would) is forgotten within a few tenths of a second, polled with a deadline, never slept."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import grpc
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_auth import live_sessions
from cumulo_auth.adapters.tables import accounts, sessions
from cumulo_auth.live_sessions import LiveSessions
from cumulo_devstack.testing import eventually, open_channel, unique_email

DEADLINE = 10.0  # the replicas look every 0.25 s; a loaded machine gets some room (time is printed)


async def get_account(person) -> auth_pb2.Account:
    return (await person.client.call(person.client.auth.GetAccount, auth_pb2.GetAccountRequest())).account


async def test_a_second_call_reads_nothing_and_a_change_here_shows_at_once(people, auth):
    person = await people.new("phone")
    live = auth.app.live
    await get_account(person)
    before = live.reads
    for _ in range(5):
        assert (await get_account(person)).email == person.email
    assert live.reads == before  # served from memory
    new_email = unique_email()
    await person.client.call(person.client.auth.UpdateContacts, auth_pb2.UpdateContactsRequest(email=new_email, update_mask=["email"]))
    assert (await get_account(person)).email == new_email  # at once, on the replica that changed it


async def test_a_change_by_another_replica_is_seen_within_moments(people, auth):
    person = await people.new("phone")
    await get_account(person)
    changed = unique_email()
    async with auth.app.db.unit_of_work() as uow:  # as another replica of auth would
        await uow.execute(
            sa.update(accounts).where(accounts.c.account_id == uuid.UUID(person.account_id)).values(email=changed, updated_at=sa.func.now())
        )
        await uow.commit()
    started = time.monotonic()

    async def seen() -> bool:
        return (await get_account(person)).email == changed

    await eventually(seen, timeout=DEADLINE, what="the change to reach this replica's memory")
    print(f"another replica's change seen after {time.monotonic() - started:.2f} s")


async def answer(target: str, metadata: list[tuple[str, str]]) -> str:
    """"OK", or the code with which auth refused a GetAccount with this metadata."""
    async with open_channel(target) as channel:
        try:
            await auth_pb2_grpc.AuthServiceStub(channel).GetAccount(auth_pb2.GetAccountRequest(), metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code().name
    return "OK"


async def test_a_session_ended_here_is_refused_at_once_and_one_ended_elsewhere_within_moments(people, auth):
    here = await people.new("laptop")
    metadata = await here.metadata()
    assert await answer(auth.target, metadata) == "OK"
    await here.client.logout()
    # At once, without waiting: the replica that ended it forgot it.
    assert await answer(auth.target, metadata) == "UNAUTHENTICATED"

    elsewhere = await people.new("phone")
    other = await elsewhere.metadata()
    assert await answer(auth.target, other) == "OK"
    async with auth.app.db.unit_of_work() as uow:  # another replica revokes it (without announcing it)
        await uow.execute(
            sa.update(sessions)
            .where(sessions.c.account_id == uuid.UUID(elsewhere.account_id))
            .values(revoked_at=dt.datetime.now(dt.UTC), revoke_reason="test: revoked elsewhere")
        )
        await uow.commit()
    started = time.monotonic()

    async def refused() -> bool:
        return await answer(auth.target, other) == "UNAUTHENTICATED"

    await eventually(refused, timeout=DEADLINE, what="the session revoked elsewhere to be refused")
    print(f"a session revoked elsewhere refused after {time.monotonic() - started:.2f} s")


async def session_ids(auth, account_id: str) -> list[uuid.UUID]:
    async with auth.app.db.read() as conn:
        return list((await conn.execute(sa.select(sessions.c.session_id).where(sessions.c.account_id == uuid.UUID(account_id)))).scalars())


async def test_memory_stays_bounded_and_holds_nothing_for_sessions_that_do_not_exist(people, auth):
    """A flood of sessions (many people signing in) cannot grow a replica's memory past its
    bound: the oldest rows go first, and what is forgotten by account still works after an
    eviction. A session id nobody has (a revoked-and-deleted one, a guess) is never kept."""
    persons = [await people.new(f"device {i}") for i in range(4)]
    ids = [(await session_ids(auth, p.account_id))[0] for p in persons]
    live = LiveSessions(auth.app.db, auth.app.live.clock, max_entries=2)
    for session_id in ids:
        assert (await live.row(session_id)) is not None
    assert len(live._rows) == 2 and set(live._rows) == set(ids[2:])  # the newest two
    assert {s for held in live._sessions_of.values() for s in held} == set(ids[2:])
    live.forget_account(uuid.UUID(persons[0].account_id))  # evicted already: nothing to do, no error
    live.forget_account(uuid.UUID(persons[3].account_id))
    assert set(live._rows) == {ids[2]}
    reads = live.reads
    for _ in range(100):
        assert await live.row(uuid.uuid4()) is None
    assert live.reads == reads + 100 and set(live._rows) == {ids[2]}  # looked up each time, never kept


async def test_no_row_is_served_from_memory_past_its_age(people, auth, monkeypatch):
    """Whatever the replicas' clocks do to the look at what changed, memory is only a while."""
    person = await people.new("phone")
    (session_id,) = await session_ids(auth, person.account_id)
    live = LiveSessions(auth.app.db, auth.app.live.clock)
    await live.row(session_id)
    await live.row(session_id)
    assert live.reads == 1
    monkeypatch.setattr(live_sessions, "MAX_AGE", 0.0)
    await live.row(session_id)
    await live.row(session_id)
    assert live.reads == 3 and len(live._rows) == len(live._read_at) == 1
