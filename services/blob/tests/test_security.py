"""Who may call the blob service, and on what: every RPC of its public API is behind the
platform's door (a registered client id; a genuine, unexpired access token but for the share
links' anonymous methods), and a genuine token only ever reaches its own account's files —
another account's node and upload ids look exactly like missing ones."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_blob.api.public import ANONYMOUS_METHODS
from cumulo_devstack.testing import assert_gated, expect_error, gate_cases, open_channel, public_services


@dataclasses.dataclass
class World:
    """The holder's things that other callers aim at."""

    folder_id: str
    file_id: str
    trashed_id: str
    upload_id: str
    link_id: str
    share_id: str
    friend_email: str
    payload: bytes


@pytest.fixture(scope="module")
async def holder(owners):
    return await owners.new()


@pytest.fixture(scope="module")
async def intruder(owners):
    return await owners.new()


@pytest.fixture(scope="module")
async def friend(owners):
    """A third account the holder shares a folder with."""
    return await owners.new()


@pytest.fixture(scope="module")
async def world(holder, friend) -> World:
    folder = await holder.mkdir("private")
    payload = b"the holder's secret"
    file = await holder.put("secret.txt", payload, parent_id=folder.node_id)
    trashed = await holder.put("binned.txt", b"binned", parent_id=folder.node_id)
    await holder.delete(trashed.node_id)
    upload = await holder.start("pending.bin", size=1000, sha256="ab" * 32)
    link = (await holder.rpc("CreateShareLink", blob_pb2.CreateShareLinkRequest(node_id=file.node_id))).link
    share = (await holder.rpc("ShareWithUser", blob_pb2.ShareWithUserRequest(node_id=folder.node_id, recipient=friend.email))).share
    return World(
        folder.node_id, file.node_id, trashed.node_id, upload.upload_id, link.link_id, share.share_id, friend.email, payload
    )


def requests_at(world: World) -> dict[str, object]:
    """The BlobService methods that take an id, aimed at the holder's things."""
    return {
        "CreateFolder": blob_pb2.CreateFolderRequest(parent_id=world.folder_id, name="planted"),
        "ListFolder": blob_pb2.ListFolderRequest(folder_id=world.folder_id),
        "Stat": blob_pb2.StatRequest(node_id=world.file_id),
        "Rename": blob_pb2.RenameRequest(node_id=world.file_id, new_name="stolen.txt"),
        "Move": blob_pb2.MoveRequest(node_id=world.file_id, new_parent_id=""),
        "Delete": blob_pb2.DeleteRequest(node_id=world.file_id),
        "Restore": blob_pb2.RestoreRequest(node_id=world.trashed_id),
        "StartUpload": blob_pb2.StartUploadRequest(parent_id=world.folder_id, name="planted.bin", size=1, sha256="cd" * 32),
        "UploadChunks": blob_pb2.UploadChunksRequest(upload_id=world.upload_id, offset=0, data=b"x" * 10),
        "GetUpload": blob_pb2.GetUploadRequest(upload_id=world.upload_id),
        "PutUploadPart": blob_pb2.PutUploadPartRequest(upload_id=world.upload_id, offset=0, data=b"x" * 10),
        "CancelUpload": blob_pb2.CancelUploadRequest(upload_id=world.upload_id),
        "Download": blob_pb2.DownloadRequest(node_id=world.file_id),
        "GetDownloadUrl": blob_pb2.GetDownloadUrlRequest(node_id=world.file_id),
        "CreateShareLink": blob_pb2.CreateShareLinkRequest(node_id=world.file_id),
        "RevokeShareLink": blob_pb2.RevokeShareLinkRequest(link_id=world.link_id),
        "ShareWithUser": blob_pb2.ShareWithUserRequest(node_id=world.file_id, recipient=world.friend_email),
        "RevokeUserShare": blob_pb2.RevokeUserShareRequest(share_id=world.share_id),
        # Shared with the friend, not with whoever calls.
        "OpenSharedWithMe": blob_pb2.OpenSharedWithMeRequest(share_id=world.share_id),
        "DownloadSharedWithMe": blob_pb2.DownloadSharedWithMeRequest(share_id=world.share_id, node_id=world.file_id),
        "GetSharedWithMeDownloadUrl": blob_pb2.GetSharedWithMeDownloadUrlRequest(share_id=world.share_id, node_id=world.file_id),
    }


# The methods that take an id of the caller's things.
AIMED = ["CreateFolder", "ListFolder", "Stat", "Rename", "Move", "Delete", "Restore", "StartUpload",
         "UploadChunks", "PutUploadPart", "GetUpload", "CancelUpload", "Download", "GetDownloadUrl", "CreateShareLink", "RevokeShareLink",
         "ShareWithUser", "RevokeUserShare", "OpenSharedWithMe", "DownloadSharedWithMe", "GetSharedWithMeDownloadUrl"]


# Methods whose ids name nothing of an account's: a plan is the same for everyone.
NOT_AN_ACCOUNTS = {"AcceptPrice"}


