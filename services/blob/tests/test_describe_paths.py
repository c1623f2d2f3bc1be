"""DescribePaths: where an account's files and folders are as their owner sees them, for the
messages other services send the owner (moderation's notices name a file by its path)."""

from __future__ import annotations

import uuid

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_devstack.testing import allowed_caller


@pytest.fixture
async def internal(blob):
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as internal:
        yield internal


async def paths(internal, account_id: str, *node_ids: str) -> dict[str, blob_pb2.NodePath]:
    answer = await internal.DescribePaths(blob_pb2.DescribePathsRequest(account_id=account_id, node_ids=list(node_ids)), timeout=10)
    return {p.node_id: p for p in answer.paths}


async def test_paths_follow_renames_moves_and_the_trash(alice, bob, internal):
    photos = await alice.mkdir("photos")
    year = await alice.mkdir("2026", photos.node_id)
    harbour = await alice.put("harbour.jpg", b"harbour at dawn", parent_id=year.node_id)
    top = await alice.put("notes.txt", b"top level")
    found = await paths(internal, alice.account_id, harbour.node_id, year.node_id, top.node_id)
    assert found[harbour.node_id].path == "/photos/2026/harbour.jpg"
    assert found[harbour.node_id].kind == blob_pb2.NODE_KIND_FILE and not found[harbour.node_id].in_trash
    assert found[year.node_id].path == "/photos/2026" and found[year.node_id].kind == blob_pb2.NODE_KIND_FOLDER
    assert found[top.node_id].path == "/notes.txt"

    # Renamed and moved: the path as it is now.
    await alice.rpc("Rename", blob_pb2.RenameRequest(node_id=year.node_id, new_name="2026-summer"))
    await alice.rpc("Move", blob_pb2.MoveRequest(node_id=photos.node_id, new_parent_id=(await alice.mkdir("archive")).node_id))
    found = await paths(internal, alice.account_id, harbour.node_id)
    assert found[harbour.node_id].path == "/archive/photos/2026-summer/harbour.jpg"

    # A folder above it in the trash: where it was, marked as in the trash.
    await alice.delete(photos.node_id)
    found = await paths(internal, alice.account_id, harbour.node_id)
    assert found[harbour.node_id].path == "/archive/photos/2026-summer/harbour.jpg" and found[harbour.node_id].in_trash

    # Gone, unknown or another account's: left out, as if there were nothing.
    assert await paths(internal, bob.account_id, harbour.node_id) == {}
    assert await paths(internal, alice.account_id, str(uuid.uuid4())) == {}
    assert await paths(internal, alice.account_id) == {}


async def test_describe_paths_checks_its_input(alice, internal):
    for request, field in (
        (blob_pb2.DescribePathsRequest(account_id="nope", node_ids=[str(uuid.uuid4())]), "account_id"),
        (blob_pb2.DescribePathsRequest(account_id=alice.account_id, node_ids=["not-an-id"]), "node_ids[0]"),
        (blob_pb2.DescribePathsRequest(account_id=alice.account_id, node_ids=[str(uuid.uuid4())] * 1001), "node_ids"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await internal.DescribePaths(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in (refused.value.details() or ""), refused.value


async def test_describe_files_answers_the_live_files_only(alice, bob, internal):
    """DescribeFiles walks the tree as DescribePaths does: files that are neither trashed nor
    under a trashed folder; folders, other accounts' and gone ones are left out."""
    kept = await alice.mkdir("kept")
    binned = await alice.mkdir("binned")
    live = await alice.put("live.txt", b"live", parent_id=kept.node_id)
    under_trash = await alice.put("under.txt", b"under a trashed folder", parent_id=binned.node_id)
    trashed = await alice.put("trashed.txt", b"trashed itself", parent_id=kept.node_id)
    await alice.delete(binned.node_id)
    await alice.delete(trashed.node_id)
    asked = [live.node_id, under_trash.node_id, trashed.node_id, kept.node_id, str(uuid.uuid4())]

    answer = await internal.DescribeFiles(blob_pb2.DescribeFilesRequest(account_id=alice.account_id, node_ids=asked), timeout=10)
    assert [(f.node_id, f.name, f.kind) for f in answer.files] == [(live.node_id, "live.txt", blob_pb2.NODE_KIND_FILE)]
    assert answer.files[0].parent_id == kept.node_id and answer.files[0].size == 4
    others = await internal.DescribeFiles(blob_pb2.DescribeFilesRequest(account_id=bob.account_id, node_ids=asked), timeout=10)
    assert list(others.files) == []
    # The same nodes' paths: the trashed ones too, marked.
    found = await paths(internal, alice.account_id, *asked)
    assert {n: (p.path, p.in_trash) for n, p in found.items()} == {
        live.node_id: ("/kept/live.txt", False), under_trash.node_id: ("/binned/under.txt", True),
        trashed.node_id: ("/kept/trashed.txt", True), kept.node_id: ("/kept", False),
    }
