"""Edge cases found in review: sizes that must agree, S3's part limit, crossing moves,
timestamps out of range, and trash emptying under a legal hold."""

import asyncio
import hashlib
import os
import uuid

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_sdk import CumuloRpcError


async def test_instant_upload_with_a_different_size_is_refused(user, tmp_path):
    client, _ = user
    path = tmp_path / "a.bin"
    data = os.urandom(5000)
    path.write_bytes(data)
    await client.files.upload(path)
    with pytest.raises(CumuloRpcError) as caught:
        await client.call(
            client.files.stub.StartUpload,
            blob_pb2.StartUploadRequest(name="b.bin", size=len(data) + 1, sha256=hashlib.sha256(data).hexdigest()),
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and caught.value.field == "size"


async def test_a_file_beyond_s3s_ten_thousand_parts_is_refused_at_the_start(user, blob):
    client, _ = user
    too_big = 10_000 * blob.app.settings.part_size + 1
    with pytest.raises(CumuloRpcError) as caught:
        await client.call(client.files.stub.StartUpload, blob_pb2.StartUploadRequest(name="huge", size=too_big, sha256="a" * 64))
    assert caught.value.field == "size"
    assert (await client.files.usage()).reserved == 0


async def test_crossing_folder_moves_never_make_a_cycle(user):
    client, _ = user
    a = await client.files.mkdir("", f"a-{uuid.uuid4().hex[:6]}")
    b = await client.files.mkdir("", f"b-{uuid.uuid4().hex[:6]}")
    results = await asyncio.gather(
        client.files.move(a.node_id, b.node_id), client.files.move(b.node_id, a.node_id), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, CumuloRpcError)]
    assert len(failures) == 1 and failures[0].reason == "MOVE_INTO_ITSELF"
    # Exactly one of them is still reachable from the root, holding the other.
    top = {n.node_id for n in await client.files.ls("")}
    assert len(top & {a.node_id, b.node_id}) == 1


async def test_link_expiry_out_of_range_names_the_field(user, tmp_path):
    client, _ = user
    path = tmp_path / "x.bin"
    path.write_bytes(b"x")
    node = await client.files.upload(path)
    request = blob_pb2.CreateShareLinkRequest(node_id=node.node_id)
    request.expires_at.seconds = 2**62
    with pytest.raises(CumuloRpcError) as caught:
        await client.call(client.files.stub.CreateShareLink, request)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and caught.value.field == "expires_at"
