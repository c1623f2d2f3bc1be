"""The SDK's signed-URL download (cumulo_sdk.fetch) against an HTTPS server of this test (with
the session's certificate) that misbehaves on purpose: a connection cut mid-body resumes with a
Range from the last byte written, an expired URL is asked for again, bytes that do not match
the SHA-256 are never put in place, and a server that ignores the Range is not trusted."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pathlib
import ssl
from collections.abc import Callable

import pytest
from aiohttp import web

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing.https import https_server
from cumulo_sdk.fetch import UrlRefused, fetch_to
from cumulo_sdk.files import IntegrityError

MIB = 1024 * 1024
CONTENT = os.urandom(9 * MIB + 123)


class Misbehaving:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Range header)
        self.cut_after: int | None = 3 * MIB + 7  # the first answer stops there, the connection cut
        self.expired = {"/old"}
        self.ignore_range = False
        self.content = CONTENT
        self.client_holds_the_cut = asyncio.Event()  # set by the client's progress

    def watching(self, seen: list[int]) -> Callable[[int, int], None]:
        """The client's progress callback: records what it holds and tells the server when the
        cut can be made."""

        def progress(done: int, total: int) -> None:
            seen.append(done)
            if self.cut_after is not None and done >= self.cut_after:
                self.client_holds_the_cut.set()

        return progress

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, request.headers.get("Range", "")))
        if request.path in self.expired:
            return web.Response(status=403, text="Request has expired")
        start = 0
        if request.headers.get("Range") and not self.ignore_range:
            start = int(request.headers["Range"].removeprefix("bytes=").removesuffix("-"))
        response = web.StreamResponse(status=206 if start else 200)
        response.content_length = len(self.content) - start
        if start:
            response.headers["Content-Range"] = f"bytes {start}-{len(self.content) - 1}/{len(self.content)}"
        await response.prepare(request)
        if self.cut_after is not None and start == 0:
            await response.write(self.content[: self.cut_after])
            # Cut only once the client holds every byte sent: bytes still in flight when the
            # connection drops are lost to it, and it resumes from what it wrote.
            await asyncio.wait_for(self.client_holds_the_cut.wait(), 60)
            self.cut_after = None
            assert request.transport is not None
            request.transport.close()  # mid-body: the client sees a payload error
            return response
        await response.write(self.content[start:])
        return response


def _signed(url: str, content: bytes = CONTENT) -> blob_pb2.DownloadUrl:
    node = blob_pb2.Node(node_id="n", name="film.bin", size=len(content), sha256=hashlib.sha256(content).hexdigest())
    return blob_pb2.DownloadUrl(url=url, file=node)


def _context(infra) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(infra.tls.ca))


def _left_behind(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_a_cut_connection_resumes_from_the_last_byte_written(infra, tmp_path):
    behaviour = Misbehaving()
    async with https_server(infra.tls, behaviour.handle) as base:
        seen: list[int] = []
        node = await fetch_to(
            tmp_path / "film.bin",
            _signed(f"{base}/file"),
            renew=_no_renewal,
            context=_context(infra),
            progress=behaviour.watching(seen),
        )
    assert (tmp_path / "film.bin").read_bytes() == CONTENT and node.size == len(CONTENT)
    assert [r for _, r in behaviour.requests] == ["", f"bytes={3 * MIB + 7}-"]
    assert seen == sorted(seen) and seen[-1] == len(CONTENT)
    assert _left_behind(tmp_path) == ["film.bin"]


async def test_an_expired_url_is_asked_for_again(infra, tmp_path):
    behaviour = Misbehaving()
    behaviour.cut_after = None
    async with https_server(infra.tls, behaviour.handle) as base:
        renewed: list[str] = []

        async def renew() -> blob_pb2.DownloadUrl:
            renewed.append("yes")
            return _signed(f"{base}/fresh")

        await fetch_to(tmp_path / "film.bin", _signed(f"{base}/old"), renew=renew, context=_context(infra))
    assert renewed == ["yes"] and [p for p, _ in behaviour.requests] == ["/old", "/fresh"]
    assert (tmp_path / "film.bin").read_bytes() == CONTENT


async def test_bytes_that_do_not_match_the_sha256_are_never_put_in_place(infra, tmp_path):
    behaviour = Misbehaving()
    behaviour.cut_after = None
    behaviour.content = CONTENT[:-1] + bytes([CONTENT[-1] ^ 1])  # one bit flipped on the way
    async with https_server(infra.tls, behaviour.handle) as base:
        with pytest.raises(IntegrityError):
            await fetch_to(tmp_path / "film.bin", _signed(f"{base}/file"), renew=_no_renewal, context=_context(infra))
    assert _left_behind(tmp_path) == []


async def test_a_server_that_ignores_the_range_is_not_resumed_from(infra, tmp_path):
    behaviour = Misbehaving()
    behaviour.ignore_range = True
    async with https_server(infra.tls, behaviour.handle) as base:
        with pytest.raises(UrlRefused):
            await fetch_to(
                tmp_path / "film.bin",
                _signed(f"{base}/file"),
                renew=_no_renewal,
                context=_context(infra),
                progress=behaviour.watching([]),
            )
    assert _left_behind(tmp_path) == []  # the caller streams through gRPC instead


async def _no_renewal() -> blob_pb2.DownloadUrl:
    raise AssertionError("the URL had not expired")
