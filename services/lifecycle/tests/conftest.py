"""Fixtures of the lifecycle's tests against the session's services (product periods: P12M
and P30D, so nothing freezes by itself).

- `member`: a new account, registered and logged in through the gateway, with a file.
- `ages` (cumulo_devstack.testing.Ages): moves one account's clock on purpose: its last access a year back (the next sweep
  freezes it), or its deletion date into the past (the next sweep starts deleting it). Only
  that account's rows change, so the rest of the session is untouched.
- `mailbox`: the notices the real SMTP server received for an address.
- `internal`: the lifecycle's internal API, as other services and cumulo-admin call it.
"""

from __future__ import annotations

import email.message
import hashlib
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.testing import Ages, eventually, new_member
from cumulo_lifecycle.adapters.tables import accounts


@pytest.fixture
async def member(gateway: str, lifecycle, tmp_path) -> Any:  # type: ignore[no-untyped-def]
    made = await new_member(gateway, tmp_path)
    try:
        # Every use so far has reached the lifecycle (the upload's last): a test that ages the
        # account afterwards is not undone by a late access event.
        row = await eventually(
            lambda: row_of(lifecycle, made.account_id, lambda r: r.email == made.email and r.last_access_at >= made.uploaded_at),
            what="the lifecycle to know the account, its contact and its uses",
        )
        assert row.state == "active"
        yield made
    finally:
        await made.client.close()


async def row_of(lifecycle, account_id: str, condition=lambda row: True) -> Any:  # type: ignore[no-untyped-def]
    async with lifecycle.app.db.read() as conn:
        row = (await conn.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account_id)))).first()
    return row if row is not None and condition(row) else None


class Rows:
    """The lifecycle's ledger row of an account (None until `condition` holds)."""

    def __init__(self, lifecycle) -> None:  # type: ignore[no-untyped-def]
        self.lifecycle = lifecycle

    async def get(self, account_id: str, condition=lambda row: True) -> Any:  # type: ignore[no-untyped-def]
        return await row_of(self.lifecycle, account_id, condition)


@pytest.fixture
def rows(lifecycle) -> Rows:  # type: ignore[no-untyped-def]
    return Rows(lifecycle)


@pytest.fixture
def ages(lifecycle, auth, blob, infra) -> Ages:  # type: ignore[no-untyped-def]
    return Ages(lifecycle, (auth, blob), infra.nats.url)


class Mailbox:
    def __init__(self, mail) -> None:  # type: ignore[no-untyped-def]
        self.mail = mail

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.mail.messages() if m["To"] == address]

    async def wait_for(self, address: str, subject_part: str, *, count: int = 1) -> list[email.message.EmailMessage]:
        async def arrived() -> list[email.message.EmailMessage]:
            found = [m for m in self.to(address) if subject_part in m["Subject"]]
            return found if len(found) >= count else []

        return await eventually(arrived, timeout=20, what=f"a notice '{subject_part}' to {address}")


@pytest.fixture
def mailbox(mail) -> Mailbox:  # type: ignore[no-untyped-def]
    return Mailbox(mail)


@pytest.fixture
async def internal(lifecycle) -> Any:  # type: ignore[no-untyped-def]
    import grpc

    async with grpc.aio.insecure_channel(lifecycle.target) as channel:
        yield lifecycle_pb2_grpc.LifecycleInternalServiceStub(channel)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
