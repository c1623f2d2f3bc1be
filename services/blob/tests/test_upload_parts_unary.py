"""PutUploadPart: an upload without a stream (what browsers can send by grpc-web or JSON), with
the stream's rules: the same offsets, SHA-256 check and quota; a piece sent again is harmless."""

import hashlib
import os

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import expect_error
from cumulo_sdk import CumuloRpcError


async def put(owner, upload_id: str, offset: int, data: bytes) -> blob_pb2.PutUploadPartResponse:
    return await owner.rpc("PutUploadPart", blob_pb2.PutUploadPartRequest(upload_id=upload_id, offset=offset, data=data))


async def test_a_file_goes_up_in_whole_parts_and_a_repeated_part_is_harmless(alice):
    started = await alice.start("unary.bin", b"", size=1, sha256="00" * 32)  # learn the part size
    part = started.part_size
    assert part > 0
    await alice.cancel(started.upload_id)
    data = os.urandom(part + 1000)
    started = await alice.start("unary.bin", data)
    first = await put(alice, started.upload_id, 0, data[:part])
    assert first.committed_offset == part and not first.HasField("file")
    again = await put(alice, started.upload_id, 0, data[:part])  # a retry after a lost answer
    assert again.committed_offset == part
    done = await put(alice, started.upload_id, part, data[part:])
    assert done.HasField("file") and done.file.sha256 == hashlib.sha256(data).hexdigest()
    assert await alice.read(done.file.node_id) == data


async def test_bytes_short_of_a_part_are_not_kept_and_the_answer_says_where_to_go_on(alice):
    data = os.urandom(64 * 1024)
    started = await alice.start("short.bin", data + b"x" * (64 * 1024 * 1024))  # a big file: 64 KiB is not its end
    answer = await put(alice, started.upload_id, 0, data)
    assert answer.committed_offset == 0
    await alice.cancel(started.upload_id)


async def test_a_wrong_offset_is_refused_naming_it(alice):
    data = os.urandom(1000)
    started = await alice.start("offset.bin", data)
    with pytest.raises(CumuloRpcError) as caught:
        await put(alice, started.upload_id, 500, data[500:])
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "OFFSET_MISMATCH" and caught.value.field == "offset"
    await expect_error(put(alice, started.upload_id, -1, data), grpc.StatusCode.INVALID_ARGUMENT, field="offset")


async def test_bytes_that_do_not_match_the_sha256_store_nothing(alice):
    data = os.urandom(1000)
    started = await alice.start("liar.bin", data, sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(CumuloRpcError) as caught:
        await put(alice, started.upload_id, 0, data)
    assert caught.value.reason == "SHA256_MISMATCH"
    assert not [n for n in await alice.ls() if n.name == "liar.bin"]


async def test_someone_elses_upload_is_not_found(alice, bob):
    data = os.urandom(1000)
    started = await alice.start("mine.bin", data)
    with pytest.raises(CumuloRpcError) as caught:
        await put(bob, started.upload_id, 0, data)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    done = await put(alice, started.upload_id, 0, data)  # untouched by the stranger
    assert done.HasField("file")
