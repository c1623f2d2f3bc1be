"""Blocks act on content, not on one file record: a moderator's block holds the file's bytes
in its account (every copy, and no upload brings them back), the blocklist holds them in every
account (stored copies included); lifting either lets the content go again. (content_blocks.py)"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_devstack.testing import allowed_caller, expect_error, identity
from cumulo_platform.identity import GATEWAY
from cumulo_sdk import Cumulo, CumuloRpcError

from .conftest import MIB, Owner, Owners, sha

DENIED, REFUSED = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
async def internal(blob) -> AsyncIterator[Any]:
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as internal:
        yield internal


@pytest.fixture
async def stranger(gateway) -> AsyncIterator[Cumulo]:
    """Someone without an account, who opens share links."""
    async with Cumulo(gateway) as client:
        yield client


async def sdk_error(call: Awaitable[Any]) -> Any:
    """An internal call whose failure is raised as the SDK's typed error (reason, field)."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


class Moderator:
    """What the moderation service asks of blob's internal API (with its identity): blocks of one
    file, and of content wherever it is stored."""

    def __init__(self, internal: Any) -> None:
        self.internal = internal

    async def block(self, owner: Owner, node_id: str, *, blocked: bool = True) -> blob_pb2.Node:
        if blocked:
            request = blob_pb2.BlockFileRequest(account_id=owner.account_id, node_id=node_id, reason="complaint 17", actor="moderator-1")
            return (await sdk_error(self.internal.BlockFile(request, timeout=20))).file
        undo = blob_pb2.UnblockFileRequest(account_id=owner.account_id, node_id=node_id, reason="counter-notice", actor="moderator-1")
        return (await sdk_error(self.internal.UnblockFile(undo, timeout=20))).file

    async def blocklist(self, *digests: str, listed: bool = True) -> blob_pb2.BlockContentResponse:
        request = blob_pb2.BlockContentRequest(sha256=list(digests), blocked=listed, reason="hash list 2026-05", actor="system:blocklist")
        return await sdk_error(self.internal.BlockContent(request, timeout=20))


@pytest.fixture
def moderator(internal) -> Moderator:
    return Moderator(internal)


async def opens(stranger: Cumulo, token: str) -> str:
    """"" when the link opens, else the reason it is refused for."""
    try:
        await stranger.files.open_link(token)
    except CumuloRpcError as err:
        return err.reason
    return ""


# --- a moderator's block: the content, in its account ----------------------------------------------


async def test_a_blocked_files_twin_is_blocked_and_cannot_be_shared_restored_or_uploaded_again(
    alice, bob, moderator, stranger
):
    payload = os.urandom(5000)
    blocked = await alice.put("one.bin", payload)
    twin = await alice.put("two.bin", payload)  # instant: the account holds the bytes
    link = await alice.client.files.share(twin.node_id)
    shared = await alice.client.files.share_with(twin.node_id, bob.email)
    trashed = await alice.put("three.bin", payload)
    await alice.delete(trashed.node_id)

    assert (await moderator.block(alice, blocked.node_id)).blocked
    assert (await alice.stat(twin.node_id)).blocked
    await expect_error(alice.download(twin.node_id), DENIED, reason="CONTENT_BLOCKED")
    # Its share link is disconnected, what was shared with a user no longer opens, and no
    # new share of it is made.
    assert await opens(stranger, link.token) == "LINK_TAKEN_DOWN"
    await expect_error(bob.client.files.open_shared(shared.share_id), DENIED, reason="CONTENT_BLOCKED")
    await expect_error(alice.client.files.share(twin.node_id), REFUSED, reason="CONTENT_BLOCKED")
    await expect_error(alice.client.files.share_with(twin.node_id, bob.email), REFUSED, reason="CONTENT_BLOCKED")
    # The trashed copy does not come back, and the bytes do not come back under a new name.
    await expect_error(alice.client.files.restore(trashed.node_id), REFUSED, reason="CONTENT_BLOCKED")
    err = await expect_error(alice.start("four.bin", payload), DENIED, reason="CONTENT_BLOCKED")
    assert "blocked in your account by a moderator" in err.message
    assert await alice.names() == ["one.bin", "two.bin"]

    # Another account's copy of the same bytes is its own: not blocked, and uploads go on.
    theirs = await bob.put("same bytes.bin", payload)
    assert not theirs.blocked and await bob.read(theirs.node_id) == payload
    assert (await bob.start("again.bin", payload)).HasField("file")


