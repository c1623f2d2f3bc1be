"""Folders: creating, listing page by page, stat, renaming and moving; ids that name nothing,
or are not ids at all."""

from __future__ import annotations

import base64
import json
import uuid

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import expect_error


def token_of(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


# Page tokens no page ever gave out.
BAD_TOKENS = {
    "not-base64": "not a token!",
    "not-json": base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
    "json-object": token_of({"after": "x"}),
    "one-value": token_of([True]),
    "three-values": token_of([True, "a", "b"]),
    "empty-list": token_of([]),
    "nul-in-name": token_of([True, "a\x00"]),
}


async def list_page(owner, folder_id: str, page_size: int, page_token: str = "") -> blob_pb2.ListFolderResponse:
    return await owner.rpc("ListFolder", blob_pb2.ListFolderRequest(folder_id=folder_id, page_size=page_size, page_token=page_token))


# --- create, list, stat ------------------------------------------------------------------


async def test_nested_folders_are_created_and_listed_where_they_belong(alice):
    a = await alice.mkdir("a")
    b = await alice.mkdir("b", a.node_id)
    c = await alice.mkdir("c", b.node_id)
    assert (a.parent_id, b.parent_id, c.parent_id) == ("", a.node_id, b.node_id)
    assert all(n.kind == blob_pb2.NODE_KIND_FOLDER for n in (a, b, c))
    assert await alice.names() == ["a"]
    assert await alice.names(a.node_id) == ["b"]
    assert await alice.names(b.node_id) == ["c"]
    assert await alice.names(c.node_id) == []


async def test_stat_gives_the_node_as_created(alice):
    parent = await alice.mkdir("docs")
    file = await alice.put("cv.pdf", b"%PDF-1.7 ...", parent_id=parent.node_id, content_type="application/pdf")
    seen = await alice.stat(file.node_id)
    assert seen.node_id == file.node_id
    assert seen.parent_id == parent.node_id
    assert seen.name == "cv.pdf"
    assert seen.kind == blob_pb2.NODE_KIND_FILE
    assert seen.size == len(b"%PDF-1.7 ...")
    assert seen.content_type == "application/pdf"
    assert not seen.HasField("trashed_at")
    assert seen.created_at.seconds > 0 and seen.modified_at.seconds > 0
    folder = await alice.stat(parent.node_id)
    assert (folder.kind, folder.name, folder.size, folder.sha256) == (blob_pb2.NODE_KIND_FOLDER, "docs", 0, "")


async def test_listing_walks_every_page_folders_first_then_by_name(alice):
    here = (await alice.mkdir("here")).node_id
    for name in ("gamma.txt", "alpha.txt", "beta.txt"):
        await alice.put(name, name.encode(), parent_id=here)
    for name in ("zeta", "yak"):
        await alice.mkdir(name, here)
    pages: list[list[str]] = []
    token = ""
    for _ in range(10):  # bounded: 3 pages expected
        page = await list_page(alice, here, 2, token)
        pages.append([n.name for n in page.nodes])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["yak", "zeta"], ["alpha.txt", "beta.txt"], ["gamma.txt"]]


async def test_paging_one_by_one_agrees_with_one_page_for_awkward_names(resident, workdir):
    """Each page goes on exactly after the previous one, whatever the names' collation."""
    awkward = ["a b", "a-b", "ab", "AB", "Ab", "a_b", "a.b", "a", "b", "B", "é", "e", "f", "É", "10", "9", "_", "~x"]
    for name in awkward:
        await resident.mkdir(name, workdir)
    for name in ("a b.txt", "A.txt", "a.txt"):
        await resident.put(name, name.encode(), parent_id=workdir)
    whole = [n.name for n in (await list_page(resident, workdir, 1000)).nodes]
    assert sorted(whole) == sorted([*awkward, "a b.txt", "A.txt", "a.txt"])
    walked: list[str] = []
    token = ""
    for _ in range(len(whole) + 2):
        page = await list_page(resident, workdir, 1, token)
        walked += [n.name for n in page.nodes]
        token = page.next_page_token
        if not token:
            break
    assert walked == whole


