"""Who may call the blob service, and on what: every RPC wants a client id and a genuine,
unexpired access token, and a genuine token only ever reaches its own account's files —
another account's node and upload ids look exactly like missing ones."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import grpc
import jwt
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_devstack.testing import FORGED_SIGNATURES, bare_rpc_error, expect_error, forge_token


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


def requests_at(world: World) -> dict[str, tuple[str, object]]:
    """Every BlobService method, aimed at the holder's things where it takes an id (methods
    added since get an empty request: the token is checked before the request is read)."""
    return {
        **{m: (m, getattr(blob_pb2, f"{m}Request")()) for m in METHODS},
        "CreateFolder": ("CreateFolder", blob_pb2.CreateFolderRequest(parent_id=world.folder_id, name="planted")),
        "ListFolder": ("ListFolder", blob_pb2.ListFolderRequest(folder_id=world.folder_id)),
        "Stat": ("Stat", blob_pb2.StatRequest(node_id=world.file_id)),
        "Rename": ("Rename", blob_pb2.RenameRequest(node_id=world.file_id, new_name="stolen.txt")),
        "Move": ("Move", blob_pb2.MoveRequest(node_id=world.file_id, new_parent_id="")),
        "Delete": ("Delete", blob_pb2.DeleteRequest(node_id=world.file_id)),
        "ListTrash": ("ListTrash", blob_pb2.ListTrashRequest()),
        "Restore": ("Restore", blob_pb2.RestoreRequest(node_id=world.trashed_id)),
        "EmptyTrash": ("EmptyTrash", blob_pb2.EmptyTrashRequest()),
        "StartUpload": (
            "StartUpload",
            blob_pb2.StartUploadRequest(parent_id=world.folder_id, name="planted.bin", size=1, sha256="cd" * 32),
        ),
        "UploadChunks": ("UploadChunks", blob_pb2.UploadChunksRequest(upload_id=world.upload_id, offset=0, data=b"x" * 10)),
        "GetUpload": ("GetUpload", blob_pb2.GetUploadRequest(upload_id=world.upload_id)),
        "CancelUpload": ("CancelUpload", blob_pb2.CancelUploadRequest(upload_id=world.upload_id)),
        "Download": ("Download", blob_pb2.DownloadRequest(node_id=world.file_id)),
        "GetUsage": ("GetUsage", blob_pb2.GetUsageRequest()),
        "CreateShareLink": ("CreateShareLink", blob_pb2.CreateShareLinkRequest(node_id=world.file_id)),
        "ListShareLinks": ("ListShareLinks", blob_pb2.ListShareLinksRequest()),
        "RevokeShareLink": ("RevokeShareLink", blob_pb2.RevokeShareLinkRequest(link_id=world.link_id)),
        "ShareWithUser": ("ShareWithUser", blob_pb2.ShareWithUserRequest(node_id=world.file_id, recipient=world.friend_email)),
        "RevokeUserShare": ("RevokeUserShare", blob_pb2.RevokeUserShareRequest(share_id=world.share_id)),
        # Shared with the friend, not with whoever calls.
        "OpenSharedWithMe": ("OpenSharedWithMe", blob_pb2.OpenSharedWithMeRequest(share_id=world.share_id)),
        "DownloadSharedWithMe": (
            "DownloadSharedWithMe",
            blob_pb2.DownloadSharedWithMeRequest(share_id=world.share_id, node_id=world.file_id),
        ),
    }


METHODS = [m.name for m in blob_pb2.DESCRIPTOR.services_by_name["BlobService"].methods]
# The methods that take an id of the caller's things.
AIMED = ["CreateFolder", "ListFolder", "Stat", "Rename", "Move", "Delete", "Restore", "StartUpload",
         "UploadChunks", "GetUpload", "CancelUpload", "Download", "CreateShareLink", "RevokeShareLink",
         "ShareWithUser", "RevokeUserShare", "OpenSharedWithMe", "DownloadSharedWithMe"]


def test_every_method_that_takes_an_id_is_tried_with_another_accounts_id():
    """A method added later that names a node, upload or link belongs in AIMED."""
    taking_ids = sorted(
        m.name
        for m in blob_pb2.DESCRIPTOR.services_by_name["BlobService"].methods
        if any(f.name.endswith("_id") for f in m.input_type.fields)
    )
    assert taking_ids == sorted(AIMED)


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


# --- tokens --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def signing_key(auth) -> tuple[str, bytes]:
    async with grpc.aio.insecure_channel(auth.target) as channel:
        response = await auth_pb2_grpc.AuthInternalServiceStub(channel).GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=10)
    assert response.keys
    return response.keys[0].key_id, response.keys[0].public_key


# The forged signatures, the intruder's token naming the holder, and tokens that are no access token.
BLOB_FORGERIES = [*FORGED_SIGNATURES, "intruders-token-naming-the-holder", "refresh-token", "not-a-jwt"]


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_a_token_is_unauthenticated(holder, world, invoke, method):
    name, request = requests_at(world)[method]
    await expect_error(invoke(holder.stub, name, request, holder.client.metadata()), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_MISSING")


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "bearer x", "Token abc", "Bearer"])
async def test_an_authorization_that_is_not_a_bearer_token_counts_as_missing(holder, invoke, authorization):
    metadata = holder.client.metadata() + [("authorization", authorization)]
    await expect_error(
        invoke(holder.stub, "GetUsage", blob_pb2.GetUsageRequest(), metadata), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_MISSING"
    )


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_with_an_expired_token_is_unauthenticated(holder, world, invoke, blob_clock, method):
    token = await holder.token()
    name, request = requests_at(world)[method]
    blob_clock.advance(dt.timedelta(minutes=16))  # the blob service judges expiry by its own clock
    await expect_error(
        invoke(holder.stub, name, request, holder.client.metadata(token)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_EXPIRED"
    )


async def test_a_token_shortly_before_its_expiry_still_works(holder, invoke, blob_clock):
    token = await holder.token()
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    blob_clock.advance(dt.timedelta(seconds=expires_at - time.time() - 30))
    usage = await invoke(holder.stub, "GetUsage", blob_pb2.GetUsageRequest(), holder.client.metadata(token))
    assert usage.reserved == 1000


@pytest.mark.parametrize("forgery", BLOB_FORGERIES)
@pytest.mark.parametrize("method", METHODS)
async def test_a_call_with_a_forged_token_is_unauthenticated(holder, intruder, world, invoke, signing_key, method, forgery):
    token = forge_token(
        forgery,
        genuine=await holder.token(),
        signing_key=signing_key,
        intruder_token=await intruder.token(),
        refresh_token=holder.client.store.tokens.refresh_token,
    )
    name, request = requests_at(world)[method]
    await expect_error(
        invoke(holder.stub, name, request, holder.client.metadata(token)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID"
    )


async def test_the_holder_is_untouched_by_the_refused_calls(holder, world, peek):
    await assert_world_untouched(holder, world, peek)


# --- another account's token ----------------------------------------------------------------


@pytest.mark.parametrize("method", AIMED)
async def test_another_accounts_ids_are_not_found(holder, intruder, world, invoke, peek, method):
    name, request = requests_at(world)[method]
    await expect_error(invoke(intruder.stub, name, request, await intruder.metadata()), grpc.StatusCode.NOT_FOUND)
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


# --- client apps ----------------------------------------------------------------------------


async def test_a_call_without_client_id_is_refused_at_the_gateway(gateway, holder):
    err = await bare_rpc_error(
        gateway,
        blob_pb2_grpc.BlobServiceStub,
        "GetUsage",
        blob_pb2.GetUsageRequest(),
        metadata=[("authorization", f"Bearer {await holder.token()}")],
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_call_without_client_id_is_refused_by_the_service_itself(blob, holder, invoke):
    async with grpc.aio.insecure_channel(blob.target) as channel:
        stub = blob_pb2_grpc.BlobServiceStub(channel)
        await expect_error(
            invoke(stub, "GetUsage", blob_pb2.GetUsageRequest(), [("authorization", f"Bearer {await holder.token()}")]),
            grpc.StatusCode.PERMISSION_DENIED,
            reason="CLIENT_NOT_AUTHORIZED",
        )


async def test_an_unregistered_client_id_is_refused(holder, invoke):
    metadata = [("x-cumulo-client-id", "not-a-registered-app"), ("authorization", f"Bearer {await holder.token()}")]
    await expect_error(
        invoke(holder.stub, "GetUsage", blob_pb2.GetUsageRequest(), metadata), grpc.StatusCode.PERMISSION_DENIED, reason="CLIENT_NOT_AUTHORIZED"
    )


async def test_the_service_reached_directly_needs_only_a_client_id_and_a_token(blob, holder, invoke):
    """The gateway adds nothing the service needs: a registered client id and a token suffice."""
    async with grpc.aio.insecure_channel(blob.target) as channel:
        usage = await invoke(blob_pb2_grpc.BlobServiceStub(channel), "GetUsage", blob_pb2.GetUsageRequest(), await holder.metadata())
    assert usage.reserved == 1000
