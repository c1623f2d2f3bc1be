"""Share links: anyone with the link (and a registered client) reads, the owner revokes;
expiry, passwords, blocked content and minors."""

import asyncio
import datetime as dt
import os
import time
import uuid

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_blob.sharing import new_link_token
from cumulo_devstack.testing import allowed_caller
from cumulo_sdk import Cumulo, CumuloRpcError


@pytest.fixture
async def stranger(gateway):
    """Someone without an account: only the client id."""
    async with Cumulo(gateway) as client:
        yield client


async def _file(client, tmp_path, name="shared.jpg", size=300_000):
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path, await client.files.upload(path)


async def test_link_opens_without_an_account_until_revoked(user, stranger, tmp_path):
    owner, _ = user
    path, node = await _file(owner, tmp_path)
    link = await owner.files.share(node.node_id)
    assert len(link.token) >= 32  # at least 128 random bits, base64url
    got = await stranger.files.download_link(link.token, tmp_path / "got.jpg")
    assert (tmp_path / "got.jpg").read_bytes() == path.read_bytes() and got.name == "shared.jpg"
    assert [found.link_id for found in await owner.files.links()] == [link.link_id]
    await owner.files.revoke_link(link.link_id)
    with pytest.raises(CumuloRpcError) as caught:
        await stranger.files.open_link(link.token)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND and caught.value.reason == "LINK_REVOKED"
    assert await owner.files.links() == []


async def test_expired_link_is_refused(user, stranger, blob, tmp_path):
    owner, _ = user
    _, node = await _file(owner, tmp_path)
    link = await owner.files.share(node.node_id, expires_at=time.time() + 60)
    await stranger.files.open_link(link.token)
    blob.clock.advance(dt.timedelta(minutes=2))
    try:
        with pytest.raises(CumuloRpcError) as caught:
            await stranger.files.open_link(link.token)
        assert caught.value.reason == "LINK_EXPIRED"
    finally:
        blob.clock.advance(-dt.timedelta(minutes=2))


async def test_password_protected_link(user, stranger, tmp_path):
    owner, _ = user
    path, node = await _file(owner, tmp_path)
    link = await owner.files.share(node.node_id, password="open sesame")
    assert link.password_protected
    for password, reason in (("", "LINK_PASSWORD_REQUIRED"), ("wrong", "LINK_PASSWORD_WRONG")):
        with pytest.raises(CumuloRpcError) as caught:
            await stranger.files.download_link(link.token, tmp_path / "no.jpg", password=password)
        assert caught.value.reason == reason
        assert not (tmp_path / "no.jpg").exists()
    await stranger.files.download_link(link.token, tmp_path / "yes.jpg", password="open sesame")
    assert (tmp_path / "yes.jpg").read_bytes() == path.read_bytes()


async def test_link_password_guessing_is_throttled_even_in_parallel(user, stranger, tmp_path):
    owner, _ = user
    _, node = await _file(owner, tmp_path)
    link = await owner.files.share(node.node_id, password="the right one")
    results = await asyncio.gather(
        *(stranger.files.open_link(link.token, f"guess {i}") for i in range(12)), return_exceptions=True
    )
    reasons = [r.reason for r in results if isinstance(r, CumuloRpcError)]
    assert reasons.count("LINK_PASSWORD_WRONG") <= 5
    assert "LINK_PASSWORD_THROTTLED" in reasons
    with pytest.raises(CumuloRpcError) as caught:
        await stranger.files.open_link(link.token, "the right one")  # even the right one waits
    assert caught.value.reason == "LINK_PASSWORD_THROTTLED" and caught.value.retry_after_seconds > 0


async def test_shared_folder_lists_its_files_and_serves_them(user, stranger, tmp_path):
    owner, _ = user
    folder = await owner.files.mkdir("", f"album-{uuid.uuid4().hex[:6]}")
    path = tmp_path / "one.jpg"
    path.write_bytes(os.urandom(1000))
    await owner.files.upload(path, parent_id=folder.node_id)
    link = await owner.files.share(folder.node_id)
    opened = await stranger.files.open_link(link.token)
    assert opened.root.name == folder.name and [c.name for c in opened.children] == ["one.jpg"]
    await stranger.files.download_link(link.token, tmp_path / "got", node_id=opened.children[0].node_id)
    assert (tmp_path / "got").read_bytes() == path.read_bytes()
    with pytest.raises(CumuloRpcError) as caught:
        await stranger.files.download_link(link.token, tmp_path / "x", node_id=str(uuid.uuid4()))
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


