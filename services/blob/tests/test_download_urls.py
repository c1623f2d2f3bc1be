"""Signed download URLs: blob checks what Download checks, then answers a short-lived SigV4 URL
of the file's stored content, fetched through the gateway's route to the object store (the
bytes never pass through a service). The object store enforces the signature and the expiry."""

import asyncio
import hashlib
import http.client
import os
import ssl
import urllib.parse
import uuid

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_devstack.testing import expect_error
from cumulo_sdk import Cumulo, CumuloRpcError

DATA = os.urandom(3 * 1024 * 1024 + 17)


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One HTTPS request to a signed URL, trusting the session's CA."""
    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=os.environ["CUMULO_CA"])
    connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=60)
    try:
        connection.request(method, f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


async def get(url: str, **kwargs) -> tuple[int, bytes]:
    return await asyncio.to_thread(fetch, url, **kwargs)


async def test_the_owner_fetches_the_file_whole_and_by_range_through_the_gateway(alice, gateway):
    node = await alice.put("photo.jpg", DATA)
    answer = await alice.rpc("GetDownloadUrl", blob_pb2.GetDownloadUrlRequest(node_id=node.node_id))
    url = answer.download.url
    assert urllib.parse.urlsplit(url).netloc == gateway  # one endpoint for clients: the gateway
    assert answer.download.file.sha256 == hashlib.sha256(DATA).hexdigest()
    status, body = await get(url)
    assert status == 200 and body == DATA
    status, part = await get(url, headers={"Range": "bytes=1000-1999"})
    # (rclone answers a range with 200 and the Content-Range; S3 itself with 206.)
    assert status in (200, 206) and part == DATA[1000:2000]


async def test_a_tampered_url_is_refused(alice):
    node = await alice.put("a.txt", b"alice's words")
    other = await alice.put("b.txt", b"alice's other words")
    url = (await alice.rpc("GetDownloadUrl", blob_pb2.GetDownloadUrlRequest(node_id=node.node_id))).download.url
    other_url = (await alice.rpc("GetDownloadUrl", blob_pb2.GetDownloadUrlRequest(node_id=other.node_id))).download.url
    parts = urllib.parse.urlsplit(url)
    # Another object's path with this URL's signature.
    swapped = urllib.parse.urlunsplit(parts._replace(path=urllib.parse.urlsplit(other_url).path))
    assert (await get(swapped))[0] == 403
    # A longer lifetime than was signed.
    query = urllib.parse.parse_qs(parts.query)
    query["X-Amz-Expires"] = ["604800"]
    longer = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))
    assert (await get(longer))[0] == 403
    # No signature at all: not even routed to the object store.
    assert (await get(urllib.parse.urlunsplit(parts._replace(query=""))))[0] == 404


async def test_only_get_and_head_go_through(alice):
    node = await alice.put("keep.txt", b"keep me")
    url = (await alice.rpc("GetDownloadUrl", blob_pb2.GetDownloadUrlRequest(node_id=node.node_id))).download.url
    for method in ("PUT", "DELETE", "POST"):
        assert (await get(url, method=method))[0] == 404, method
    assert (await get(url))[1] == b"keep me"  # still there


async def test_an_expired_url_is_refused(alice, blob):
    """The object store enforces the expiry: a URL signed for one second, fetched after three."""
    node = await alice.put("brief.txt", b"soon gone")
    _, key, _, _ = await blob.app.downloads.open(uuid.UUID(alice.account_id), node.node_id, 0, 0)
    url = await blob.app.storage.presigned_get(key, public_endpoint=blob.app.settings.download_url_base, expires_in=1)
    await asyncio.sleep(3)
    status, body = await get(url)
    assert status in (400, 403) and b"soon gone" not in body  # rclone says 400 "expired", S3 403


async def test_someone_elses_file_gets_no_url(alice, bob):
    node = await alice.put("private.txt", b"mine")
    with pytest.raises(CumuloRpcError) as caught:
        await bob.rpc("GetDownloadUrl", blob_pb2.GetDownloadUrlRequest(node_id=node.node_id))
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


