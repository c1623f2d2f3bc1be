"""Fixtures of the moderation tests, against the session's real servers and services.

- `owner`: a member who uploaded a photo (`owner.file_id`) and shares it by a link.
- `moderator`: an account given the "moderator" role through auth's internal API, logged in
  again so that its token carries the role.
- `reporter`: another member, signed in.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import AsyncIterator

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import PASSWORD, Member, new_member
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore


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
