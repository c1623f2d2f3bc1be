"""Fixtures of the moderation tests, against the session's real servers and services.

- `owner`: a member who uploaded a photo (`owner.file_id`) and shares it by a link.
- `moderator`: an account given the "moderator" role through auth's internal API, logged in
  again so that its token carries the role.
- `reporter`: another member, signed in.
- `held`, `bystander`: members a moderator will hold, and one never held.
- `desk`: a moderator's legal holds, released after the test, and waits for them to reach the
  lifecycle and the services' `legal_holds` tables.
"""

from __future__ import annotations

import dataclasses
import pathlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import PASSWORD, Member, eventually, new_member
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore

HOLD_WAIT = 30.0  # seconds for an event to travel lifecycle outbox -> JetStream -> consumer


@dataclasses.dataclass
class Owner(Member):
    link_token: str = ""
    link_id: str = ""


def copyright_claim(**changes: object) -> pb.CopyrightClaim:
    fields: dict[str, object] = dict(
        rights_holder="Lumen Pictures Ltd", rights_holder_contact="legal@lumen.example, +44 20 7946 0000",
        work="the photograph 'Harbour at Dawn' (2024)", location="the share link given as the target",
        good_faith_statement=True, accuracy_statement=True, signature="Jane Roe",
    )
    fields.update(changes)
    return pb.CopyrightClaim(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def internal_auth(auth) -> AsyncIterator[auth_pb2_grpc.AuthInternalServiceStub]:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(auth.target) as channel:
        yield auth_pb2_grpc.AuthInternalServiceStub(channel)


@pytest.fixture
async def internal_blob(blob) -> AsyncIterator[blob_pb2_grpc.BlobInternalServiceStub]:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(blob.target) as channel:
        yield blob_pb2_grpc.BlobInternalServiceStub(channel)


@pytest.fixture
async def internal_lifecycle(lifecycle) -> AsyncIterator[lifecycle_pb2_grpc.LifecycleInternalServiceStub]:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(lifecycle.target) as channel:
        yield lifecycle_pb2_grpc.LifecycleInternalServiceStub(channel)


@pytest.fixture
async def owner(gateway: str, tmp_path: pathlib.Path) -> AsyncIterator[Owner]:
    member = await new_member(gateway, tmp_path / "owner")
    link = await member.client.files.share(member.file_id)
    try:
        yield Owner(
            member.client, member.email, member.account_id, member.file_id, member.content, member.uploaded_at,
            link_token=link.token, link_id=link.link_id,
        )
    finally:
        await member.client.close()


@pytest.fixture
async def reporter(gateway: str, tmp_path: pathlib.Path) -> AsyncIterator[Member]:
    member = await new_member(gateway, tmp_path / "reporter")
    try:
        yield member
    finally:
        await member.client.close()


async def make_moderator(gateway: str, folder: pathlib.Path, internal_auth: auth_pb2_grpc.AuthInternalServiceStub) -> Member:
    member = await new_member(gateway, folder)
    await internal_auth.SetAccountRoles(
        auth_pb2.SetAccountRolesRequest(account_id=member.account_id, roles=["moderator"], reason="trust and safety team", actor="test")
    )
    await member.client.login(member.email, PASSWORD, device_name="moderation desk")
    return member


@pytest.fixture
async def moderator(gateway: str, tmp_path: pathlib.Path, internal_auth) -> AsyncIterator[Cumulo]:  # type: ignore[no-untyped-def]
    member = await make_moderator(gateway, tmp_path / "moderator", internal_auth)
    try:
        yield member.client
    finally:
        await member.client.close()


@pytest.fixture
async def anonymous(gateway: str, tmp_path: pathlib.Path) -> AsyncIterator[Cumulo]:
    client = Cumulo(gateway, store=TokenStore(tmp_path / "anonymous.json"))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def claim():  # type: ignore[no-untyped-def]
    """Builds a complete copyright notice, with any element changed: claim(work="")."""
    return copyright_claim


@pytest.fixture
async def held(gateway: str, tmp_path: pathlib.Path) -> AsyncIterator[Member]:
    """The account a moderator will hold."""
    made = await new_member(gateway, tmp_path / "held")
    try:
        yield made
    finally:
        await made.client.close()


@pytest.fixture
async def bystander(gateway: str, tmp_path: pathlib.Path) -> AsyncIterator[Member]:
    """Another account, never held."""
    made = await new_member(gateway, tmp_path / "bystander")
    try:
        yield made
    finally:
        await made.client.close()


class Desk:
    """The moderator's desk: places and releases holds, remembers those still placed, and
    waits for a hold to reach the lifecycle and the services."""

    def __init__(self, moderator: Cumulo, lifecycle: lifecycle_pb2_grpc.LifecycleInternalServiceStub) -> None:
        self.moderator = moderator
        self.lifecycle = lifecycle
        self.placed: set[str] = set()

    async def place(self, account_id: str, reason: str) -> None:
        await self.moderator.moderation.hold(account_id, held=True, reason=reason)
        self.placed.add(account_id)

    async def release(self, account_id: str, reason: str) -> None:
        await self.moderator.moderation.hold(account_id, held=False, reason=reason)
        self.placed.discard(account_id)

    async def known_to_lifecycle(self, account_id: str) -> None:
        """A hold is placed in the lifecycle, which must have learnt of the account first."""

        async def known() -> bool:
            try:
                await self.lifecycle.GetAccount(lifecycle_pb2.GetAccountRequest(account_id=account_id), timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    return False
                raise
            return True

        await eventually(known, timeout=HOLD_WAIT, what="the lifecycle to know the account")

    async def lifecycle_held(self, account_id: str) -> bool:
        found = await self.lifecycle.GetAccount(lifecycle_pb2.GetAccountRequest(account_id=account_id), timeout=10)
        return bool(found.account.held)

    @staticmethod
    async def held_in(running) -> set[uuid.UUID]:  # type: ignore[no-untyped-def]
        """The accounts held in a service's `legal_holds` table."""
        table = running.app.holds.table
        async with running.app.db.read() as conn:
            return set((await conn.execute(sa.select(table.c.account_id).where(table.c.held))).scalars())

    @staticmethod
    async def rows_in(running, account_id: str) -> list[sa.Row]:  # type: ignore[no-untyped-def]
        table = running.app.holds.table
        async with running.app.db.read() as conn:
            return list((await conn.execute(sa.select(table).where(table.c.account_id == uuid.UUID(account_id)))).all())

    async def reaches(self, running, account_id: str, *, held: bool, service: str) -> None:  # type: ignore[no-untyped-def]
        """Waits until the service's table shows the account held (or no longer held)."""
        account = uuid.UUID(account_id)

        async def seen() -> bool:
            return (account in await self.held_in(running)) == held

        what = f"{service} to learn that the hold was {'placed' if held else 'released'}"
        await eventually(seen, timeout=HOLD_WAIT, what=what)


@pytest.fixture
async def desk(moderator: Cumulo, internal_lifecycle) -> AsyncIterator[Desk]:  # type: ignore[no-untyped-def]
    """A hold a failing test leaves in place is released afterwards: no later test meets it."""
    made = Desk(moderator, internal_lifecycle)
    yield made
    for account_id in list(made.placed):
        await made.release(account_id, "test clean-up: a hold left by a failing test")
