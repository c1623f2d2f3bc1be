"""Uploads: the bytes that come back are the bytes that went in, whatever the chunking; the
start checks what it is told; content the account holds completes at once; and a name taken
meanwhile gets a free variant. (Failures and resumption: test_upload_failures.py; cancelling
and expiry: test_upload_expiry.py.)"""

from __future__ import annotations

import datetime as dt
import os
import pathlib

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import expect_error
from cumulo_sdk import CumuloRpcError

from .conftest import MIB, PART, sha

# --- bytes out equal bytes in -------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, PART, PART + 1, 3 * PART + 12345], ids=["empty", "one-byte", "one-part", "part+1", "several-parts"]
)
async def test_sdk_upload_and_download_give_back_the_same_bytes(alice, tmp_path: pathlib.Path, size):
    payload = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(payload)
    node = await alice.client.files.upload(source, content_type="application/octet-stream")
    assert (node.name, node.size, node.sha256) == ("source.bin", size, sha(payload))
    back = tmp_path / "back.bin"
    await alice.client.files.download(node.node_id, back)
    assert sha(back.read_bytes()) == sha(payload)
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (size, 0)


@pytest.mark.parametrize("chunk", [1, 4096, 777_777, 3 * MIB + 1], ids=["1-byte", "4-KiB", "odd", "over-3-MiB"])
async def test_chunks_of_any_size_assemble_the_same_file(resident, workdir, chunk):
    size = {1: 3000, 4096: PART + 5}.get(chunk, 2 * PART + 5)  # many tiny messages: keep it short
    payload = os.urandom(size)
    started = await resident.start("chunked.bin", payload, parent_id=workdir)
    done = await resident.send(started.upload_id, 0, payload, chunk=chunk)
    assert done.committed_offset == size
    assert done.file.sha256 == sha(payload)
    assert sha(await resident.read(done.file.node_id)) == sha(payload)


async def test_a_stream_whose_first_message_has_no_bytes_is_fine(resident, workdir):
    payload = os.urandom(5000)
    started = await resident.start("late-bytes.bin", payload, parent_id=workdir)
    done = await resident.send_messages(started.upload_id, 0, [b"", payload[:100], b"", payload[100:]])
    assert done.file.size == 5000
    assert await resident.read(done.file.node_id) == payload


async def test_upload_status_shows_the_completed_file(resident, workdir):
    payload = b"status"
    started = await resident.start("status.txt", payload, parent_id=workdir, content_type="text/plain")
    before = await resident.get_upload(started.upload_id)
    assert (before.size, before.committed_offset, before.HasField("file")) == (6, 0, False)
    assert before.expires_at.ToDatetime(dt.UTC) > dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
    done = await resident.send(started.upload_id, 0, payload)
    after = await resident.get_upload(started.upload_id)
    assert after.committed_offset == 6
    assert after.file.node_id == done.file.node_id
    assert after.file.content_type == "text/plain"
    # Sending to a completed upload again only tells the same story.
    again = await resident.send(started.upload_id, 6, b"")
    assert again.file.node_id == done.file.node_id
    assert await resident.names(workdir) == ["status.txt"]


async def test_content_type_defaults_to_octet_stream(resident, workdir):
    node = await resident.put("unknown", b"bytes", parent_id=workdir)
    assert node.content_type == "application/octet-stream"


@pytest.mark.parametrize("content_type", ["jpeg", "image/", "text plain", "a/b/c"])
async def test_a_content_type_that_is_not_a_media_type_is_refused(resident, workdir, content_type):
    await expect_error(
        resident.start("typed", b"x", parent_id=workdir, content_type=content_type),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="content_type",
    )


@pytest.mark.parametrize("size", [-1, 5 * 1024**4 + 1])
async def test_a_size_out_of_range_is_refused(resident, workdir, size):
    await expect_error(
        resident.start("sized", size=size, sha256="0" * 64, parent_id=workdir), grpc.StatusCode.INVALID_ARGUMENT, field="size"
    )


async def test_an_empty_file_must_declare_the_empty_digest(resident, workdir):
    await expect_error(
        resident.start("empty", size=0, sha256=sha(b"not empty"), parent_id=workdir),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason="SHA256_MISMATCH",
        field="sha256",
    )
    assert await resident.names(workdir) == []


async def test_a_malformed_digest_is_refused(resident, workdir):
    await expect_error(resident.start("x", b"x", sha256="xyz", parent_id=workdir), grpc.StatusCode.INVALID_ARGUMENT, field="sha256")


async def test_start_refuses_a_name_already_taken(resident, workdir):
    await resident.mkdir("taken.txt", workdir)
    await expect_error(
        resident.start("taken.txt", b"x", parent_id=workdir), grpc.StatusCode.ALREADY_EXISTS, reason="NAME_TAKEN", field="name"
    )


