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
from cumulo_auth.adapters.tables import accounts, sessions
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
