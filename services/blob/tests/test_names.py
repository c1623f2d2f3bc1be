"""What a file or folder may be called: the rules on their own (domain/names.py), and the same
rules at every call that takes a name, which clash in a folder and which do not."""

from __future__ import annotations

import hashlib
import unicodedata

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_blob.domain import names
from cumulo_devstack.testing import expect_error
from cumulo_platform.errors import InvalidArgument
from cumulo_platform.paging import check_sha256

DECOMPOSED_E = "e\u0301"  # "e" + COMBINING ACUTE ACCENT
COMPOSED_E = "\u00e9"  # "é"

BAD_NAMES = {
    "empty": "",
    "dot": ".",
    "dot-dot": "..",
    "slash": "a/b",
    "only-slash": "/",
    "nul": "a\x00b",
    "newline": "a\nb",
    "tab": "a\tb",
    "escape": "a\x1bb",
    "delete": "a\x7fb",
    "c1-control": "a\x85b",
    "256-ascii-bytes": "a" * 256,
    "258-bytes-of-3-byte-chars": "中" * 86,
    "256-bytes-once-composed": DECOMPOSED_E * 128,
    "leading-space": " report.txt",
    "trailing-space": "report.txt ",
    "only-spaces": "   ",
    "trailing-no-break-space": "report\u00a0",
}

GOOD_NAMES = {
    "plain": "report.txt",
    "inner-spaces": "my holiday photo.jpg",
    "dotfile": ".bashrc",
    "three-dots": "...",
    "255-ascii-bytes": "a" * 255,
    "255-bytes-of-3-byte-chars": "中" * 85,
    "255-bytes-of-2-byte-chars": COMPOSED_E * 127 + "a",
    "emoji": "🎉 party.png",
    "backslash": "a\\b",
}


# --- the rules on their own -------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_check_name_refuses_and_names_the_field(name):
    with pytest.raises(InvalidArgument) as caught:
        names.check_name(name, "new_name")
    assert caught.value.field == "new_name"


@pytest.mark.parametrize("name", GOOD_NAMES.values(), ids=GOOD_NAMES.keys())
def test_check_name_accepts_and_keeps_a_normalised_name(name):
    assert names.check_name(name) == name


def test_check_name_returns_the_nfc_form():
    assert names.check_name(f"caf{DECOMPOSED_E}.txt") == f"caf{COMPOSED_E}.txt"


def test_name_length_counts_the_utf8_bytes_of_the_normalised_form():
    # 127 decomposed "é" are 381 bytes as given but 254 once composed: allowed.
    long_decomposed = DECOMPOSED_E * 127
    assert len(long_decomposed.encode()) > names.MAX_NAME_BYTES
    assert names.check_name(long_decomposed) == COMPOSED_E * 127


def test_check_name_defaults_the_field_to_name():
    with pytest.raises(InvalidArgument) as caught:
        names.check_name("")
    assert caught.value.field == "name"