async def test_a_page_that_ends_exactly_at_the_last_item_has_no_next_token(resident, workdir):
    for name in ("a", "b"):
        await resident.mkdir(name, workdir)
    page = await list_page(resident, workdir, 2)
    assert [n.name for n in page.nodes] == ["a", "b"]
    assert page.next_page_token == ""


async def test_page_size_zero_means_the_default_of_100(resident, workdir):
    for i in range(101):
        await resident.mkdir(f"f{i:03d}", workdir)
    page = await list_page(resident, workdir, 0)
    assert len(page.nodes) == 100
    rest = await list_page(resident, workdir, 0, page.next_page_token)
    assert [n.name for n in rest.nodes] == ["f100"]
    assert rest.next_page_token == ""


async def test_an_empty_folder_lists_nothing(resident, workdir):
    page = await list_page(resident, workdir, 10)
    assert list(page.nodes) == [] and page.next_page_token == ""


@pytest.mark.parametrize("page_size", [1001, -1, 2**31 - 1])
async def test_a_page_size_out_of_range_is_refused(resident, page_size):
    await expect_error(list_page(resident, "", page_size), grpc.StatusCode.INVALID_ARGUMENT, field="page_size")


async def test_a_page_size_of_1000_is_accepted(resident, workdir):
    assert (await list_page(resident, workdir, 1000)).next_page_token == ""


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_a_page_token_from_no_listing_is_refused(resident, workdir, token):
    await expect_error(list_page(resident, workdir, 2, token), grpc.StatusCode.INVALID_ARGUMENT, field="page_token")


async def test_creating_inside_a_file_is_refused(resident, workdir):
    file = await resident.put("plain.txt", b"x", parent_id=workdir)
    await expect_error(
        resident.mkdir("inner", file.node_id), grpc.StatusCode.FAILED_PRECONDITION, reason="NOT_A_FOLDER", field="parent_id"
    )
    await expect_error(
        resident.start("inner.txt", b"y", parent_id=file.node_id),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="NOT_A_FOLDER",
        field="parent_id",
    )


async def test_listing_a_file_as_a_folder_is_refused(resident, workdir):
    file = await resident.put("not-a-folder.txt", b"x", parent_id=workdir)
    await expect_error(
        list_page(resident, file.node_id, 10), grpc.StatusCode.FAILED_PRECONDITION, reason="NOT_A_FOLDER", field="folder_id"
    )


# --- rename -------------------------------------------------------------------------------


async def test_rename_changes_the_name_and_keeps_the_place(resident, workdir):
    folder = await resident.mkdir("old name", workdir)
    inner = await resident.put("inside.txt", b"inside", parent_id=folder.node_id)
    renamed = (await resident.rpc("Rename", blob_pb2.RenameRequest(node_id=folder.node_id, new_name="new name"))).node
    assert (renamed.node_id, renamed.name, renamed.parent_id) == (folder.node_id, "new name", workdir)
    assert await resident.names(workdir) == ["new name"]
    assert await resident.names(folder.node_id) == ["inside.txt"]
    file = (await resident.rpc("Rename", blob_pb2.RenameRequest(node_id=inner.node_id, new_name="renamed.txt"))).node
    assert (file.name, file.sha256, file.size) == ("renamed.txt", inner.sha256, inner.size)
    assert await resident.read(inner.node_id) == b"inside"


# --- move -------------------------------------------------------------------------------


async def test_move_puts_a_file_in_another_folder_and_back_to_the_root(alice):
    folder = await alice.mkdir("target")
    file = await alice.put("moving.txt", b"moving")
    moved = (await alice.rpc("Move", blob_pb2.MoveRequest(node_id=file.node_id, new_parent_id=folder.node_id))).node
    assert moved.parent_id == folder.node_id
    assert await alice.names() == ["target"]
    assert await alice.names(folder.node_id) == ["moving.txt"]
    back = (await alice.rpc("Move", blob_pb2.MoveRequest(node_id=file.node_id, new_parent_id=""))).node
    assert back.parent_id == ""
    assert await alice.names() == ["target", "moving.txt"]