async def test_bad_input_names_the_field(alice):
    await expect_error(
        alice.rpc("GetDownloadUrl", blob_pb2.GetDownloadUrlRequest(node_id="not-an-id")), grpc.StatusCode.INVALID_ARGUMENT, field="node_id"
    )


async def test_a_share_link_gives_a_url_with_the_password_and_none_after_revocation(alice, gateway):
    node = await alice.put("shared.bin", DATA)
    link = (
        await alice.rpc("CreateShareLink", blob_pb2.CreateShareLinkRequest(node_id=node.node_id, password="open sesame 42"))
    ).link
    async with Cumulo(gateway) as stranger:
        stub = blob_pb2_grpc.ShareLinkServiceStub(stranger.channel)
        with pytest.raises(CumuloRpcError) as caught:
            await stranger.call(stub.GetSharedDownloadUrl, blob_pb2.GetSharedDownloadUrlRequest(token=link.token, password="guess"), authenticated=False)
        assert caught.value.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
        answer = await stranger.call(
            stub.GetSharedDownloadUrl, blob_pb2.GetSharedDownloadUrlRequest(token=link.token, password="open sesame 42"), authenticated=False
        )
        status, body = await get(answer.download.url)
        assert status == 200 and hashlib.sha256(body).hexdigest() == answer.download.file.sha256
        await alice.rpc("RevokeShareLink", blob_pb2.RevokeShareLinkRequest(link_id=link.link_id))
        with pytest.raises(CumuloRpcError):
            await stranger.call(
                stub.GetSharedDownloadUrl, blob_pb2.GetSharedDownloadUrlRequest(token=link.token, password="open sesame 42"), authenticated=False
            )


async def test_a_file_shared_with_a_user_gives_them_a_url(alice, bob):
    node = await alice.put("for-bob.txt", b"hello bob")
    share = (await alice.rpc("ShareWithUser", blob_pb2.ShareWithUserRequest(node_id=node.node_id, recipient=bob.email))).share
    answer = await bob.rpc("GetSharedWithMeDownloadUrl", blob_pb2.GetSharedWithMeDownloadUrlRequest(share_id=share.share_id))
    assert (await get(answer.download.url))[1] == b"hello bob"
    # The share is bob's to open: alice (or anyone else) asking with its id is refused.
    with pytest.raises(CumuloRpcError):
        await alice.rpc("GetSharedWithMeDownloadUrl", blob_pb2.GetSharedWithMeDownloadUrlRequest(share_id=share.share_id))


def _object_store_requests(admin_port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    try:
        connection.request("GET", "/stats?filter=^cluster\\.object_store\\.upstream_rq_total$")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    return int(text.split(":")[1]) if ":" in text else 0


async def test_the_sdk_downloads_by_url_by_default_and_checks_the_sha256(alice, gateway_ports, tmp_path):
    node = await alice.put("by-url.bin", DATA)
    before = await asyncio.to_thread(_object_store_requests, gateway_ports[1])
    seen: list[int] = []
    await alice.client.files.download(node.node_id, tmp_path / "back.bin", progress=lambda done, total: seen.append(done))
    assert (tmp_path / "back.bin").read_bytes() == DATA
    assert seen and seen[-1] == len(DATA)
    assert await asyncio.to_thread(_object_store_requests, gateway_ports[1]) > before  # the bytes came the URL's way
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".cumulo-part")]


async def test_the_sdk_follows_a_share_link_by_url(alice, gateway, tmp_path):
    node = await alice.put("linked.bin", DATA[:100_000])
    link = (await alice.rpc("CreateShareLink", blob_pb2.CreateShareLinkRequest(node_id=node.node_id))).link
    async with Cumulo(gateway) as stranger:
        got = await stranger.files.download_link(link.token, tmp_path / "linked.bin")
    assert got.node_id == node.node_id and (tmp_path / "linked.bin").read_bytes() == DATA[:100_000]