async def test_an_upload_of_blocked_content_is_refused_at_start_and_at_completion(alice, moderator, peek):
    payload = os.urandom(MIB + 11)
    # An upload of the bytes begun before they were blocked: its completion is refused.
    early = await alice.start("early.bin", payload)
    assert not early.HasField("file")
    kept = await alice.put("kept.bin", payload)
    await moderator.block(alice, kept.node_id)
    err = await expect_error(alice.send(early.upload_id, 0, payload), DENIED, reason="CONTENT_BLOCKED")
    assert "blocked in your account" in err.message
    assert await peek.upload_state(early.upload_id) == "failed"
    assert (await alice.usage()).reserved == 0
    assert await peek.objects(alice.account_id) == [await peek.content_key(alice.account_id, sha(payload))]

    # With no copy left in the account, the content is still refused before any byte flows.
    await alice.delete(kept.node_id)
    await alice.client.files.empty_trash()
    assert await peek.content_key(alice.account_id, sha(payload)) is None
    await expect_error(alice.start("later.bin", payload), DENIED, reason="CONTENT_BLOCKED")
    assert await peek.objects(alice.account_id) == [] and await peek.multipart_uploads(alice.account_id) == []


async def test_unblocking_lets_every_copy_and_its_links_go_again(alice, moderator, stranger):
    payload = os.urandom(3000)
    one = await alice.put("one.bin", payload)
    twin = await alice.put("two.bin", payload)
    link = await alice.client.files.share(twin.node_id)
    revoked = await alice.client.files.share(twin.node_id)
    await alice.client.files.revoke_link(revoked.link_id)  # its owner's word: it stays revoked
    await moderator.block(alice, twin.node_id)
    assert await opens(stranger, link.token) == "LINK_TAKEN_DOWN"

    assert not (await moderator.block(alice, one.node_id, blocked=False)).blocked
    assert not (await alice.stat(twin.node_id)).blocked
    assert await alice.read(twin.node_id) == payload
    assert await opens(stranger, link.token) == ""
    assert await opens(stranger, revoked.token) == "LINK_REVOKED"
    assert (await alice.start("three.bin", payload)).HasField("file")


# --- the blocklist: the content, in every account ---------------------------------------------------


async def test_the_blocklist_blocks_stored_copies_in_every_account_and_refuses_new_ones(
    alice, bob, owners: Owners, moderator, stranger
):
    payload = os.urandom(4000)
    digest = sha(payload)
    alices = await alice.put("scan.bin", payload)
    bobs = await bob.put("copy.bin", payload)
    bobs_trashed = await bob.put("old copy.bin", payload)
    await bob.delete(bobs_trashed.node_id)
    links = [await alice.client.files.share(alices.node_id), await bob.client.files.share(bobs.node_id)]
    try:
        listed = await moderator.blocklist(digest.upper())  # any case: stored lower-case
        assert {(f.account_id, f.node_id, f.sha256) for f in listed.files} == {
            (alice.account_id, alices.node_id, digest), (bob.account_id, bobs.node_id, digest), (bob.account_id, bobs_trashed.node_id, digest),
        }
        assert not listed.more
        for owner, node in ((alice, alices), (bob, bobs)):
            await expect_error(owner.download(node.node_id), DENIED, reason="CONTENT_BLOCKED")
        assert [await opens(stranger, link.token) for link in links] == ["LINK_TAKEN_DOWN", "LINK_TAKEN_DOWN"]
        await expect_error(bob.client.files.restore(bobs_trashed.node_id), REFUSED, reason="CONTENT_BLOCKED")
        # A third account never held the bytes: they are refused all the same, naming the rule
        # and nothing of who else holds them.
        carol = await owners.new()
        err = await expect_error(carol.start("mine.bin", payload), DENIED, reason="CONTENT_BLOCKED")
        assert "on the blocklist" in err.message and alice.account_id not in str(err) and bob.account_id not in str(err)
        assert err.metadata.get("rule") == "blocklist"
        # Listed again: nothing changes, and the answer still names every copy.
        assert len((await moderator.blocklist(digest)).files) == 3
    finally:
        unlisted = await moderator.blocklist(digest, listed=False)
    assert {f.node_id for f in unlisted.files} == {alices.node_id, bobs.node_id, bobs_trashed.node_id}
    assert await alice.read(alices.node_id) == payload and await bob.read(bobs.node_id) == payload
    assert [await opens(stranger, link.token) for link in links] == ["", ""]


async def test_a_listing_refuses_an_upload_under_way_and_an_accounts_own_block_outlives_it(alice, bob, moderator, peek):
    payload = os.urandom(MIB + 5)
    digest = sha(payload)
    under_way = await bob.start("big.bin", payload)
    mine = await alice.put("mine.bin", payload)
    await moderator.block(alice, mine.node_id)
    try:
        await moderator.blocklist(digest)
        await expect_error(bob.send(under_way.upload_id, 0, payload), DENIED, reason="CONTENT_BLOCKED")
        assert await peek.upload_state(under_way.upload_id) == "failed"
        assert await peek.objects(bob.account_id) == [] and (await bob.usage()).reserved == 0
        # A moderator's unblock lifts the account's block; the blocklist still holds the file.
        assert (await moderator.block(alice, mine.node_id, blocked=False)).blocked
        await moderator.block(alice, mine.node_id)
    finally:
        await moderator.blocklist(digest, listed=False)
    # Off the blocklist: the account's own block still holds its copy; elsewhere it goes.
    await expect_error(alice.download(mine.node_id), DENIED, reason="CONTENT_BLOCKED")
    await expect_error(alice.start("again.bin", payload), DENIED, reason="CONTENT_BLOCKED")
    assert (await bob.put("big.bin", payload)).blocked is False
    await moderator.block(alice, mine.node_id, blocked=False)
    assert await alice.read(mine.node_id) == payload