async def test_move_takes_a_folders_contents_along(resident, workdir):
    a = await resident.mkdir("a", workdir)
    b = await resident.mkdir("b", workdir)
    file = await resident.put("deep.txt", b"deep", parent_id=a.node_id)
    await resident.rpc("Move", blob_pb2.MoveRequest(node_id=a.node_id, new_parent_id=b.node_id))
    assert await resident.names(workdir) == ["b"]
    assert await resident.names(b.node_id) == ["a"]
    assert (await resident.stat(file.node_id)).parent_id == a.node_id
    assert await resident.read(file.node_id) == b"deep"


@pytest.mark.parametrize("depth", [0, 1, 3], ids=["itself", "child", "great-grandchild"])
async def test_a_folder_cannot_move_into_itself_or_its_descendants(resident, workdir, depth):
    top = await resident.mkdir("top", workdir)
    target = top
    for level in range(depth):
        target = await resident.mkdir(f"level{level}", target.node_id)
    await expect_error(
        resident.rpc("Move", blob_pb2.MoveRequest(node_id=top.node_id, new_parent_id=target.node_id)),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="MOVE_INTO_ITSELF",
        field="new_parent_id",
    )
    assert (await resident.stat(top.node_id)).parent_id == workdir


async def test_a_folder_can_move_into_a_sibling_of_the_same_prefix(resident, workdir):
    a = await resident.mkdir("a", workdir)
    sibling = await resident.mkdir("a2", workdir)
    inner = await resident.mkdir("inner", sibling.node_id)
    moved = (await resident.rpc("Move", blob_pb2.MoveRequest(node_id=a.node_id, new_parent_id=inner.node_id))).node
    assert moved.parent_id == inner.node_id


async def test_moving_into_a_file_is_refused(resident, workdir):
    file = await resident.put("a-file.txt", b"file", parent_id=workdir)
    folder = await resident.mkdir("folder", workdir)
    await expect_error(
        resident.rpc("Move", blob_pb2.MoveRequest(node_id=folder.node_id, new_parent_id=file.node_id)),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="NOT_A_FOLDER",
        field="new_parent_id",
    )
    assert (await resident.stat(folder.node_id)).parent_id == workdir


async def test_moving_onto_a_taken_name_clashes(resident, workdir):
    a = await resident.mkdir("a", workdir)
    await resident.mkdir("same", a.node_id)
    other = await resident.mkdir("same", workdir)
    await expect_error(
        resident.rpc("Move", blob_pb2.MoveRequest(node_id=other.node_id, new_parent_id=a.node_id)),
        grpc.StatusCode.ALREADY_EXISTS,
        reason="NAME_TAKEN",
    )
    assert (await resident.stat(other.node_id)).parent_id == workdir


async def test_moving_into_a_trashed_folder_is_refused(resident, workdir):
    bin_ = await resident.mkdir("binned", workdir)
    file = await resident.put("stay.txt", b"stay", parent_id=workdir)
    await resident.delete(bin_.node_id)
    await expect_error(
        resident.rpc("Move", blob_pb2.MoveRequest(node_id=file.node_id, new_parent_id=bin_.node_id)),
        grpc.StatusCode.NOT_FOUND,
        field="new_parent_id",
    )
    await expect_error(
        resident.rpc("Move", blob_pb2.MoveRequest(node_id=file.node_id, new_parent_id=str(uuid.uuid4()))),
        grpc.StatusCode.NOT_FOUND,
        field="new_parent_id",
    )
    assert (await resident.stat(file.node_id)).parent_id == workdir


