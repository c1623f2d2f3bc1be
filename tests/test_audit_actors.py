"""Audit actors come from the authenticated caller: an internal call's `actor` field is only
what the caller says of the person behind it, recorded after the service identity its
certificate proved ("operator: ann", "moderation: moderator …"). A caller cannot pass itself
off as another: the same words from another identity are recorded under that identity, and an
empty actor is refused naming the field."""

from __future__ import annotations

import os
import uuid

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_auth.adapters.tables import status_changes
from cumulo_blob.adapters.tables import content_blocks
from cumulo_devstack.testing import eventually, open_channel
from cumulo_lifecycle.adapters.tables import transitions
from cumulo_platform.identity import OPERATOR

MODERATION = "moderation"


async def status_actors(auth, account_id: str) -> list[str]:
    async with auth.app.db.read() as conn:
        rows = await conn.execute(
            sa.select(status_changes.c.actor).where(status_changes.c.account_id == uuid.UUID(account_id)).order_by(status_changes.c.changed_at)
        )
        return list(rows.scalars())


async def test_a_suspension_is_recorded_as_the_calling_service_and_the_person_it_names(people, auth):
    person = await people.new("phone")
    async with open_channel(auth.target, as_=MODERATION) as channel:
        await auth_pb2_grpc.AuthInternalServiceStub(channel).SetAccountStatus(
            auth_pb2.SetAccountStatusRequest(
                account_id=person.account_id, status=auth_pb2.ACCOUNT_STATUS_SUSPENDED, reason="spam", actor="operator: someone else"
            ),
            timeout=10,
        )
        await auth_pb2_grpc.AuthInternalServiceStub(channel).SetAccountStatus(
            auth_pb2.SetAccountStatusRequest(account_id=person.account_id, status=auth_pb2.ACCOUNT_STATUS_ACTIVE, reason="lifted", actor="moderator ann"),
            timeout=10,
        )
        # Without a name the call is refused, naming the field.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await auth_pb2_grpc.AuthInternalServiceStub(channel).SetAccountStatus(
                auth_pb2.SetAccountStatusRequest(account_id=person.account_id, status=auth_pb2.ACCOUNT_STATUS_ACTIVE, reason="x", actor=" "),
                timeout=10,
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "actor" in refused.value.details()
    # A caller that claims to be the operator is still recorded as the service it proved it is.
    assert await status_actors(auth, person.account_id) == ["moderation: operator: someone else", "moderation: moderator ann"]


async def test_a_legal_hold_is_recorded_under_the_callers_identity(people, lifecycle):
    person = await people.new("phone")

    async def hold_placed() -> bool:
        async with open_channel(lifecycle.target, as_=OPERATOR) as channel:
            try:
                await lifecycle_pb2_grpc.LifecycleInternalServiceStub(channel).SetLegalHold(
                    lifecycle_pb2.SetLegalHoldRequest(account_id=person.account_id, held=True, reason="court order 7", actor="bo"),
                    timeout=10,
                )
            except grpc.aio.AioRpcError as err:  # the lifecycle has not heard of the account yet
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                return False
        return True

    await eventually(hold_placed, timeout=30, what="the lifecycle to know the account")
    async with lifecycle.app.db.read() as conn:
        actors = (
            await conn.execute(sa.select(transitions.c.actor).where(transitions.c.account_id == uuid.UUID(person.account_id), transitions.c.actor != ""))
        ).scalars().all()
    assert list(actors) == ["operator: bo"]


async def test_a_blocked_file_is_recorded_as_blocked_by_the_calling_service(people, blob, tmp_path):
    """Blob's internal methods too: the content block records moderation (proved), then the
    moderator it names."""
    person = await people.new("phone")
    path = tmp_path / "photo.jpg"
    path.write_bytes(os.urandom(2048))
    node = await person.client.files.upload(path)
    async with open_channel(blob.target, as_=MODERATION) as channel:
        await blob_pb2_grpc.BlobInternalServiceStub(channel).BlockFile(
            blob_pb2.BlockFileRequest(account_id=person.account_id, node_id=node.node_id, reason="case 12", actor="moderator 1f2e"),
            timeout=10,
        )
    async with blob.app.db.read() as conn:
        actors = (await conn.execute(sa.select(content_blocks.c.actor).where(content_blocks.c.account_id == uuid.UUID(person.account_id)))).scalars().all()
    assert list(actors) == ["moderation: moderator 1f2e"]
