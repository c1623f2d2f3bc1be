"""Internal enforcement: blocking, legal holds that stop every deletion, and the purge.

Holds are placed as the product places them: the lifecycle (SetLegalHold on its internal API)
announces `account.hold_changed`, and the blob service keeps it in its `legal_holds` table."""

import os
import uuid

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_blob.adapters.tables import nodes
from cumulo_devstack.testing import allowed_caller, eventually, read_stream
from cumulo_platform.event_types import event_filter
from cumulo_sdk import CumuloRpcError

HOLD_WAIT = 30.0  # seconds for a hold to go lifecycle outbox -> JetStream -> blob's consumer


@pytest.fixture
async def internal(blob):
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as internal:
        yield internal


class Legal:
    """Places and releases holds through the lifecycle and waits until the blob service knows."""

    def __init__(self, lifecycle: lifecycle_pb2_grpc.LifecycleInternalServiceStub, blob) -> None:
        self.lifecycle = lifecycle
        self.blob = blob

    async def hold(self, account_id: str, *, held: bool, reason: str) -> None:
        request = lifecycle_pb2.SetLegalHoldRequest(account_id=account_id, held=held, reason=reason, actor="legal")

        async def placed() -> bool:
            try:
                await self.lifecycle.SetLegalHold(request, timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:  # the lifecycle has not learnt of the new account yet
                    return False
                raise
            return True

        await eventually(placed, what="the lifecycle to know the account")

        async def learnt() -> bool:
            return await self.blob.app.holds.held(uuid.UUID(account_id)) == held

        await eventually(learnt, timeout=HOLD_WAIT, what=f"the blob service to learn the hold ({held})")


@pytest.fixture
async def legal(lifecycle, blob):
    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as internal:
        yield Legal(internal, blob)


async def _objects(blob, account_id: str) -> list[str]:
    storage = blob.app.storage
    listed = await storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=f"accounts/{account_id}/")
    return [o["Key"] for o in listed.get("Contents", [])]


async def _upload(client, tmp_path, name: str, size: int = 64 * 1024):
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return await client.files.upload(path)


async def test_blocked_file_cannot_be_downloaded_until_unblocked(user, internal, tmp_path):
    client, _ = user
    account_id = client.store.tokens.account_id
    node = await _upload(client, tmp_path, "flagged.jpg")
    blocked = await internal.BlockFile(
        blob_pb2.BlockFileRequest(account_id=account_id, node_id=node.node_id, reason="complaint 17", actor="moderator-1")
    )
    assert blocked.file.blocked
    with pytest.raises(CumuloRpcError) as caught:
        await client.files.download(node.node_id, tmp_path / "back")
    assert caught.value.reason == "CONTENT_BLOCKED"
    assert not (tmp_path / "back").exists()
    await internal.UnblockFile(
        blob_pb2.UnblockFileRequest(account_id=account_id, node_id=node.node_id, reason="counter-notice", actor="moderator-1")
    )
    await client.files.download(node.node_id, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == (tmp_path / "flagged.jpg").read_bytes()


async def test_block_needs_a_reason_and_the_owners_file(user, internal, tmp_path):
    client, _ = user
    node = await _upload(client, tmp_path, "a.bin")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await internal.BlockFile(blob_pb2.BlockFileRequest(account_id=client.store.tokens.account_id, node_id=node.node_id, actor="m"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await internal.BlockFile(
            blob_pb2.BlockFileRequest(account_id=str(uuid.uuid4()), node_id=node.node_id, reason="r", actor="m")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_legal_hold_keeps_stored_objects_through_trash_and_refuses_purge(user, internal, legal, blob, tmp_path):
    client, _ = user
    account_id = client.store.tokens.account_id
    node = await _upload(client, tmp_path, "evidence.bin")
    assert len(await _objects(blob, account_id)) == 1
    await legal.hold(account_id, held=True, reason="case 4")
    await client.files.delete(node.node_id)  # to the trash: still possible
    with pytest.raises(CumuloRpcError) as emptying:
        await client.files.empty_trash()
    assert emptying.value.reason == "LEGAL_HOLD"
    assert [n.node_id for n in await client.files.trash()] == [node.node_id]
    await blob.app.trash.purge_old_trash()  # retention skips held accounts: the trash stays
    assert [n.node_id for n in await client.files.trash()] == [node.node_id]
    assert len(await _objects(blob, account_id)) == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await internal.PurgeAccount(blob_pb2.PurgeAccountRequest(account_id=account_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "LEGAL_HOLD" in str(caught.value.trailing_metadata())
    await legal.hold(account_id, held=False, reason="case closed")
    await client.files.empty_trash()
    assert await _objects(blob, account_id) == []


async def test_purge_leaves_nothing_and_can_run_again(user, internal, blob, infra, tmp_path):
    client, _ = user
    account_id = client.store.tokens.account_id
    folder = await client.files.mkdir("", "albums")
    inside = tmp_path / "inside.jpg"
    inside.write_bytes(os.urandom(1000))
    await client.files.upload(inside, parent_id=folder.node_id)
    await _upload(client, tmp_path, "top.bin")
    trashed = await _upload(client, tmp_path, "old.bin")
    await client.files.delete(trashed.node_id)
    assert len(await _objects(blob, account_id)) == 3
    first = await internal.PurgeAccount(blob_pb2.PurgeAccountRequest(account_id=account_id))
    assert first.nodes_deleted >= 4 and first.objects_deleted == 3
    assert await _objects(blob, account_id) == []
    async with blob.app.db.read() as conn:
        left = (await conn.execute(sa.select(sa.func.count()).select_from(nodes).where(nodes.c.account_id == uuid.UUID(account_id)))).scalar_one()
    assert left == 0
    # After the purge the account's calls fail.
    with pytest.raises(CumuloRpcError) as caught:
        await client.files.usage()
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION and caught.value.reason == "ACCOUNT_DELETED"
    again = await internal.PurgeAccount(blob_pb2.PurgeAccountRequest(account_id=account_id))
    assert again.nodes_deleted == 0 and again.objects_deleted == 0
    events = await read_stream(infra.nats.url, event_filter("purge.completed"), lambda e: e.account_id == account_id, at_least=2)
    assert len(events) >= 2