async def test_creating_in_a_trashed_folder_is_refused(resident, workdir):
    outer = await resident.mkdir("outer", workdir)
    inner = await resident.mkdir("inner", outer.node_id)
    await resident.delete(outer.node_id)
    for parent in (outer.node_id, inner.node_id):  # trashed, or inside a trashed one
        await expect_error(resident.mkdir("new", parent), grpc.StatusCode.NOT_FOUND, field="parent_id")
        await expect_error(resident.start("new.txt", b"x", parent_id=parent), grpc.StatusCode.NOT_FOUND, field="parent_id")
    usage = await resident.usage()
    assert usage.reserved == 0


# --- ids that name nothing ----------------------------------------------------------------

UNKNOWN = str(uuid.uuid4())


def node_calls(node_id: str) -> dict[str, tuple[str, object, str]]:
    """method -> (method, request with `node_id` where a node id goes, the field's name)."""
    return {
        "CreateFolder": ("CreateFolder", blob_pb2.CreateFolderRequest(parent_id=node_id, name="x"), "parent_id"),
        "ListFolder": ("ListFolder", blob_pb2.ListFolderRequest(folder_id=node_id), "folder_id"),
        "Stat": ("Stat", blob_pb2.StatRequest(node_id=node_id), "node_id"),
        "Rename": ("Rename", blob_pb2.RenameRequest(node_id=node_id, new_name="x"), "node_id"),
        "Move": ("Move", blob_pb2.MoveRequest(node_id=node_id), "node_id"),
        "Move-to": ("Move", blob_pb2.MoveRequest(node_id=UNKNOWN, new_parent_id=node_id), "new_parent_id"),
        "Delete": ("Delete", blob_pb2.DeleteRequest(node_id=node_id), "node_id"),
        "Restore": ("Restore", blob_pb2.RestoreRequest(node_id=node_id), "node_id"),
        "StartUpload": (
            "StartUpload",
            blob_pb2.StartUploadRequest(parent_id=node_id, name="x", size=1, sha256="0" * 64),
            "parent_id",
        ),
        "Download": ("Download", blob_pb2.DownloadRequest(node_id=node_id), "node_id"),
        "GetUpload": ("GetUpload", blob_pb2.GetUploadRequest(upload_id=node_id), "upload_id"),
        "CancelUpload": ("CancelUpload", blob_pb2.CancelUploadRequest(upload_id=node_id), "upload_id"),
        "UploadChunks": ("UploadChunks", blob_pb2.UploadChunksRequest(upload_id=node_id, data=b"x"), "upload_id"),
    }


MALFORMED = {"word": "abc", "uuid-with-junk": UNKNOWN + "x", "number": "12345", "path": "/photos/a.jpg"}


@pytest.mark.parametrize("call_name", list(node_calls(UNKNOWN)))
async def test_an_unknown_id_is_not_found(resident, invoke, call_name):
    method, request, _ = node_calls(UNKNOWN)[call_name]
    await expect_error(invoke(resident.stub, method, request, await resident.metadata()), grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize("malformed", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("call_name", list(node_calls(UNKNOWN)))
async def test_a_malformed_id_is_an_invalid_argument_naming_the_field(resident, invoke, call_name, malformed):
    method, request, field = node_calls(malformed)[call_name]
    await expect_error(invoke(resident.stub, method, request, await resident.metadata()), grpc.StatusCode.INVALID_ARGUMENT, field=field)


@pytest.mark.parametrize("method,request_", [
    ("Stat", blob_pb2.StatRequest()),
    ("Rename", blob_pb2.RenameRequest(new_name="x")),
    ("Move", blob_pb2.MoveRequest()),
    ("Delete", blob_pb2.DeleteRequest()),
    ("Download", blob_pb2.DownloadRequest()),
], ids=["Stat", "Rename", "Move", "Delete", "Download"])
async def test_the_root_folder_itself_cannot_be_acted_on(resident, invoke, method, request_):
    await expect_error(invoke(resident.stub, method, request_, await resident.metadata()), grpc.StatusCode.INVALID_ARGUMENT, field="node_id")
