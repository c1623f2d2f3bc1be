"""Files through the SDK: folders by path, resumable uploads that verify nothing but what
the server confirms, and downloads that check SHA-256 before the file appears."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_sdk.errors import CumuloRpcError

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

CHUNK = 2 * 1024 * 1024  # bytes per upload message
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


class IntegrityError(Exception):
    """A download's bytes do not have the SHA-256 the server recorded: nothing was written."""


def sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class PendingUploads:
    """Upload ids of unfinished uploads, by local file, so a new run resumes them."""

    path: pathlib.Path | None

    def _load(self) -> dict[str, str]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except ValueError:
            return {}

    def get(self, key: str) -> str | None:
        return self._load().get(key)

    def put(self, key: str, upload_id: str | None) -> None:
        if self.path is None:
            return
        entries = self._load()
        if upload_id is None:
            entries.pop(key, None)
        else:
            entries[key] = upload_id
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.write_text(json.dumps(entries))


class Files:
    def __init__(self, client: Cumulo, pending: PendingUploads | None = None) -> None:
        self.client = client
        self.stub = blob_pb2_grpc.BlobServiceStub(client.channel)
        self.pending = pending or PendingUploads(None)

    async def call(self, method, request):
        return await self.client.call(method, request)

    # --- folders and paths ---------------------------------------------------------------

    async def mkdir(self, parent_id: str, name: str) -> blob_pb2.Node:
        return (await self.call(self.stub.CreateFolder, blob_pb2.CreateFolderRequest(parent_id=parent_id, name=name))).folder

    async def ls(self, folder_id: str = "") -> list[blob_pb2.Node]:
        found: list[blob_pb2.Node] = []
        token = ""
        while True:
            page = await self.call(
                self.stub.ListFolder, blob_pb2.ListFolderRequest(folder_id=folder_id, page_size=1000, page_token=token)
            )
            found.extend(page.nodes)
            token = page.next_page_token
            if not token:
                return found

    async def resolve(self, path: str) -> blob_pb2.Node | None:
        """A "/folder/file" path to its node; None for the root folder."""
        node: blob_pb2.Node | None = None
        for part in [p for p in path.split("/") if p]:
            children = await self.ls(node.node_id if node else "")
            match = next((c for c in children if c.name == part), None)
            if match is None:
                raise CumuloRpcError(grpc.StatusCode.NOT_FOUND, f"{path}: no such file or folder", reason="NODE_NOT_FOUND")
            node = match
        return node

    async def makedirs(self, path: str) -> str:
        """The folder id of `path`, creating the folders that are missing."""
        folder_id = ""
        for part in [p for p in path.split("/") if p]:
            children = await self.ls(folder_id)
            match = next((c for c in children if c.name == part), None)
            folder_id = match.node_id if match else (await self.mkdir(folder_id, part)).node_id
        return folder_id

    async def rename(self, node_id: str, new_name: str) -> blob_pb2.Node:
        return (await self.call(self.stub.Rename, blob_pb2.RenameRequest(node_id=node_id, new_name=new_name))).node

    async def move(self, node_id: str, new_parent_id: str) -> blob_pb2.Node:
        return (await self.call(self.stub.Move, blob_pb2.MoveRequest(node_id=node_id, new_parent_id=new_parent_id))).node

    async def delete(self, node_id: str) -> None:
        await self.call(self.stub.Delete, blob_pb2.DeleteRequest(node_id=node_id))

    async def trash(self) -> list[blob_pb2.Node]:
        found: list[blob_pb2.Node] = []
        token = ""
        while True:
            page = await self.call(self.stub.ListTrash, blob_pb2.ListTrashRequest(page_size=1000, page_token=token))
            found.extend(page.nodes)
            token = page.next_page_token
            if not token:
                return found

    async def restore(self, node_id: str) -> blob_pb2.Node:
        return (await self.call(self.stub.Restore, blob_pb2.RestoreRequest(node_id=node_id))).node

    async def empty_trash(self) -> int:
        return (await self.call(self.stub.EmptyTrash, blob_pb2.EmptyTrashRequest())).deleted

    async def usage(self) -> blob_pb2.GetUsageResponse:
        return await self.call(self.stub.GetUsage, blob_pb2.GetUsageRequest())

    # --- share links -------------------------------------------------------------------

    async def share(self, node_id: str, *, expires_at: float | None = None, password: str = "") -> blob_pb2.ShareLink:
        request = blob_pb2.CreateShareLinkRequest(node_id=node_id, password=password)
        if expires_at is not None:
            request.expires_at.FromSeconds(int(expires_at))
        return (await self.call(self.stub.CreateShareLink, request)).link

    async def links(self) -> list[blob_pb2.ShareLink]:
        return list((await self.call(self.stub.ListShareLinks, blob_pb2.ListShareLinksRequest())).links)

    async def revoke_link(self, link_id: str) -> None:
        await self.call(self.stub.RevokeShareLink, blob_pb2.RevokeShareLinkRequest(link_id=link_id))

    async def open_link(self, token: str, password: str = "") -> blob_pb2.OpenShareLinkResponse:
        stub = blob_pb2_grpc.ShareLinkServiceStub(self.client.channel)
        return await self.client.call(
            stub.OpenShareLink, blob_pb2.OpenShareLinkRequest(token=token, password=password), authenticated=False
        )

    async def download_link(
        self, token: str, dest: pathlib.Path, *, password: str = "", node_id: str = "", progress: Progress | None = None
    ) -> blob_pb2.Node:
        """A shared file, written to `dest` only once its SHA-256 checks out."""
        stub = blob_pb2_grpc.ShareLinkServiceStub(self.client.channel)
        stream = stub.DownloadShared(
            blob_pb2.DownloadSharedRequest(token=token, password=password, node_id=node_id), metadata=self.client.metadata()
        )
        return await self._save(stream, dest, progress)

    # --- sharing with users --------------------------------------------------------------

    async def share_with(self, node_id: str, recipient: str) -> blob_pb2.UserShare:
        return (await self.call(self.stub.ShareWithUser, blob_pb2.ShareWithUserRequest(node_id=node_id, recipient=recipient))).share

    async def my_shares(self) -> list[blob_pb2.UserShare]:
        return list((await self.call(self.stub.ListUserShares, blob_pb2.ListUserSharesRequest())).shares)

    async def unshare(self, share_id: str) -> None:
        await self.call(self.stub.RevokeUserShare, blob_pb2.RevokeUserShareRequest(share_id=share_id))

    async def shared_with_me(self) -> list[blob_pb2.UserShare]:
        return list((await self.call(self.stub.ListSharedWithMe, blob_pb2.ListSharedWithMeRequest())).shares)

    async def open_shared(self, share_id: str) -> blob_pb2.OpenSharedWithMeResponse:
        return await self.call(self.stub.OpenSharedWithMe, blob_pb2.OpenSharedWithMeRequest(share_id=share_id))

    async def download_shared(
        self, share_id: str, dest: pathlib.Path, *, node_id: str = "", progress: Progress | None = None
    ) -> blob_pb2.Node:
        token = await self.client.access_token()
        stream = self.stub.DownloadSharedWithMe(
            blob_pb2.DownloadSharedWithMeRequest(share_id=share_id, node_id=node_id), metadata=self.client.metadata(token)
        )
        return await self._save(stream, dest, progress)

    # --- upload -------------------------------------------------------------------------

    async def upload(
        self,
        path: pathlib.Path,
        *,
        parent_id: str = "",
        name: str | None = None,
        content_type: str = "",
        progress: Progress | None = None,
        attempts: int = 5,
        sha256: str = "",
    ) -> blob_pb2.Node:
        """Uploads a local file; resumes an earlier unfinished upload of the same file.
        `sha256`, when the caller has just hashed the file, saves reading it once more."""
        path = path.resolve()
        stat = path.stat()
        digest = sha256 or sha256_of(path)
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{digest}|{parent_id}|{name or path.name}"
        try:
            return await self._upload(path, key, stat.st_size, digest, parent_id, name, content_type, progress, attempts)
        except CumuloRpcError as err:
            if err.reason not in ("UPLOAD_LOST", "UPLOAD_CLOSED") or self.pending.get(key) is None:
                raise
            self.pending.put(key, None)  # the earlier upload cannot go on: start a new one
            return await self._upload(path, key, stat.st_size, digest, parent_id, name, content_type, progress, attempts)

    async def _upload(
        self, path: pathlib.Path, key: str, size: int, digest: str, parent_id: str, name: str | None,
        content_type: str, progress: Progress | None, attempts: int,
    ) -> blob_pb2.Node:
        upload_id = self.pending.get(key)
        committed = 0
        if upload_id is not None:
            try:
                status = await self.call(self.stub.GetUpload, blob_pb2.GetUploadRequest(upload_id=upload_id))
                if status.HasField("file"):
                    self.pending.put(key, None)
                    return status.file
                committed = status.committed_offset
            except CumuloRpcError:
                upload_id = None  # expired or gone: start afresh
        if upload_id is None:
            started = await self.call(
                self.stub.StartUpload,
                blob_pb2.StartUploadRequest(
                    parent_id=parent_id, name=name or path.name, size=size, sha256=digest, content_type=content_type
                ),
            )
            if started.HasField("file"):
                if progress:
                    progress(size, size)
                return started.file  # the account already holds these bytes
            upload_id, committed = started.upload_id, started.committed_offset
            self.pending.put(key, upload_id)
        for attempt in range(attempts):
            try:
                response = await self._send(upload_id, path, committed, size, progress)
            except CumuloRpcError as err:
                if err.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or attempt == attempts - 1:
                    raise
                await asyncio.sleep(min(2**attempt * 0.2, 5))
                status = await self.call(self.stub.GetUpload, blob_pb2.GetUploadRequest(upload_id=upload_id))
                committed = status.committed_offset
                continue
            if response.HasField("file"):
                self.pending.put(key, None)
                return response.file
            committed = response.committed_offset
        raise CumuloRpcError(grpc.StatusCode.UNAVAILABLE, "the upload did not finish; run it again to resume", reason="UPLOAD_INCOMPLETE")

    async def _send(
        self, upload_id: str, path: pathlib.Path, offset: int, size: int, progress: Progress | None
    ) -> blob_pb2.UploadChunksResponse:
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

        token = await self.client.access_token()
        try:
            return await self.stub.UploadChunks(chunks(), metadata=self.client.metadata(token))
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None

    # --- download -----------------------------------------------------------------------

    async def download(self, node_id: str, dest: pathlib.Path, *, progress: Progress | None = None) -> blob_pb2.Node:
        """Writes the file to `dest` only once its SHA-256 matches the server's record."""
        token = await self.client.access_token()
        stream = self.stub.Download(blob_pb2.DownloadRequest(node_id=node_id), metadata=self.client.metadata(token))
        return await self._save(stream, dest, progress)

    async def _save(self, stream: Any, dest: pathlib.Path, progress: Progress | None) -> blob_pb2.Node:
        scratch = dest.with_name(f".{dest.name}.cumulo-part")
        digest = hashlib.sha256()
        node: blob_pb2.Node | None = None
        done = 0
        try:
            with open(scratch, "wb") as handle:
                async for message in stream:
                    if message.HasField("file"):
                        node = message.file
                        continue
                    handle.write(message.data)
                    digest.update(message.data)
                    done += len(message.data)
                    if progress and node is not None:
                        progress(done, node.size)
            if node is None or digest.hexdigest() != node.sha256:
                raise IntegrityError(f"{dest.name}: the downloaded bytes do not match the file's SHA-256")
            os.replace(scratch, dest)
            return node
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None
        finally:
            scratch.unlink(missing_ok=True)

    async def read_range(self, node_id: str, offset: int, length: int) -> bytes:
        token = await self.client.access_token()
        data = bytearray()
        try:
            async for message in self.stub.Download(
                blob_pb2.DownloadRequest(node_id=node_id, offset=offset, length=length), metadata=self.client.metadata(token)
            ):
                if not message.HasField("file"):
                    data += message.data
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None
        return bytes(data)