@pytest.mark.parametrize(
    "given",
    ["E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "  " + names.EMPTY_SHA256 + "\n"],
    ids=["upper-case", "surrounding-space"],
)
def test_check_sha256_gives_the_lower_case_digest(given):
    assert check_sha256(given) == names.EMPTY_SHA256


@pytest.mark.parametrize("given", ["", "abc", "g" * 64, "a" * 63, "a" * 65, hashlib.sha256(b"x").hexdigest()[:-1] + " "])
def test_check_sha256_refuses_what_is_not_a_digest(given):
    with pytest.raises(InvalidArgument) as caught:
        check_sha256(given)
    assert caught.value.field == "sha256"


# --- through the API --------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
async def test_create_folder_refuses_a_bad_name(resident, workdir, name):
    await expect_error(resident.mkdir(name, workdir), grpc.StatusCode.INVALID_ARGUMENT, field="name")
    assert await resident.ls(workdir) == []


@pytest.mark.parametrize(
    "name", [BAD_NAMES[k] for k in ("empty", "dot-dot", "slash", "nul", "256-ascii-bytes", "trailing-space")]
)
async def test_start_upload_refuses_a_bad_name_before_reserving_anything(alice, name):
    await expect_error(alice.start(name, b"some bytes"), grpc.StatusCode.INVALID_ARGUMENT, field="name")
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (0, 0)


@pytest.mark.parametrize("name", [BAD_NAMES[k] for k in ("empty", "dot", "slash", "newline", "leading-space", "258-bytes-of-3-byte-chars")])
async def test_rename_refuses_a_bad_name_naming_new_name(resident, workdir, name):
    folder = await resident.mkdir("keep me", workdir)
    await expect_error(
        resident.rpc("Rename", blob_pb2.RenameRequest(node_id=folder.node_id, new_name=name)),
        grpc.StatusCode.INVALID_ARGUMENT,
        field="new_name",
    )
    assert (await resident.stat(folder.node_id)).name == "keep me"


@pytest.mark.parametrize("name", GOOD_NAMES.values(), ids=GOOD_NAMES.keys())
async def test_good_names_are_stored_as_given(resident, workdir, name):
    folder = await resident.mkdir(name, workdir)
    assert folder.name == name
    assert await resident.names(workdir) == [name]
    file = await resident.put(name, name.encode(), parent_id=folder.node_id)
    assert file.name == name


async def test_decomposed_name_is_stored_composed(resident, workdir):
    folder = await resident.mkdir(f"caf{DECOMPOSED_E}", workdir)
    assert folder.name == f"caf{COMPOSED_E}"
    assert unicodedata.is_normalized("NFC", (await resident.stat(folder.node_id)).name)


@pytest.mark.parametrize("first,second", [(DECOMPOSED_E, COMPOSED_E), (COMPOSED_E, DECOMPOSED_E)], ids=["decomposed-first", "composed-first"])
async def test_decomposed_and_composed_forms_of_a_name_clash(resident, workdir, first, second):
    await resident.mkdir(f"r{first}sum{first}", workdir)
    await expect_error(
        resident.mkdir(f"r{second}sum{second}", workdir), grpc.StatusCode.ALREADY_EXISTS, reason="NAME_TAKEN", field="name"
    )
    await expect_error(
        resident.start(f"r{second}sum{second}", b"bytes", parent_id=workdir),
        grpc.StatusCode.ALREADY_EXISTS,
        reason="NAME_TAKEN",
        field="name",
    )
    assert len(await resident.ls(workdir)) == 1


async def test_a_folder_name_taken_in_the_same_folder_clashes(resident, workdir):
    await resident.mkdir("2024", workdir)
    await expect_error(resident.mkdir("2024", workdir), grpc.StatusCode.ALREADY_EXISTS, reason="NAME_TAKEN")
    assert await resident.names(workdir) == ["2024"]


async def test_a_file_and_a_folder_cannot_share_a_name(resident, workdir):
    await resident.put("notes", b"file called notes", parent_id=workdir)
    await expect_error(resident.mkdir("notes", workdir), grpc.StatusCode.ALREADY_EXISTS, reason="NAME_TAKEN")


async def test_names_are_case_sensitive(resident, workdir):
    await resident.mkdir("Report", workdir)
    await resident.mkdir("report", workdir)
    assert sorted(await resident.names(workdir)) == ["Report", "report"]


async def test_the_same_name_in_different_folders_is_fine(alice):
    one = await alice.mkdir("one")
    two = await alice.mkdir("two")
    a = await alice.put("same.txt", b"first", parent_id=one.node_id)
    b = await alice.put("same.txt", b"second", parent_id=two.node_id)
    root = await alice.put("same.txt", b"third")
    assert len({a.node_id, b.node_id, root.node_id}) == 3
    assert await alice.names(one.node_id) == ["same.txt"]
    assert await alice.names(two.node_id) == ["same.txt"]


async def test_the_same_name_in_another_account_is_fine(alice, bob):
    await alice.mkdir("shared name")
    await bob.mkdir("shared name")
    assert await bob.names() == ["shared name"]


async def test_a_trashed_item_frees_its_name(alice):
    old = await alice.mkdir("drafts")
    await alice.delete(old.node_id)
    new = await alice.mkdir("drafts")
    assert new.node_id != old.node_id
    file = await alice.put("report.txt", b"v1")
    await alice.delete(file.node_id)
    again = await alice.put("report.txt", b"v2")
    assert again.name == "report.txt"
    assert sorted(await alice.names()) == ["drafts", "report.txt"]


async def test_rename_to_a_taken_name_clashes(resident, workdir):
    await resident.mkdir("taken", workdir)
    other = await resident.mkdir("other", workdir)
    await expect_error(
        resident.rpc("Rename", blob_pb2.RenameRequest(node_id=other.node_id, new_name="taken")),
        grpc.StatusCode.ALREADY_EXISTS,
        reason="NAME_TAKEN",
    )
    assert sorted(await resident.names(workdir)) == ["other", "taken"]
