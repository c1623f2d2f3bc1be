"""Sharing with another cumulo user: read-only, under "shared with me", revocable."""

import datetime as dt
import os
import uuid

import grpc
import pytest

from cumulo_devstack.testing import verify_email
from cumulo_sdk import Cumulo, CumuloRpcError

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def friend(gateway, mail):
    async with Cumulo(gateway) as client:
        email = f"friend-{uuid.uuid4().hex[:8]}@example.com"
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1992, 3, 3))
        await client.login(email, PASSWORD)
        await verify_email(client, mail, email)
        yield client, email


async def test_shared_file_appears_for_the_recipient_and_downloads(user, friend, tmp_path):
    owner, _ = user
    recipient, recipient_email = friend
    path = tmp_path / "trip.jpg"
    path.write_bytes(os.urandom(50_000))
    node = await owner.files.upload(path)
    share = await owner.files.share_with(node.node_id, recipient_email.upper())  # logins are case-insensitive
    inbox = await recipient.files.shared_with_me()
    assert [(s.share_id, s.name) for s in inbox] == [(share.share_id, "trip.jpg")]
    assert inbox[0].recipient == ""  # the recipient does not see whom else it went to
    await recipient.files.download_shared(share.share_id, tmp_path / "got.jpg")
    assert (tmp_path / "got.jpg").read_bytes() == path.read_bytes()
    # Read-only: the recipient cannot reach the owner's node through their own file calls.
    with pytest.raises(CumuloRpcError) as caught:
        await recipient.files.delete(node.node_id)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert [s.share_id for s in await owner.files.my_shares()] == [share.share_id]


async def test_shared_folder_shows_its_files(user, friend, tmp_path):
    owner, _ = user
    recipient, recipient_email = friend
    folder = await owner.files.mkdir("", f"family-{uuid.uuid4().hex[:6]}")
    path = tmp_path / "a.jpg"
    path.write_bytes(os.urandom(2000))
    await owner.files.upload(path, parent_id=folder.node_id)
    share = await owner.files.share_with(folder.node_id, recipient_email)
    opened = await recipient.files.open_shared(share.share_id)
    assert opened.root.name == folder.name and [c.name for c in opened.children] == ["a.jpg"]
    await recipient.files.download_shared(share.share_id, tmp_path / "b.jpg", node_id=opened.children[0].node_id)
    assert (tmp_path / "b.jpg").read_bytes() == path.read_bytes()


async def test_revoked_or_trashed_shares_disappear(user, friend, tmp_path):
    owner, _ = user
    recipient, recipient_email = friend
    path = tmp_path / "x.bin"
    path.write_bytes(os.urandom(100))
    node = await owner.files.upload(path)
    other = await owner.files.upload(path, name="y.bin")
    share = await owner.files.share_with(node.node_id, recipient_email)
    second = await owner.files.share_with(other.node_id, recipient_email)
    await owner.files.unshare(share.share_id)
    await owner.files.delete(other.node_id)
    assert await recipient.files.shared_with_me() == []
    for share_id in (share.share_id, second.share_id):
        with pytest.raises(CumuloRpcError) as caught:
            await recipient.files.open_shared(share_id)
        assert caught.value.reason == "SHARE_NOT_FOUND"


async def test_share_ids_of_others_reach_nothing(user, friend, gateway, tmp_path):
    owner, _ = user
    recipient, recipient_email = friend
    path = tmp_path / "p.bin"
    path.write_bytes(os.urandom(100))
    node = await owner.files.upload(path)
    share = await owner.files.share_with(node.node_id, recipient_email)
    async with Cumulo(gateway) as third:
        email = f"third-{uuid.uuid4().hex[:8]}@example.com"
        await third.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
        await third.login(email, PASSWORD)
        with pytest.raises(CumuloRpcError) as caught:
            await third.files.open_shared(share.share_id)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(CumuloRpcError) as caught:
            await third.files.unshare(share.share_id)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(CumuloRpcError) as caught:
        await recipient.files.unshare(share.share_id)  # only the owner revokes
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("recipient", "code", "reason"),
    [
        ("nobody-here@example.com", grpc.StatusCode.NOT_FOUND, "RECIPIENT_NOT_FOUND"),
        ("not a login", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    ],
)
async def test_bad_recipients_are_refused(user, tmp_path, recipient, code, reason):
    owner, _ = user
    path = tmp_path / "q.bin"
    path.write_bytes(b"q")
    node = await owner.files.upload(path)
    with pytest.raises(CumuloRpcError) as caught:
        await owner.files.share_with(node.node_id, recipient)
    assert caught.value.code == code and caught.value.reason == reason


async def test_sharing_with_yourself_is_refused(user, tmp_path):
    owner, email = user
    path = tmp_path / "self.bin"
    path.write_bytes(b"s")
    node = await owner.files.upload(path)
    with pytest.raises(CumuloRpcError) as caught:
        await owner.files.share_with(node.node_id, email)
    assert caught.value.field == "recipient"
