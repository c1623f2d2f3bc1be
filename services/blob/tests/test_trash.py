"""The trash: deleting moves items there, restoring brings them back (to the root folder when
their own folder is gone), emptying it deletes for good — the stored bytes too, once no file
references them — and items older than the retention go by themselves."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import clock_moved, expect_error

from .conftest import MIB, until_dry


async def empty_trash(owner) -> int:
    return (await owner.rpc("EmptyTrash", blob_pb2.EmptyTrashRequest())).deleted


async def restore(owner, node_id: str) -> blob_pb2.Node:
    return (await owner.rpc("Restore", blob_pb2.RestoreRequest(node_id=node_id))).node


async def call(owner, method: str, request):
    if method == "Download":
        return await owner.download(request.node_id)
    return await owner.rpc(method, request)


# --- delete and restore -------------------------------------------------------------------


async def test_delete_moves_a_file_to_the_trash(alice):
    file = await alice.put("old.txt", b"old")
    await alice.delete(file.node_id)
    assert await alice.names() == []
    await expect_error(alice.stat(file.node_id), grpc.StatusCode.NOT_FOUND)
    trash = await alice.trash()
    assert [n.node_id for n in trash] == [file.node_id]
    assert trash[0].HasField("trashed_at") and trash[0].name == "old.txt"
    # Trashed bytes still count.
    assert (await alice.usage()).used == 3


async def test_deleting_a_folder_hides_everything_in_it(alice):
    folder = await alice.mkdir("project")
    sub = await alice.mkdir("src", folder.node_id)
    file = await alice.put("main.py", b"print()", parent_id=sub.node_id)
    await alice.delete(folder.node_id)
    assert await alice.names() == []
    for node_id in (sub.node_id, file.node_id):
        await expect_error(alice.stat(node_id), grpc.StatusCode.NOT_FOUND)
    await expect_error(alice.ls(sub.node_id), grpc.StatusCode.NOT_FOUND)
    # Only the folder itself is listed in the trash.
    assert [n.node_id for n in await alice.trash()] == [folder.node_id]


@pytest.mark.parametrize("method", ["Stat", "Download", "Rename", "Move", "Delete"])
async def test_items_inside_a_trashed_folder_are_out_of_reach(resident, workdir, method):
    """Inside a trashed folder an item is as gone as the folder: Stat says so, and so must
    every call that would change it (else it could be renamed, moved out or trashed apart
    while nothing lists it)."""
    folder = await resident.mkdir("binned", workdir)
    file = await resident.put("inside.txt", b"inside", parent_id=folder.node_id)
    await resident.delete(folder.node_id)
    requests = {
        "Stat": blob_pb2.StatRequest(node_id=file.node_id),
        "Download": blob_pb2.DownloadRequest(node_id=file.node_id),
        "Rename": blob_pb2.RenameRequest(node_id=file.node_id, new_name="renamed.txt"),
        "Move": blob_pb2.MoveRequest(node_id=file.node_id, new_parent_id=workdir),
        "Delete": blob_pb2.DeleteRequest(node_id=file.node_id),
    }
    from_trash = [n.node_id for n in await resident.trash()]
    await expect_error(call(resident, method, requests[method]), grpc.StatusCode.NOT_FOUND)
    assert await resident.names(workdir) == []
    assert [n.node_id for n in await resident.trash()] == from_trash
    back = await restore(resident, folder.node_id)
    assert back.node_id == folder.node_id
    assert await resident.names(folder.node_id) == ["inside.txt"]


async def test_deleting_twice_is_not_found(resident, workdir):
    folder = await resident.mkdir("once", workdir)
    await resident.delete(folder.node_id)
    await expect_error(resident.delete(folder.node_id), grpc.StatusCode.NOT_FOUND)


async def test_restore_puts_an_item_back_where_it_was(alice):
    folder = await alice.mkdir("docs")
    file = await alice.put("cv.pdf", b"cv", parent_id=folder.node_id)
    await alice.delete(file.node_id)
    back = await restore(alice, file.node_id)
    assert back.parent_id == folder.node_id and not back.HasField("trashed_at")
    assert await alice.names(folder.node_id) == ["cv.pdf"]
    assert await alice.trash() == []
    assert await alice.read(file.node_id) == b"cv"


async def test_restoring_a_folder_brings_back_its_contents(alice):
    folder = await alice.mkdir("album")
    file = await alice.put("pic.jpg", b"jpeg", parent_id=folder.node_id)
    await alice.delete(folder.node_id)
    await restore(alice, folder.node_id)
    assert await alice.names(folder.node_id) == ["pic.jpg"]
    assert await alice.read(file.node_id) == b"jpeg"


async def test_an_item_whose_folder_is_trashed_is_restored_into_the_root(alice):
    folder = await alice.mkdir("gone")
    file = await alice.put("survivor.txt", b"alive", parent_id=folder.node_id)
    await alice.delete(file.node_id)
    await alice.delete(folder.node_id)
    back = await restore(alice, file.node_id)
    assert back.parent_id == ""
    assert sorted(await alice.names()) == ["survivor.txt"]
    assert [n.node_id for n in await alice.trash()] == [folder.node_id]


async def test_an_item_whose_grandparent_is_trashed_is_restored_into_the_root(alice):
    top = await alice.mkdir("top")
    middle = await alice.mkdir("middle", top.node_id)
    file = await alice.put("deep.txt", b"deep", parent_id=middle.node_id)
    await alice.delete(file.node_id)
    await alice.delete(top.node_id)
    back = await restore(alice, file.node_id)
    assert back.parent_id == ""
    assert await alice.names() == ["deep.txt"]


async def test_restoring_onto_a_taken_name_clashes(alice):
    old = await alice.mkdir("drafts")
    await alice.delete(old.node_id)
    await alice.mkdir("drafts")
    await expect_error(restore(alice, old.node_id), grpc.StatusCode.ALREADY_EXISTS, reason="NAME_TAKEN")
    assert [n.node_id for n in await alice.trash()] == [old.node_id]


async def test_restoring_what_is_not_in_the_trash_is_not_found(resident, workdir):
    live = await resident.mkdir("live", workdir)
    await expect_error(restore(resident, live.node_id), grpc.StatusCode.NOT_FOUND)
    await expect_error(restore(resident, str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND)


async def test_the_trash_lists_page_by_page_newest_first(alice):
    ids = []
    for name in ("a", "b", "c", "d", "e"):
        folder = await alice.mkdir(name)
        await alice.delete(folder.node_id)
        ids.append(folder.node_id)
    seen: list[str] = []
    token = ""
    for _ in range(10):  # bounded: 3 pages expected
        page = await alice.rpc("ListTrash", blob_pb2.ListTrashRequest(page_size=2, page_token=token))
        assert len(page.nodes) <= 2
        seen += [n.node_id for n in page.nodes]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))


@pytest.mark.parametrize(
    "token",
    [
        "not a token!",
        base64.urlsafe_b64encode(json.dumps(["yesterday", "x"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", str(uuid.uuid4()), 3]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", "not-a-uuid"]).encode()).decode(),
    ],
    ids=["not-base64", "not-a-time", "one-value", "three-values", "not-a-node-id"],
)
async def test_a_trash_page_token_from_no_listing_is_refused(resident, token):
    await expect_error(
        resident.rpc("ListTrash", blob_pb2.ListTrashRequest(page_size=2, page_token=token)),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="page_token",
    )


async def test_a_trash_page_size_over_1000_is_refused(resident):
    await expect_error(
        resident.rpc("ListTrash", blob_pb2.ListTrashRequest(page_size=1001)), grpc.StatusCode.INVALID_ARGUMENT, field="page_size"
    )


# --- emptying -----------------------------------------------------------------------------


async def test_emptying_the_trash_deletes_items_and_their_bytes_for_good(alice, peek):
    payload = os.urandom(MIB + 1)
    file = await alice.put("big.bin", payload)
    key = await peek.content_key(alice.account_id, file.sha256)
    assert await peek.object_size(key) == len(payload)
    folder = await alice.mkdir("folder")
    await alice.put("inner.txt", b"inner", parent_id=folder.node_id)
    await alice.delete(file.node_id)
    await alice.delete(folder.node_id)
    assert await empty_trash(alice) == 3  # the file, the folder and what was in it
    assert await alice.trash() == []
    await expect_error(restore(alice, file.node_id), grpc.StatusCode.NOT_FOUND)
    assert await peek.object_size(key) is None
    assert await peek.content_key(alice.account_id, file.sha256) is None
    assert await peek.objects(alice.account_id) == []
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (0, 0)
    assert await empty_trash(alice) == 0


async def test_emptying_keeps_bytes_another_file_still_references(alice, peek):
    payload = os.urandom(5000)
    first = await alice.put("first.bin", payload)
    second = await alice.put("second.bin", payload)  # instant: the same content
    key = await peek.content_key(alice.account_id, first.sha256)
    await alice.delete(first.node_id)
    assert await empty_trash(alice) == 1
    assert await peek.object_size(key) == len(payload)
    assert await alice.read(second.node_id) == payload
    assert (await alice.usage()).used == len(payload)
    await alice.delete(second.node_id)
    assert await empty_trash(alice) == 1
    assert await peek.object_size(key) is None
    assert (await alice.usage()).used == 0


async def test_two_files_of_the_same_content_emptied_together_free_it_once(alice, peek):
    payload = os.urandom(3000)
    first = await alice.put("a.bin", payload)
    second = await alice.put("b.bin", payload)
    keep = await alice.put("keep.bin", b"unrelated")
    key = await peek.content_key(alice.account_id, first.sha256)
    await alice.delete(first.node_id)
    await alice.delete(second.node_id)
    assert await empty_trash(alice) == 2
    assert await peek.object_size(key) is None
    assert (await alice.usage()).used == len(b"unrelated")
    assert await alice.read(keep.node_id) == b"unrelated"


async def test_content_uploaded_again_after_emptying_is_stored_anew(alice, peek):
    payload = os.urandom(2000)
    first = await alice.put("x.bin", payload)
    await alice.delete(first.node_id)
    await empty_trash(alice)
    started = await alice.start("x.bin", payload)
    assert not started.HasField("file"), "the account no longer holds these bytes"
    done = await alice.send(started.upload_id, 0, payload)
    assert await alice.read(done.file.node_id) == payload


async def test_emptying_one_accounts_trash_leaves_anothers(alice, bob):
    mine = await alice.put("alice.txt", b"alice")
    await alice.delete(mine.node_id)
    theirs = await bob.put("bob.txt", b"bob")
    await bob.delete(theirs.node_id)
    assert await empty_trash(bob) == 1
    assert [n.node_id for n in await alice.trash()] == [mine.node_id]
    await restore(alice, mine.node_id)
    assert await alice.read(mine.node_id) == b"alice"


async def test_items_past_the_retention_are_purged_and_newer_ones_kept(alice, blob, blob_clock, peek):
    old = await alice.put("old.bin", os.urandom(1000))
    old_key = await peek.content_key(alice.account_id, old.sha256)
    newer = await alice.put("newer.bin", os.urandom(1000))
    await alice.delete(old.node_id)
    # 29 days on: still within the 30 days' retention.
    with clock_moved(blob_clock, dt.timedelta(days=29)):
        await until_dry(blob.app.trash.purge_old_trash)
    assert [n.node_id for n in await alice.trash()] == [old.node_id]
    # 31 days on; meanwhile the newer file was trashed "today".
    with clock_moved(blob_clock, dt.timedelta(days=31)):
        await blob.app.trash.delete(uuid.UUID(alice.account_id), newer.node_id)
        purged = await until_dry(blob.app.trash.purge_old_trash)
    assert purged >= 1
    assert [n.node_id for n in await alice.trash()] == [newer.node_id]
    assert await peek.object_size(old_key) is None
    assert (await alice.usage()).used == 1000