async def test_trashed_item_link_stops_working(user, stranger, tmp_path):
    owner, _ = user
    _, node = await _file(owner, tmp_path)
    link = await owner.files.share(node.node_id)
    await owner.files.delete(node.node_id)
    with pytest.raises(CumuloRpcError) as caught:
        await stranger.files.open_link(link.token)
    assert caught.value.reason == "LINK_NOT_FOUND"


async def test_blocking_a_file_disconnects_its_links(user, stranger, blob, tmp_path):
    owner, _ = user
    _, node = await _file(owner, tmp_path)
    link = await owner.files.share(node.node_id)
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as channel:
        await channel.BlockFile(
            blob_pb2.BlockFileRequest(account_id=owner.store.tokens.account_id, node_id=node.node_id, reason="complaint", actor="mod")
        )
    with pytest.raises(CumuloRpcError) as caught:
        await stranger.files.open_link(link.token)
    assert caught.value.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(CumuloRpcError) as caught:
        await owner.files.share(node.node_id)
    assert caught.value.reason == "CONTENT_BLOCKED"


async def test_unknown_token_and_unregistered_client_are_refused(gateway):
    async with Cumulo(gateway) as client:
        with pytest.raises(CumuloRpcError) as caught:
            await client.files.open_link("x" * 32)
        assert caught.value.reason == "LINK_NOT_FOUND"
    async with Cumulo(gateway, client_id="not-registered") as client:
        with pytest.raises(CumuloRpcError) as caught:
            await client.files.open_link("x" * 32)
        assert caught.value.reason == "CLIENT_NOT_AUTHORIZED"


async def test_another_account_cannot_list_or_revoke_my_links(user, gateway, tmp_path):
    owner, _ = user
    _, node = await _file(owner, tmp_path)
    link = await owner.files.share(node.node_id)
    async with Cumulo(gateway) as other:
        email = f"other-{uuid.uuid4().hex[:8]}@example.com"
        await other.register(email=email, password="correct horse battery staple", birth_date=dt.date(1991, 1, 1))
        await other.login(email, "correct horse battery staple")
        assert await other.files.links() == []
        with pytest.raises(CumuloRpcError) as caught:
            await other.files.revoke_link(link.link_id)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(CumuloRpcError) as caught:
            await other.files.share(node.node_id)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert [found.link_id for found in await owner.files.links()] == [link.link_id]


async def test_minor_cannot_create_public_links(user, gateway, tmp_path):
    guardian, _ = user
    email = f"kid-{uuid.uuid4().hex[:8]}@example.com"
    today = dt.date.today()
    await guardian.call(
        guardian.auth.CreateMinorAccount,
        auth_pb2.CreateMinorAccountRequest(
            email=email, password="a long kid passphrase", guardian_consent=True,
            birth_date=auth_pb2.Date(year=today.year - 12, month=1, day=1),
        ),
    )
    async with Cumulo(gateway) as kid:
        await kid.login(email, "a long kid passphrase")
        _, node = await _file(kid, tmp_path, "drawing.png", 1000)
        with pytest.raises(CumuloRpcError) as caught:
            await kid.files.share(node.node_id)
        assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert caught.value.reason == "MINOR_CANNOT_SHARE_PUBLICLY"


async def test_link_creation_is_rate_limited(user, tmp_path):
    owner, _ = user
    _, node = await _file(owner, tmp_path, size=100)
    made = 0
    with pytest.raises(CumuloRpcError) as caught:
        for _ in range(50):
            await owner.files.share(node.node_id)
            made += 1
    assert made == 10
    assert caught.value.reason == "LINK_RATE_LIMITED" and caught.value.retry_after_seconds > 0


def test_a_link_token_never_looks_like_a_command_line_option():
    tokens = {new_link_token() for _ in range(5000)}  # about 78 would start with "-" unchecked
    assert len(tokens) == 5000
    assert not any(token.startswith("-") for token in tokens)
    assert all(len(token) == 32 for token in tokens)