# --- instant uploads --------------------------------------------------------------------


async def test_content_the_account_holds_completes_at_once_without_quota(alice, tmp_path):
    payload = os.urandom(PART + 1000)
    first = await alice.put("original.bin", payload)
    folder = await alice.mkdir("elsewhere")
    started = await alice.start("copy.bin", payload, parent_id=folder.node_id)
    assert started.HasField("file")
    assert (started.file.name, started.file.parent_id, started.file.sha256) == ("copy.bin", folder.node_id, first.sha256)
    assert started.file.node_id != first.node_id
    status = await alice.get_upload(started.upload_id)
    assert status.file.node_id == started.file.node_id
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (len(payload), 0)
    assert sha(await alice.read(started.file.node_id)) == sha(payload)
    # The SDK skips sending too.
    source = tmp_path / "third.bin"
    source.write_bytes(payload)
    sent: list[int] = []
    third = await alice.client.files.upload(source, progress=lambda done, total: sent.append(done))
    assert third.sha256 == first.sha256 and third.name == "third.bin"
    assert sent == [len(payload)]
    assert (await alice.usage()).used == len(payload)


async def test_content_held_only_in_the_trash_still_completes_at_once(alice):
    payload = os.urandom(4096)
    first = await alice.put("binned.bin", payload)
    await alice.delete(first.node_id)
    started = await alice.start("again.bin", payload)
    assert started.HasField("file")
    assert await alice.read(started.file.node_id) == payload


async def test_the_same_content_in_another_account_is_not_instant(alice, bob, peek):
    payload = os.urandom(10_000)
    await alice.put("mine.bin", payload)
    started = await bob.start("also-mine.bin", payload)
    assert not started.HasField("file")
    assert started.committed_offset == 0
    assert (await bob.usage()).reserved == len(payload)
    # Knowing the digest is not enough: without the bytes nothing completes.
    status = await bob.send(started.upload_id, 0, b"")
    assert not status.HasField("file") and status.committed_offset == 0
    assert await bob.names() == []
    done = await bob.send(started.upload_id, 0, payload)
    assert done.file.sha256 == sha(payload)
    # Each account holds its own copy.
    alice_key = await peek.content_key(alice.account_id, sha(payload))
    bob_key = await peek.content_key(bob.account_id, sha(payload))
    assert alice_key and bob_key and alice_key != bob_key
    assert await peek.object_size(bob_key) == len(payload)

# --- names taken meanwhile ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,taken,expected",
    [
        ("report.txt", ["report.txt"], "report (1).txt"),
        ("report.txt", ["report.txt", "report (1).txt"], "report (2).txt"),
        ("notes", ["notes"], "notes (1)"),
        ("archive.tar.gz", ["archive.tar.gz"], "archive.tar (1).gz"),
        (".bashrc", [".bashrc"], ".bashrc (1)"),
    ],
)
async def test_a_name_taken_between_start_and_completion_gets_a_free_variant(resident, workdir, name, taken, expected):
    payload = os.urandom(64)
    started = await resident.start(name, payload, parent_id=workdir)
    for other in taken:
        await resident.mkdir(other, workdir)
    done = await resident.send(started.upload_id, 0, payload)
    assert done.file.name == expected
    assert await resident.read(done.file.node_id) == payload
    assert sorted(await resident.names(workdir)) == sorted([*taken, expected])


async def test_an_instant_upload_onto_a_name_taken_is_refused(resident, workdir):
    payload = os.urandom(64)
    await resident.put("a.bin", payload, parent_id=workdir)
    await expect_error(resident.start("a.bin", payload, parent_id=workdir), grpc.StatusCode.ALREADY_EXISTS, reason="NAME_TAKEN")


async def test_an_upload_whose_folder_was_deleted_for_good_meanwhile_ends_cleanly(alice, peek):
    """Either the file is stored somewhere reachable, or the upload is refused with a clear
    error and leaves nothing behind: no reservation, no stored object."""
    folder = await alice.mkdir("going away")
    payload = os.urandom(1000)
    started = await alice.start("orphan.bin", payload, parent_id=folder.node_id)
    await alice.delete(folder.node_id)
    await alice.rpc("EmptyTrash", blob_pb2.EmptyTrashRequest())
    try:
        done = await alice.send(started.upload_id, 0, payload)
    except CumuloRpcError as err:
        assert err.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION), err
        usage = await alice.usage()
        assert usage.reserved == 0, "the refused upload still holds its reservation"
        assert await peek.objects(alice.account_id) == []
    else:
        assert await alice.read(done.file.node_id) == payload
        assert done.file.node_id in [n.node_id for n in await alice.ls(done.file.parent_id)]
