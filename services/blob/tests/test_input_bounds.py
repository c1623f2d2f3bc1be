"""Bounded input to the blob service's folders: names that would not show as they are
(invisible, text-direction and control characters) are refused wherever a name is given,
folders nest at most 64 deep (on creation and on a move), and every page token a client
sends is checked, whatever its size or make."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2
from cumulo_blob.adapters.tables import nodes
from cumulo_blob.domain import names
from cumulo_blob.folders import Folders
from cumulo_devstack.testing import expect_error
from cumulo_platform.errors import CumuloError, FailedPrecondition, InvalidArgument
from cumulo_platform.paging import encode_token

INVALID, PRECONDITION = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION

# Each shows as something it is not, or as nothing.
INVISIBLE = {
    "right-to-left-override": "invoice\u202efdp.exe",  # shows as "invoiceexe.pdf"
    "left-to-right-override": "a\u202db",
    "right-to-left-isolate": "a\u2067b\u2069",
    "first-strong-isolate": "a\u2068b",
    "left-to-right-mark": "report\u200e.txt",
    "right-to-left-mark": "report\u200f.txt",
    "zero-width-space": "pay\u200bpal.txt",
    "zero-width-joiner-between-letters": "pay\u200dpal.txt",
    "zero-width-non-joiner-between-latin-letters": "pay\u200cpal.txt",
    "byte-order-mark": "\ufeffreport.txt",
    "word-joiner": "a\u2060b",
    "soft-hyphen": "pay\u00adpal",
    "arabic-letter-mark": "a\u061cb",
    "language-tag": "a\U000e0001b",
    "line-separator": "a\u2028b",
    "paragraph-separator": "a\u2029b",
    "hangul-filler": "\u3164",
    "only-a-zero-width-space": "\u200b",
}

# Joiners where writing needs them.
VISIBLE = {
    "family-emoji": "\U0001f468\u200d\U0001f469\u200d\U0001f467 photos",
    "woman-technologist-with-skin-tone": "\U0001f469\U0001f3fd\u200d\U0001f4bb notes.txt",
    "rainbow-flag": "\U0001f3f3\ufe0f\u200d\U0001f308.png",
    "devanagari-conjunct": "\u0915\u094d\u200d\u0937.txt",
    "persian-non-joiner": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt",
    "hebrew-without-marks": "\u05e9\u05dc\u05d5\u05dd.txt",
}


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_name_with_an_invisible_character_is_refused_naming_the_rule(name):
    with pytest.raises(InvalidArgument) as caught:
        names.check_name(name, "new_name")
    assert caught.value.field == "new_name"
    assert caught.value.reason == "INVISIBLE_CHARACTER"
    assert "invisible or text-direction" in caught.value.message


@pytest.mark.parametrize("name", VISIBLE.values(), ids=VISIBLE.keys())
def test_joiners_that_writing_needs_are_allowed(name):
    assert names.check_name(name) == name


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
async def test_every_call_that_takes_a_name_refuses_an_invisible_character(resident, workdir, name):
    folder = await resident.mkdir("plain", workdir)
    calls = [
        ("CreateFolder", blob_pb2.CreateFolderRequest(parent_id=workdir, name=name), "name"),
        ("Rename", blob_pb2.RenameRequest(node_id=folder.node_id, new_name=name), "new_name"),
        ("StartUpload", blob_pb2.StartUploadRequest(parent_id=workdir, name=name, size=0, sha256=names.EMPTY_SHA256), "name"),
    ]
    for method, request, field in calls:
        err = await expect_error(resident.rpc(method, request), INVALID, reason="INVISIBLE_CHARACTER", field=field)
        assert name not in err.message
    assert await resident.names(workdir) == ["plain"]


async def test_names_with_joiners_that_writing_needs_are_created(resident, workdir):
    for name in VISIBLE.values():
        assert (await resident.mkdir(name, workdir)).name == name
    assert sorted(await resident.names(workdir)) == sorted(VISIBLE.values())


# --- folder depth ---------------------------------------------------------------------------------


async def chain(owner: Any, parent: str, levels: int) -> list[blob_pb2.Node]:
    made = []
    for i in range(levels):
        made.append(await owner.mkdir(f"level-{i}", parent))
        parent = made[-1].node_id
    return made


async def test_folders_nest_at_most_64_deep_on_creation(resident, workdir):
    """`workdir` is one deep; 63 more make 64."""
    levels = await chain(resident, workdir, names.MAX_FOLDER_DEPTH - 1)
    deepest = levels[-1].node_id
    err = await expect_error(resident.mkdir("one-too-deep", deepest), PRECONDITION, reason="FOLDER_TOO_DEEP", field="parent_id")
    assert "64" in err.message
    # A file is no folder level: it may live in the deepest folder.
    assert (await resident.put("deep.txt", b"at the bottom", parent_id=deepest)).parent_id == deepest
    assert await resident.names(deepest) == ["deep.txt"]


async def test_a_move_may_not_make_folders_nest_deeper_than_64(resident, workdir):
    levels = await chain(resident, workdir, names.MAX_FOLDER_DEPTH - 2)  # down to 63 deep
    at_62, at_63 = levels[-2].node_id, levels[-1].node_id
    top = await resident.mkdir("subtree", workdir)
    await resident.mkdir("inner", top.node_id)  # a subtree two folders tall
    move = blob_pb2.MoveRequest(node_id=top.node_id, new_parent_id=at_63)
    err = await expect_error(resident.rpc("Move", move), PRECONDITION, reason="FOLDER_TOO_DEEP", field="new_parent_id")
    assert "65" in err.message
    assert (await resident.stat(top.node_id)).parent_id == workdir
    # 62 deep, plus two: 64.
    moved = (await resident.rpc("Move", blob_pb2.MoveRequest(node_id=top.node_id, new_parent_id=at_62))).node
    assert moved.parent_id == at_62
    # Files move anywhere.
    file = await resident.put("f.txt", b"f", parent_id=workdir)
    assert (await resident.rpc("Move", blob_pb2.MoveRequest(node_id=file.node_id, new_parent_id=at_63))).node.parent_id == at_63


async def test_a_trashed_folder_inside_counts_when_its_parent_moves(blob):
    """It comes back where it was: a move that would put it too deep is refused (a service
    handler with a depth of 3, on the session's database)."""
    folders = Folders(db=blob.app.db, clock=blob.clock, max_depth=3)
    account = uuid.uuid4()
    a = await folders.create_folder(account, "", "a")
    b = await folders.create_folder(account, str(a.node_id), "b")
    c = await folders.create_folder(account, str(b.node_id), "c")
    with pytest.raises(FailedPrecondition) as caught:
        await folders.create_folder(account, str(c.node_id), "d")
    assert (caught.value.reason, caught.value.metadata["field"]) == ("FOLDER_TOO_DEEP", "parent_id")
    x = await folders.create_folder(account, "", "x")
    y = await folders.create_folder(account, str(x.node_id), "y")
    async with blob.app.db.unit_of_work() as uow:  # to the trash (no event: the account is made up)
        await uow.execute(sa.update(nodes).where(nodes.c.node_id == y.node_id).values(trashed_at=blob.clock.now()))
        await uow.commit()
    with pytest.raises(FailedPrecondition) as caught:
        await folders.move(account, str(x.node_id), str(b.node_id))  # 2 + x + (trashed) y = 4
    assert caught.value.reason == "FOLDER_TOO_DEEP"
    assert (await folders.move(account, str(x.node_id), str(a.node_id))).parent_id == a.node_id  # 1 + 2 = 3


# --- page tokens ----------------------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def crafted(values: Any) -> str:
    return b64(json.dumps(values).encode())


NOT_TOKENS = {
    "one-megabyte": "A" * (1024 * 1024),
    "garbage": "not a token, just words!",
    "not-utf8": b64(b"\xff\xfe\x00"),
    "nested-a-thousand-deep": b64(b"[" * 3000 + b"]" * 3000),
    "lone-surrogate": crafted([True, "\ud800"]),
    "a-sync-change-token": encode_token([1, str(uuid.uuid4()), 5]),
}
FOLDER_TOKENS = {**NOT_TOKENS, "a-trash-page-token": encode_token(["2026-01-01T00:00:00+00:00", str(uuid.uuid4())])}
TRASH_TOKENS = {
    **NOT_TOKENS,
    "a-folder-page-token": encode_token([True, "report.txt"]),
    "a-time-without-offset": encode_token(["2026-01-01T00:00:00", str(uuid.uuid4())]),
    "year-one-east-of-utc": encode_token(["0001-01-01T00:00:00+14:00", str(uuid.uuid4())]),
    "not-a-time": encode_token(["yesterday", str(uuid.uuid4())]),
    "not-a-node-id": encode_token(["2026-01-01T00:00:00+00:00", "node"]),
}


@pytest.mark.parametrize("token", FOLDER_TOKENS.values(), ids=FOLDER_TOKENS.keys())
async def test_a_folder_page_token_no_listing_gave_is_invalid_argument(resident, workdir, token):
    request = blob_pb2.ListFolderRequest(folder_id=workdir, page_token=token)
    await expect_error(resident.rpc("ListFolder", request), INVALID, field="page_token")


@pytest.mark.parametrize("token", TRASH_TOKENS.values(), ids=TRASH_TOKENS.keys())
async def test_a_trash_page_token_no_listing_gave_is_invalid_argument(resident, token):
    await expect_error(resident.rpc("ListTrash", blob_pb2.ListTrashRequest(page_token=token)), INVALID, field="page_token")


async def test_the_trash_pages_with_its_own_tokens(resident, workdir):
    """The control: tokens the trash gave out go on from where the page ended."""
    for i in range(3):
        await resident.delete((await resident.mkdir(f"gone-{i}", workdir)).node_id)
    seen: list[str] = []
    token = ""
    for _ in range(10):  # bounded: a few pages of one
        page = await resident.rpc("ListTrash", blob_pb2.ListTrashRequest(page_size=1, page_token=token))
        seen.extend(n.node_id for n in page.nodes)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 3


def test_the_depth_error_is_a_cumulo_error_naming_the_field():
    with pytest.raises(CumuloError) as caught:
        names.check_depth(65, 64, "new_parent_id")
    assert caught.value.metadata == {"field": "new_parent_id"}
    names.check_depth(64, 64, "new_parent_id")
