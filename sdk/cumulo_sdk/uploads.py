"""Resumable uploads. The server writes what it receives in parts (8 MiB by default) and
answers the stream only at its end, so while the bytes go it is asked, about once a second,
how many it has stored: a progress hears both (sent, stored), and an interrupted run says
truthfully where the next one resumes: at the stored bytes, however many were sent."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from cumulo.blob.v1 import blob_pb2
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.transfer import CHUNK, Progress, TransferProgress, hash_file, tell_stored

if TYPE_CHECKING:
    from cumulo_sdk.files import Files

# An interrupted upload asks the server how far it got, for this long at most.
STORED_QUESTION_SECONDS = 2.0
# While a stream goes, how often the server is asked what it has stored of it.
STORED_POLL_SECONDS = 1.0
# Refusals a new attempt overcomes: the server has not yet let go of the stream an interrupted
# run left (its writer lock), or it moved the committed offset since this run asked.
SETTLING_REASONS = ("UPLOAD_BUSY", "OFFSET_MISMATCH")


@dataclasses.dataclass
class _Stored:
    """The most the server has said it stores of an upload (its committed offset only grows)."""

    offset: int

    def heard(self, offset: int) -> None:
        self.offset = max(self.offset, offset)


class Uploads:
    def __init__(self, files: Files) -> None:
        self.files = files
        self.stub = files.stub
        self.pending = files.pending

    async def upload(
        self, path: pathlib.Path, *, parent_id: str, name: str | None, content_type: str, progress: Progress | None,
        attempts: int, sha256: str,
    ) -> blob_pb2.Node:
        path = path.resolve()
        stat = path.stat()
        digest = sha256 or await hash_file(path, progress)
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{digest}|{parent_id}|{name or path.name}"
        try:
            return await self._upload(path, key, stat.st_size, digest, parent_id, name, content_type, progress, attempts)
        except CumuloRpcError as err:
            if err.reason not in ("UPLOAD_LOST", "UPLOAD_CLOSED") or self.pending.get(key) is None:
                raise
            self.pending.put(key, None)  # the earlier upload cannot go on: start a new one
            return await self._upload(path, key, stat.st_size, digest, parent_id, name, content_type, progress, attempts)

    async def _status(self, upload_id: str) -> blob_pb2.GetUploadResponse:
        return await self.files.call(self.stub.GetUpload, blob_pb2.GetUploadRequest(upload_id=upload_id))

    async def _upload(
        self, path: pathlib.Path, key: str, size: int, digest: str, parent_id: str, name: str | None,
        content_type: str, progress: Progress | None, attempts: int,
    ) -> blob_pb2.Node:
        upload_id = self.pending.get(key)
        committed = 0
        if upload_id is not None:
            try:
                status = await self._status(upload_id)
                if status.HasField("file"):
                    self.pending.put(key, None)
                    tell_stored(progress, size, size)
                    return status.file
                committed = status.committed_offset
            except CumuloRpcError as err:
                if err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise  # no answer is not "gone": the next run resumes this upload still
                upload_id = None  # expired or gone: start afresh
        if upload_id is None:
            started = await self.files.call(
                self.stub.StartUpload,
                blob_pb2.StartUploadRequest(
                    parent_id=parent_id, name=name or path.name, size=size, sha256=digest, content_type=content_type
                ),
            )
            if started.HasField("file"):
                if progress:
                    progress(size, size)
                tell_stored(progress, size, size)
                return started.file  # the account already holds these bytes
            upload_id, committed = started.upload_id, started.committed_offset
            self.pending.put(key, upload_id)
        tell_stored(progress, committed, size)
        for attempt in range(attempts):
            stored = _Stored(committed)
            try:
                response = await self._send(upload_id, path, size, progress, stored)
            except CumuloRpcError as err:
                transient = err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
                if not (transient or err.reason in SETTLING_REASONS) or attempt == attempts - 1:
                    raise
                await asyncio.sleep(min(2**attempt * 0.2, 5))
                committed = (await self._status(upload_id)).committed_offset
                continue
            except asyncio.CancelledError:
                await self._tell_stored(upload_id, stored, size, progress)
                raise
            if response.HasField("file"):
                self.pending.put(key, None)
                tell_stored(progress, size, size)
                return response.file
            committed = response.committed_offset
            tell_stored(progress, committed, size)
        raise CumuloRpcError(grpc.StatusCode.UNAVAILABLE, "the upload did not finish; run it again to resume", reason="UPLOAD_INCOMPLETE")

    async def _tell_stored(self, upload_id: str, stored: _Stored, size: int, progress: Progress | None) -> None:
        """The upload was interrupted (its id stays saved for the next run): how far the next run
        will go on from, asked of the server briefly; what it last said when it does not answer."""
        if not isinstance(progress, TransferProgress):
            return
        try:
            stored.heard((await asyncio.wait_for(self._status(upload_id), STORED_QUESTION_SECONDS)).committed_offset)
        except (CumuloRpcError, TimeoutError):
            pass
        progress.stored(stored.offset, size)

    async def _watch(self, upload_id: str, size: int, progress: TransferProgress, stored: _Stored) -> None:
        """What the server has stored while the stream goes (its answer comes at the end only)."""
        while True:
            await asyncio.sleep(STORED_POLL_SECONDS)
            try:
                stored.heard((await self._status(upload_id)).committed_offset)
            except CumuloRpcError:
                continue  # the stream itself fails if something is wrong
            progress.stored(stored.offset, size)

    async def _send(
        self, upload_id: str, path: pathlib.Path, size: int, progress: Progress | None, stored: _Stored
    ) -> blob_pb2.UploadChunksResponse:
        offset = stored.offset

        async def chunks() -> AsyncIterator[blob_pb2.UploadChunksRequest]:
            done = offset
            with open(path, "rb") as handle:
                handle.seek(offset)
                first = True
                while True:
                    block = handle.read(CHUNK)
                    if first:
                        yield blob_pb2.UploadChunksRequest(upload_id=upload_id, offset=offset, data=block)
                        first = False
                    elif block:
                        yield blob_pb2.UploadChunksRequest(data=block)
                    if not block:
                        return
                    done += len(block)
                    if progress:
                        progress(done, size)

        metadata = await self.files.signed_metadata()
        watching = asyncio.create_task(self._watch(upload_id, size, progress, stored)) if isinstance(progress, TransferProgress) else None
        try:
            return await self.stub.UploadChunks(chunks(), metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise self.files.client.rpc_error(exc) from None
        finally:
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
