"""Downloads: whole files and exact ranges, what cannot be downloaded (folders, blocked or
trashed files, ranges outside the file), and the SDK's refusal to keep corrupted bytes."""

from __future__ import annotations

import hashlib
import os

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_devstack.testing import allowed_caller, expect_error
from cumulo_sdk.files import IntegrityError

from .conftest import MIB

SIZE = 2 * MIB + MIB // 2 + 7  # spans several of the service's 1 MiB read chunks


@pytest.fixture(scope="module")
async def stored(resident) -> tuple[blob_pb2.Node, bytes]:
    """A file of `resident`'s, with the bytes it holds."""
    payload = os.urandom(SIZE)
    folder = await resident.mkdir("downloads")
    node = await resident.put("ranges.bin", payload, parent_id=folder.node_id, content_type="application/x-test")
    return node, payload


RANGES = {
    "whole": (0, 0),
    "first-byte": (0, 1),
    "head": (0, 1000),
    "middle": (12345, 67890),
    "across-read-chunks": (MIB - 3, MIB + 6),
    "tail-to-end": (SIZE - 10, 0),
    "last-byte": (SIZE - 1, 1),
    "length-past-the-end-is-clipped": (SIZE - 10, 1000),
    "at-the-end-is-empty": (SIZE, 0),
    "from-the-middle-to-end": (MIB, 0),
}


@pytest.mark.parametrize("offset,length", RANGES.values(), ids=RANGES.keys())
async def test_a_range_gives_exactly_those_bytes(resident, stored, offset, length):
    node, payload = stored
    first, data = await resident.download(node.node_id, offset, length)
    expected = payload[offset : offset + length] if length else payload[offset:]
    assert len(data) == len(expected)
    assert data == expected
    # The first message is the file itself, whatever the range.
    assert (first.node_id, first.size, first.sha256, first.content_type) == (node.node_id, SIZE, node.sha256, "application/x-test")


async def test_the_sdk_reads_a_range(resident, stored):
    node, payload = stored
    assert await resident.client.files.read_range(node.node_id, 100, 200) == payload[100:300]


@pytest.mark.parametrize("offset,length,field", [(SIZE + 1, 0, "offset"), (-1, 0, "offset"), (0, -1, "length")])
async def test_a_range_outside_the_file_is_refused(resident, stored, offset, length, field):
    node, _ = stored
    await expect_error(resident.download(node.node_id, offset, length), grpc.StatusCode.INVALID_ARGUMENT, field=field)


async def test_an_empty_file_downloads_as_no_bytes(resident, workdir):
    node = await resident.put("empty", b"", parent_id=workdir)
    first, data = await resident.download(node.node_id)
    assert data == b"" and first.size == 0
    assert first.sha256 == hashlib.sha256(b"").hexdigest()


async def test_a_folder_cannot_be_downloaded(resident, workdir):
    await expect_error(
        resident.download(workdir), grpc.StatusCode.FAILED_PRECONDITION, reason="NOT_A_FILE", field="node_id"
    )


async def test_a_blocked_file_cannot_be_downloaded(resident, workdir, peek):
    node = await resident.put("blocked.bin", b"forbidden bytes", parent_id=workdir)
    await peek.block(node.node_id)
    await expect_error(resident.download(node.node_id), grpc.StatusCode.PERMISSION_DENIED, reason="CONTENT_BLOCKED")
    await expect_error(resident.download(node.node_id, 1, 3), grpc.StatusCode.PERMISSION_DENIED, reason="CONTENT_BLOCKED")
    assert (await resident.stat(node.node_id)).blocked is True


async def test_a_blocked_files_twin_cannot_be_downloaded_either(resident, workdir, blob):
    """A block holds the file's content, not one file record: its twin (the same bytes under
    another name, stored instantly) is blocked with it (test_content_blocks.py has the rest)."""
    payload = os.urandom(100)
    blocked = await resident.put("one.bin", payload, parent_id=workdir)
    twin = await resident.put("two.bin", payload, parent_id=workdir)
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as internal:
        await internal.BlockFile(
            blob_pb2.BlockFileRequest(account_id=resident.account_id, node_id=blocked.node_id, reason="complaint", actor="moderator-1")
        )
    await expect_error(resident.download(twin.node_id), grpc.StatusCode.PERMISSION_DENIED, reason="CONTENT_BLOCKED")


async def test_a_trashed_file_cannot_be_downloaded(resident, workdir):
    loose = await resident.put("trashed.bin", b"in the bin", parent_id=workdir)
    folder = await resident.mkdir("binned folder", workdir)
    inside = await resident.put("inside.bin", b"inside the bin", parent_id=folder.node_id)
    await resident.delete(loose.node_id)
    await resident.delete(folder.node_id)
    for node_id in (loose.node_id, inside.node_id):
        await expect_error(resident.download(node_id), grpc.StatusCode.NOT_FOUND)


async def test_the_sdk_download_writes_the_file_when_the_bytes_are_right(resident, workdir, tmp_path):
    payload = os.urandom(MIB + 3)
    node = await resident.put("fine.bin", payload, parent_id=workdir)
    dest = tmp_path / "fine.bin"
    seen: list[tuple[int, int]] = []
    got = await resident.client.files.download(node.node_id, dest, progress=lambda done, total: seen.append((done, total)))
    assert got.node_id == node.node_id
    assert dest.read_bytes() == payload
    assert seen[-1] == (len(payload), len(payload))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fine.bin"]


async def test_the_sdk_download_refuses_corrupted_bytes_and_leaves_no_file(alice, peek, tmp_path):
    payload = os.urandom(MIB + 17)
    node = await alice.put("precious.bin", payload)
    key = await peek.content_key(alice.account_id, node.sha256)
    corrupted = bytearray(payload)
    corrupted[MIB] ^= 0xFF  # one flipped byte, same length
    await peek.storage.put(key, bytes(corrupted))
    dest = tmp_path / "precious.bin"
    with pytest.raises(IntegrityError):
        await alice.client.files.download(node.node_id, dest)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its partial scratch copy


async def test_the_sdk_download_of_a_missing_file_raises_and_leaves_no_file(alice, tmp_path):
    dest = tmp_path / "nothing.bin"
    await expect_error(alice.client.files.download("00000000-0000-0000-0000-000000000000", dest), grpc.StatusCode.NOT_FOUND)
    assert list(tmp_path.iterdir()) == []
