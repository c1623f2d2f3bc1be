"""Fixtures of the moderation tests, against the session's real servers and services.

- `owner`: a member who uploaded a photo (`owner.file_id`) and shares it by a link.
- `moderator`: an account given the "moderator" role through auth's internal API, logged in
  again so that its token carries the role.
- `reporter`: another member, signed in.
- `held`, `bystander`: members a moderator will hold, and one never held.
- `member`: a member who uploaded a photo (as `owner`, without the share link).
- `desk`: a moderator's legal holds, released after the test, and waits for them to reach the
  lifecycle and the services' `legal_holds` tables.
- `world`: what the security tests (test_security*.py) aim at, built once for all of them;
  `fresh_world`, one of the same making for a test that changes it. `moderation_clock`: the
  service's clock, put back after the test.
- `blob_away`: moderation's calls to blob refused, inside `with blob_away:`. `blocklisted`:
  content for the test to store and then put on the blocklist (taken off afterwards).
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_devstack.servers import MailCatcher, free_port
from cumulo_devstack.testing import Member, People, allowed_caller, eventually, signed_up_member
from cumulo_platform.remote import Remote
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore

from .helpers import World, build_world, copyright_claim, make_moderator

HOLD_WAIT = 30.0  # seconds for an event to travel lifecycle outbox -> JetStream -> consumer


@dataclasses.dataclass
class Owner(Member):
    link_token: str = ""
    link_id: str = ""


@pytest.fixture
async def internal_auth(auth) -> AsyncIterator[auth_pb2_grpc.AuthInternalServiceStub]:
    async with allowed_caller(auth.target, auth_pb2_grpc.AuthInternalServiceStub) as internal:
        yield internal


@pytest.fixture
async def internal_blob(blob) -> AsyncIterator[blob_pb2_grpc.BlobInternalServiceStub]:
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as internal:
        yield internal


@pytest.fixture
async def internal_lifecycle(lifecycle) -> AsyncIterator[lifecycle_pb2_grpc.LifecycleInternalServiceStub]:
    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as internal:
        yield internal


@pytest.fixture
async def owner(gateway: str, tmp_path: pathlib.Path, mail: MailCatcher) -> AsyncIterator[Owner]:
    async with signed_up_member(gateway, tmp_path / "owner", mail=mail) as member:
        link = await member.client.files.share(member.file_id)
        yield Owner(
            member.client, member.email, member.account_id, member.file_id, member.content, member.uploaded_at,
            link_token=link.token, link_id=link.link_id,
        )


def member_fixture(name: str, doc: str) -> Any:
    """A fixture `name`: a member of its own (with a photo uploaded), signed out after the test."""

    async def made(gateway: str, tmp_path: pathlib.Path, mail: MailCatcher) -> AsyncIterator[Member]:
        async with signed_up_member(gateway, tmp_path / name, mail=mail) as member:
            yield member

    made.__doc__ = doc
    return pytest.fixture(name=name)(made)


reporter = member_fixture("reporter", "Another member, signed in.")
member = member_fixture("member", "A member who uploaded a photo (as `owner`, without the share link).")
held = member_fixture("held", "The account a moderator will hold.")
bystander = member_fixture("bystander", "Another account, never held.")


@pytest.fixture
async def moderator(gateway: str, tmp_path: pathlib.Path, internal_auth) -> AsyncIterator[Cumulo]:
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
def claim():
    """Builds a complete copyright notice, with any element changed: claim(work="")."""
    return copyright_claim


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
    async def held_in(running) -> set[uuid.UUID]:
        """The accounts held in a service's `legal_holds` table."""
        table = running.app.holds.table
        async with running.app.db.read() as conn:
            return set((await conn.execute(sa.select(table.c.account_id).where(table.c.held))).scalars())

    @staticmethod
    async def rows_in(running, account_id: str) -> list[sa.Row]:
        table = running.app.holds.table
        async with running.app.db.read() as conn:
            return list((await conn.execute(sa.select(table).where(table.c.account_id == uuid.UUID(account_id)))).all())

    async def reaches(self, running, account_id: str, *, held: bool, service: str) -> None:
        """Waits until the service's table shows the account held (or no longer held)."""
        account = uuid.UUID(account_id)

        async def seen() -> bool:
            return (account in await self.held_in(running)) == held

        what = f"{service} to learn that the hold was {'placed' if held else 'released'}"
        await eventually(seen, timeout=HOLD_WAIT, what=what)


@pytest.fixture
async def desk(moderator: Cumulo, internal_lifecycle) -> AsyncIterator[Desk]:
    """A hold a failing test leaves in place is released afterwards: no later test meets it."""
    made = Desk(moderator, internal_lifecycle)
    yield made
    for account_id in list(made.placed):
        await made.release(account_id, "test clean-up: a hold left by a failing test")


# --- the security tests' world (helpers.py) -------------------------------------------------------


@pytest.fixture(scope="module")
async def world(gateway: str, moderation, auth, mail, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One world for every security test: they only aim calls at it, which must all be
    refused (a test that changes it takes `fresh_world`). Built once, it saves each module
    a dozen registrations, complaints and decisions."""
    people = People(gateway, mail)
    try:
        yield await build_world(gateway, auth.target, people, tmp_path_factory.mktemp("moderation-world"))
    finally:
        await people.close()


@pytest.fixture
async def fresh_world(gateway: str, moderation, auth, people: People, tmp_path: pathlib.Path) -> World:
    """A world of the test's own, for the calls that go through and change it."""
    return await build_world(gateway, auth.target, people, tmp_path)


@pytest.fixture
def moderation_clock(moderation) -> Iterator[Any]:
    """The moderation service's clock (which judges token expiry); put back afterwards."""
    before = moderation.clock.offset
    yield moderation.clock
    moderation.clock.offset = before


@pytest.fixture
async def blob_away(moderation) -> AsyncIterator[Any]:
    """Inside `with blob_away:`, moderation's calls to blob go where nothing listens (refused
    at once, as a blob that is down); blob itself serves everyone else."""
    services = moderation.app.effects.services  # (the owners' notices ask through it too)
    real = services.blob
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}")

    class Away:
        def __enter__(self) -> None:
            services.blob = Remote("blob", blob_pb2_grpc.BlobInternalServiceStub(channel), deadline=2, bulk_deadline=2)

        def __exit__(self, *exc: object) -> None:
            services.blob = real

    try:
        yield Away()
    finally:
        services.blob = real
        await channel.close()


@dataclasses.dataclass
class Blocklisted:
    """Content a test stores, then puts on the blocklist (blob refuses uploads of listed content)."""

    content: bytes
    digest: str
    moderator: Cumulo
    listed: bool = False

    async def list(self) -> None:
        assert await self.moderator.moderation.block_hashes([self.digest], "known unlawful image (test)") == (1, 0)
        self.listed = True

    async def unlist(self, reason: str = "test over") -> None:
        await self.moderator.moderation.unblock_hash(self.digest, reason)
        self.listed = False


@pytest.fixture
async def blocklisted(moderator) -> AsyncIterator[Blocklisted]:
    content = secrets.token_bytes(30_000)
    made = Blocklisted(content, hashlib.sha256(content).hexdigest(), moderator)
    try:
        yield made
    finally:
        if made.listed:
            await made.unlist()