def test_every_method_that_takes_an_id_is_tried_with_another_accounts_id():
    """A method added later that names a node, upload or link belongs in AIMED (and in requests_at)."""
    taking_ids = sorted(
        m.name
        for m in blob_pb2.DESCRIPTOR.services_by_name["BlobService"].methods
        if any(f.name.endswith("_id") for f in m.input_type.fields) and m.name not in NOT_AN_ACCOUNTS
    )
    assert taking_ids == sorted(AIMED) == sorted(requests_at(World(*[""] * 7, b"")))


async def assert_world_untouched(holder, world: World, peek) -> None:
    file = await holder.stat(world.file_id)
    assert (file.name, file.parent_id) == ("secret.txt", world.folder_id)
    assert await holder.names(world.folder_id) == ["secret.txt"]
    assert await holder.read(world.file_id) == world.payload
    assert [n.node_id for n in await holder.trash()] == [world.trashed_id]
    status = await holder.get_upload(world.upload_id)
    assert status.committed_offset == 0 and not status.HasField("file")
    assert await peek.upload_state(world.upload_id) == "open"
    usage = await holder.usage()
    assert usage.reserved == 1000
    links = (await holder.rpc("ListShareLinks", blob_pb2.ListShareLinksRequest())).links
    assert [link.link_id for link in links] == [world.link_id]
    shares = (await holder.rpc("ListUserShares", blob_pb2.ListUserSharesRequest())).shares
    assert [(share.share_id, share.recipient) for share in shares] == [(world.share_id, world.friend_email)]


# --- the door -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, case", gate_cases(public_services(blob_pb2), ANONYMOUS_METHODS))
async def test_every_method_is_gated(blob, signing_key, method, case):
    """Every kind of bad token is tried on the platform's interceptor (libs/cumulo_platform/tests)."""
    await assert_gated(blob.target, method, case, signing_key)


# --- another account's token ----------------------------------------------------------------


@pytest.mark.parametrize("method", AIMED)
async def test_another_accounts_ids_are_not_found(holder, intruder, world, invoke, peek, method):
    request = requests_at(world)[method]
    await expect_error(invoke(intruder.stub, method, request, await intruder.metadata()), grpc.StatusCode.NOT_FOUND)
    await assert_world_untouched(holder, world, peek)


async def test_moving_into_another_accounts_folder_is_not_found(holder, intruder, world, peek):
    mine = await intruder.mkdir("mine")
    await expect_error(
        intruder.rpc("Move", blob_pb2.MoveRequest(node_id=mine.node_id, new_parent_id=world.folder_id)), grpc.StatusCode.NOT_FOUND
    )
    assert (await intruder.stat(mine.node_id)).parent_id == ""
    await assert_world_untouched(holder, world, peek)


async def test_another_account_sees_nothing_of_the_holders(holder, intruder, world, peek):
    root = await intruder.ls()
    assert world.folder_id not in [n.node_id for n in root]
    assert "private" not in [n.name for n in root]
    assert world.trashed_id not in [n.node_id for n in await intruder.trash()]
    usage = await intruder.usage()
    assert (usage.used, usage.reserved) == (0, 0)
    assert list((await intruder.rpc("ListShareLinks", blob_pb2.ListShareLinksRequest())).links) == []
    assert list((await intruder.rpc("ListUserShares", blob_pb2.ListUserSharesRequest())).shares) == []
    assert list((await intruder.rpc("ListSharedWithMe", blob_pb2.ListSharedWithMeRequest())).shares) == []
    await intruder.rpc("EmptyTrash", blob_pb2.EmptyTrashRequest())
    await assert_world_untouched(holder, world, peek)


async def test_the_holders_own_token_reaches_all_of_it(holder, world):
    assert await holder.names() == ["private"]
    assert (await holder.usage()).used == len(world.payload) + len(b"binned")


async def test_the_friend_reaches_exactly_what_was_shared(friend, world):
    """The control for the intruder's NOT_FOUNDs: the same ids work for the one they were shared with."""
    opened = await friend.rpc("OpenSharedWithMe", blob_pb2.OpenSharedWithMeRequest(share_id=world.share_id))
    assert opened.root.node_id == world.folder_id
    assert [n.node_id for n in opened.children] == [world.file_id]
    await expect_error(friend.stat(world.file_id), grpc.StatusCode.NOT_FOUND)


# --- the holder ---------------------------------------------------------------------------------


async def test_the_service_reached_directly_needs_only_a_client_id_and_a_token(blob, holder, invoke):
    """The gateway adds nothing the service needs: a registered client id and a token suffice."""
    async with open_channel(blob.target) as channel:
        usage = await invoke(blob_pb2_grpc.BlobServiceStub(channel), "GetUsage", blob_pb2.GetUsageRequest(), await holder.metadata())
    assert usage.reserved == 1000


async def test_the_holder_is_untouched_by_everything_aimed_at_it(holder, world, peek):
    await assert_world_untouched(holder, world, peek)
