"""Downloads by signed URL: blob checks the download and answers a short-lived URL of the stored
bytes; the SDK GETs it over HTTPS from the gateway's route to the object store, so the bytes
never pass through a Python service. The bytes are hashed and written as they come; a broken
connection resumes with a Range from the last byte written (the URL is asked for again when it
has expired), and the file is only put in place once its SHA-256 matches."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import os
import pathlib
import secrets
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import BinaryIO

import aiohttp

from cumulo.blob.v1 import blob_pb2
from cumulo_sdk.transfer import Progress

READ = 4 * 1024 * 1024  # bytes per read of the response body (and per hash update and write)
ATTEMPTS = 5


class UrlRefused(Exception):
    """The URL answered something other than the bytes (expired, refused, not found)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the download URL answered HTTP {status}")
        self.status = status


async def fetch_to(
    dest: pathlib.Path,
    first: blob_pb2.DownloadUrl,
    renew: Callable[[], Awaitable[blob_pb2.DownloadUrl]],
    *,
    context: ssl.SSLContext,
    progress: Progress | None = None,
) -> blob_pb2.Node:
    """The file at `first.url` written to `dest` once its SHA-256 matches `first.file`'s;
    `renew` asks blob for a new URL (after an expiry). IntegrityError-free failures raise
    UrlRefused or OSError/aiohttp errors for the caller to fall back on the gRPC stream."""
    from cumulo_sdk.files import IntegrityError

    node, url = first.file, first.url
    scratch = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.cumulo-part")
    digest = hashlib.sha256()
    done = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
    loop = asyncio.get_running_loop()
    # Each piece is hashed and written by a thread (both let go of the GIL) while the next one
    # is read and decrypted: one piece in hand at a time, so memory stays at two reads.
    writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cumulo-fetch")
    writing: asyncio.Future[None] | None = None

    def keep(handle: BinaryIO, piece: bytes) -> None:
        handle.write(piece)
        digest.update(piece)

    try:
        with open(scratch, "xb") as handle, _draining(writer):
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context), timeout=timeout, read_bufsize=READ
            ) as session:
                attempt = 0
                while done < node.size or (node.size == 0 and attempt == 0):
                    attempt += 1
                    headers = {"Range": f"bytes={done}-"} if done else {}
                    try:
                        async with session.get(url, headers=headers) as response:
                            if response.status in (400, 403) and attempt < ATTEMPTS:
                                url = (await renew()).url  # expired on the way: a fresh one, same bytes
                                continue
                            if response.status not in (200, 206):
                                raise UrlRefused(response.status)
                            if done and response.status == 200 and "Content-Range" not in response.headers:
                                raise UrlRefused(response.status)  # the range was ignored: cannot resume
                            async for chunk in response.content.iter_chunked(READ):
                                if writing is not None:
                                    await writing
                                writing = loop.run_in_executor(writer, keep, handle, chunk)
                                done += len(chunk)
                                if progress:
                                    progress(done, node.size)
                    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError):
                        if attempt >= ATTEMPTS:
                            raise
                        await asyncio.sleep(min(0.2 * 2**attempt, 5))
                    if node.size == 0:
                        break
                if writing is not None:
                    await writing
        if done != node.size or digest.hexdigest() != node.sha256:
            raise IntegrityError(f"{dest.name}: the downloaded bytes do not match the file's SHA-256")
        os.replace(scratch, dest)
        return node
    finally:
        scratch.unlink(missing_ok=True)


@contextlib.contextmanager
def _draining(writer: concurrent.futures.ThreadPoolExecutor) -> Iterator[None]:
    """However the download ends (a cancellation too), the piece in the thread lands before
    the file is closed and removed."""
    try:
        yield
    finally:
        writer.shutdown(wait=True)
