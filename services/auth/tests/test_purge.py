"""Auth's part in the deletion saga: sessions, tokens, contacts and password go; the login's
digest stays, so that logging in answers ACCOUNT_DELETED; a repeated purge changes nothing."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters.tables import accounts, sessions
from cumulo_devstack.testing import expect_error, nats_connect, read_stream
from cumulo_platform.db import make_envelope
from cumulo_platform.event_types import event_filter, event_subject

DELETED = grpc.StatusCode.FAILED_PRECONDITION


async def stored(auth, account_id: str):
    """The account's row and how many sessions it has left (refresh tokens go with them)."""
    async with auth.app.db.read() as conn:
        account = (await conn.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account_id)))).one()
        left = (
            await conn.execute(sa.select(sa.func.count()).where(sessions.c.account_id == uuid.UUID(account_id)))
        ).scalar_one()
    return account, left


async def test_purged_account_keeps_nothing_but_answers_account_deleted(direct, auth, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    await accounts.login(direct, member.phone)
    assert await auth.app.purge.purge_account(uuid.UUID(member.account_id), "cancellation") == 3  # two sessions and the account
    account, left = await stored(auth, member.account_id)
    assert (account.email, account.phone, account.password_hash, account.roles, account.status) == (None, None, None, [], "deleted")
    assert left == 0
    for login in (member.email, member.phone):
        await expect_error(accounts.login_call(direct, login), DELETED, reason="ACCOUNT_DELETED")
    await expect_error(accounts.refresh(direct, member.refresh_token), grpc.StatusCode.UNAUTHENTICATED, reason="REFRESH_TOKEN_INVALID")
    # Asked again (a lost completion, a retry of the saga): nothing more to delete.
    assert await auth.app.purge.purge_account(uuid.UUID(member.account_id), "cancellation") == 0
    await expect_error(accounts.login_call(direct, member.email), DELETED, reason="ACCOUNT_DELETED")


async def test_purge_requested_is_answered_and_the_account_refused_everywhere(direct, auth, infra, accounts):
    member = await accounts.new_member(direct)
    # As the lifecycle asks (only it may: the operator publishes on its subject here). Only
    # auth is named: the other services' participants (if running) leave it alone.
    request = make_envelope(
        "purge.requested",
        events_pb2.PurgeRequested(account_id=member.account_id, reason="test", attempt=1, services=["auth"]),
        account_id=member.account_id, producer="lifecycle", occurred_at=dt.datetime.now(dt.UTC),
    )
    connection = await nats_connect(infra.nats.url)
    try:
        await connection.jetstream(timeout=5).publish(event_subject("lifecycle", "purge.requested"), request.SerializeToString())
    finally:
        await connection.close()
    [completed] = await read_stream(
        infra.nats.url,
        event_filter("purge.completed"),
        lambda envelope: envelope.account_id == member.account_id,
        what="auth's purge.completed",
    )
    report = events_pb2.PurgeCompleted()
    assert completed.envelope.payload.Unpack(report)
    assert (report.service, report.items_deleted) == ("auth", 2)  # the session and the account
    await expect_error(accounts.login_call(direct, member.email), DELETED, reason="ACCOUNT_DELETED")
    account, _ = await stored(auth, member.account_id)
    assert account.status_reason == "test"  # the saga's own reason is auth's record of why

    # The platform's gate (marked before anything was deleted) refuses the
    # account's still-valid access token before any handler runs.
    await expect_error(accounts.get_account(direct, member.access_token), DELETED, reason="ACCOUNT_DELETED")
