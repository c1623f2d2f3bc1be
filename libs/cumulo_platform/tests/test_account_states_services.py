"""The account-state gate with the real lifecycle and blob services: blob's cache learns a
freeze from the lifecycle's event, a call has the account reactivated first, and once deletion
has begun both refuse it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.testing import PASSWORD, Ages, allowed_caller, eventually, notices_sent, unique_email
from cumulo_platform.account_states import ACTIVE, DELETED, DELETING, FROZEN, AccountDeleted, AccountStates, remote_ensure_active
from cumulo_platform.remote import Remote


async def stored(states: AccountStates) -> dict[str, tuple[str, int]]:
    """The cache's table: account id -> (state, version)."""
    table = states.table
    async with states.db.read() as conn:
        rows = (await conn.execute(sa.select(table.c.account_id, table.c.state, table.c.version))).all()
    return {str(row.account_id): (row.state, row.version) for row in rows}


async def _known(states: AccountStates, account: str, state: str) -> bool:
    return states.state_of(account) == state


# --- end to end: the real lifecycle and blob services -------------------------------------------------


async def _registered(client, lifecycle) -> str:
    from cumulo_lifecycle.adapters.tables import accounts

    address = unique_email()
    account = await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17))

    async def known() -> Any:
        async with lifecycle.app.db.read() as conn:
            return (
                await conn.execute(
                    # The account's row, and auth's answer about its contacts recorded (none: the
                    # address is not verified).
                    sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account.account_id), accounts.c.contacts_wanted_at.is_(None))
                )
            ).first()

    await eventually(known, what="the lifecycle to know the new account")
    return account.account_id


@pytest.fixture
def ages(lifecycle, auth, blob, infra) -> Ages:
    return Ages(lifecycle, (auth, blob), infra.nats.url)


async def _cached(service, account_id: str, state: str, version: int) -> bool:
    states: AccountStates = service.app.states
    if states.state_of(account_id) != state:
        return False
    return (await stored(states)).get(account_id) == (state, version)


@pytest.fixture
async def lifecycle_api(lifecycle) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """`remote_ensure_active` on a channel of the test's own to the session's lifecycle."""
    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as stub:
        yield remote_ensure_active(Remote("lifecycle", stub, deadline=10, bulk_deadline=10))


async def test_the_blob_services_cache_learns_a_freeze_and_the_lifecycle_reactivates(ages, client, lifecycle, blob, lifecycle_api):
    account_id = await _registered(client, lifecycle)
    frozen = await ages.freeze(account_id)
    await eventually(
        lambda: _cached(blob, account_id, FROZEN, frozen.version),
        what="the blob service's cache to learn the freeze from the lifecycle's event",
    )

    assert await lifecycle_api(account_id) == ACTIVE
    row = await lifecycle.app.cases.reports.state_of(account_id)
    assert row.state == ACTIVE and row.version == frozen.version + 1
    await eventually(
        lambda: _cached(blob, account_id, ACTIVE, frozen.version + 1),
        what="the blob service's cache to learn the reactivation",
    )
    # Asking again is harmless: the account is active.
    assert await lifecycle_api(account_id) == ACTIVE
    assert (await lifecycle.app.cases.reports.state_of(account_id)).version == frozen.version + 1
    await blob.app.states.ensure_usable(account_id)
    await notices_sent(lifecycle, account_id)


async def test_once_deletion_has_begun_the_lifecycle_and_the_blob_service_refuse(ages, client, lifecycle, blob, lifecycle_api):
    account_id = await _registered(client, lifecycle)
    frozen = await ages.freeze(account_id)
    await ages.grace_over(account_id)
    await lifecycle.app.cases.sweeper.sweep()
    assert (await lifecycle.app.cases.reports.state_of(account_id)).state in (DELETING, DELETED)

    # The lifecycle's FAILED_PRECONDITION (ACCOUNT_DELETED) reads as "deleting"; nothing is reactivated.
    assert await lifecycle_api(account_id) == DELETING
    assert (await lifecycle.app.cases.reports.state_of(account_id)).state in (DELETING, DELETED)

    async def blob_knows() -> bool:
        state = blob.app.states.state_of(account_id)
        return state in (DELETING, DELETED) and (await stored(blob.app.states)).get(account_id, ("", 0))[1] > frozen.version

    await eventually(blob_knows, what="the blob service's cache to learn that deletion has begun")
    with pytest.raises(AccountDeleted):
        await blob.app.states.ensure_usable(account_id)

    # The purge ends; the account stays refused everywhere.
    async def deleted() -> bool:
        return (await lifecycle.app.cases.reports.state_of(account_id)).state == DELETED

    await eventually(deleted, timeout=30, what="the purge to finish")
    assert await lifecycle_api(account_id) == DELETING
    await eventually(lambda: _known(blob.app.states, account_id, DELETED), what="the blob service's cache to learn the deletion")
    with pytest.raises(AccountDeleted):
        await blob.app.states.ensure_usable(account_id)
    await notices_sent(lifecycle, account_id)