# --- input, callers, the purge ------------------------------------------------------------------------


def content_request(**changed: Any) -> blob_pb2.BlockContentRequest:
    request = dict(sha256=[sha(b"x")], blocked=False, reason="hash list", actor="system:blocklist")
    request.update(changed)
    return blob_pb2.BlockContentRequest(**request)


BAD_CONTENT = {
    "no-digest": (dict(sha256=[]), "sha256"),
    "not-hex": (dict(sha256=[sha(b"x"), "z" * 64]), "sha256[1]"),
    "too-short": (dict(sha256=[sha(b"x")[:63]]), "sha256[0]"),
    "too-many": (dict(sha256=[sha(i.to_bytes(2, "big")) for i in range(1001)]), "sha256"),
    "no-reason": (dict(reason=" "), "reason"),
    "no-actor": (dict(actor=""), "actor"),
}


@pytest.mark.parametrize("changed,field", BAD_CONTENT.values(), ids=BAD_CONTENT.keys())
async def test_bad_blocklist_input_is_refused_naming_the_field(internal, changed, field):
    await expect_error(sdk_error(internal.BlockContent(content_request(**changed), timeout=20)), grpc.StatusCode.INVALID_ARGUMENT, field=field)


@pytest.mark.parametrize("account_id,node_id,field", [("not-an-account", str(uuid.uuid4()), "account_id"), (str(uuid.uuid4()), "7", "node_id")])
async def test_bad_block_input_is_refused_naming_the_field(internal, account_id, node_id, field):
    request = blob_pb2.BlockFileRequest(account_id=account_id, node_id=node_id, reason="complaint", actor="moderator-1")
    await expect_error(sdk_error(internal.BlockFile(request, timeout=20)), grpc.StatusCode.INVALID_ARGUMENT, field=field)


async def test_an_unknown_account_reaches_nothing(internal, alice):
    """Another account's file looks like none at all."""
    node = await alice.put("a.bin", os.urandom(100))
    request = blob_pb2.BlockFileRequest(account_id=str(uuid.uuid4()), node_id=node.node_id, reason="complaint", actor="moderator-1")
    await expect_error(sdk_error(internal.BlockFile(request, timeout=20)), grpc.StatusCode.NOT_FOUND, reason="NODE_NOT_FOUND")
    assert not (await alice.stat(node.node_id)).blocked


@pytest.mark.parametrize("caller", ["sync", "lifecycle", GATEWAY])
async def test_only_moderation_may_change_the_blocklist_and_others_are_still_served(blob, alice, caller, peek):
    payload = os.urandom(2000)
    node = await alice.put("fine.bin", payload)
    request = content_request(sha256=[sha(payload)], blocked=True)
    async with identity(caller).channel(blob.target, "blob") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await blob_pb2_grpc.BlobInternalServiceStub(channel).BlockContent(request, timeout=20)
    assert caught.value.code() == DENIED and f"{caller} may not call" in (caught.value.details() or "")
    async with grpc.aio.insecure_channel(blob.target) as channel:  # no identity at all
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await blob_pb2_grpc.BlobInternalServiceStub(channel).BlockContent(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await peek.scalar("SELECT count(*) FROM blob.blocklisted_contents WHERE sha256 = :s", s=sha(payload)) == 0
    assert await alice.read(node.node_id) == payload
    assert (await alice.start("twin.bin", payload)).HasField("file")


async def test_the_purge_takes_the_accounts_blocks_and_leaves_the_blocklist(alice, internal, moderator, peek):
    node = await alice.put("taken down.bin", os.urandom(700))
    await moderator.block(alice, node.node_id)
    listed = sha(os.urandom(32))
    await moderator.blocklist(listed)
    try:
        count = "SELECT count(*) FROM blob.content_blocks WHERE account_id = :a"
        assert await peek.scalar(count, a=uuid.UUID(alice.account_id)) == 1
        await internal.PurgeAccount(blob_pb2.PurgeAccountRequest(account_id=alice.account_id), timeout=30)
        assert await peek.scalar(count, a=uuid.UUID(alice.account_id)) == 0
        assert await peek.scalar("SELECT count(*) FROM blob.blocklisted_contents WHERE sha256 = :s", s=listed) == 1
    finally:
        await moderator.blocklist(listed, listed=False)
