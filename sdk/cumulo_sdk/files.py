"""Files through the SDK: folders by path, resumable uploads that verify nothing but what
the server confirms, and downloads that check SHA-256 before the file appears."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import secrets
import ssl
import unicodedata
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import grpc

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.fetch import UrlRefused, fetch_to
from cumulo_sdk.local_state import PendingUploads

# Kept importable from here, where they were first: CHUNK and sha256_of.
from cumulo_sdk.transfer import CHUNK as CHUNK
from cumulo_sdk.transfer import Progress
from cumulo_sdk.transfer import sha256_of as sha256_of
from cumulo_sdk.uploads import Uploads

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo


class IntegrityError(Exception):
    """A download's bytes do not have the SHA-256 the server recorded: nothing was written."""


def stored_name(name: str) -> str:
    """A name as the service keeps it: NFC. A name typed or read from a disk in another form
    (macOS gives decomposed "e\u0301" for "\u00e9") is the same name there."""
    return unicodedata.normalize("NFC", name)


def same_name(one: str, other: str) -> bool:
    return stored_name(one) == stored_name(other)


def path_parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


@dataclasses.dataclass(frozen=True)
class Folder:
    folder_id: str  # "" for the root
    created: list[str]  # the paths of the folders just created, outermost first


class Files:
    def __init__(self, client: Cumulo, pending: PendingUploads | None = None) -> None:
        self.client = client
        self.stub = blob_pb2_grpc.BlobServiceStub(client.channel)
        self.pending = pending or PendingUploads(None)

    async def call(self, method, request):
        return await self.client.call(method, request)

    async def signed_metadata(self) -> list[tuple[str, str]]:
        """The metadata of a stream: connected first (as `call` does), with an access token."""
        await self.client.connect()
        return self.client.metadata(await self.client.access_token())

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
        for part in path_parts(path):
            children = await self.ls(node.node_id if node else "")
            match = next((c for c in children if same_name(c.name, part)), None)
            if match is None:
                raise CumuloRpcError(grpc.StatusCode.NOT_FOUND, f"{path}: no such file or folder", reason="NODE_NOT_FOUND")
            node = match
        return node

    async def makedirs(self, path: str) -> str:
        """The folder id of `path`, creating the folders that are missing."""
        return (await self.ensure_folder(path)).folder_id

    async def ensure_folder(self, path: str) -> Folder:
        """The folder at `path`, created with its missing parents, saying which were created
        (none: it existed). A file on the way is refused (NOT_A_FOLDER)."""
        folder_id, created, walked = "", [], []
        for part in path_parts(path):
            walked.append(part)
            match = next((c for c in await self.ls(folder_id) if same_name(c.name, part)), None)
            if match is None:
                try:
                    match = await self.mkdir(folder_id, part)
                    created.append("/" + "/".join(walked))
                except CumuloRpcError as err:
                    if err.reason != "NAME_TAKEN":
                        raise
                    # Created meanwhile (another command, another device): that one will do.
                    match = next((c for c in await self.ls(folder_id) if same_name(c.name, part)), None)
                    if match is None:
                        raise
            if match.kind != blob_pb2.NODE_KIND_FOLDER:
                raise CumuloRpcError(
                    grpc.StatusCode.FAILED_PRECONDITION, f"/{'/'.join(walked)}: is a file, not a folder", reason="NOT_A_FOLDER"
                )
            folder_id = match.node_id
        return Folder(folder_id, created)

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

    async def plans(self) -> list[blob_pb2.Plan]:
        """The storage plans on offer, with their prices."""
        return list((await self.call(self.stub.ListPlans, blob_pb2.ListPlansRequest())).plans)

    async def accept_price(self, plan_id: str, price_version: int) -> blob_pb2.Plan:
        """Renewals of the plan at this (new) price from now on."""
        request = blob_pb2.AcceptPriceRequest(plan_id=plan_id, price_version=price_version)
        return (await self.call(self.stub.AcceptPrice, request)).plan

    async def purchases(self) -> list[blob_pb2.Purchase]:
        """What the account has bought, and until when."""
        return list((await self.call(self.stub.ListPurchases, blob_pb2.ListPurchasesRequest())).purchases)

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

        async def url() -> blob_pb2.DownloadUrl:
            request = blob_pb2.GetSharedDownloadUrlRequest(token=token, password=password, node_id=node_id)
            return (await self.client.call(stub.GetSharedDownloadUrl, request, authenticated=False)).download

        fetched = await self._by_url(url, dest, progress)
        if fetched is not None:
            return fetched
        await self.client.connect()
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
        async def url() -> blob_pb2.DownloadUrl:
            request = blob_pb2.GetSharedWithMeDownloadUrlRequest(share_id=share_id, node_id=node_id)
            return (await self.call(self.stub.GetSharedWithMeDownloadUrl, request)).download

        fetched = await self._by_url(url, dest, progress)
        if fetched is not None:
            return fetched
        metadata = await self.signed_metadata()
        stream = self.stub.DownloadSharedWithMe(
            blob_pb2.DownloadSharedWithMeRequest(share_id=share_id, node_id=node_id), metadata=metadata
        )
        return await self._save(stream, dest, progress)

    async def _by_url(
        self, url: Callable[[], Awaitable[blob_pb2.DownloadUrl]], dest: pathlib.Path, progress: Progress | None
    ) -> blob_pb2.Node | None:
        """The file fetched by signed URL (the default path: the bytes do not pass through a
        service); None when this server offers no URLs, or the URL path fails, and the caller
        streams through gRPC instead. Refusals (no such file, blocked, wrong password) raise."""
        if not self.client.transport.fetches_by_url():
            return None  # the URL is https: a plaintext setup streams
        try:
            first = await url()
        except CumuloRpcError as err:
            if err.reason == "DOWNLOAD_URLS_UNAVAILABLE" or err.code == grpc.StatusCode.UNIMPLEMENTED:
                return None
            raise
        try:
            return await fetch_to(dest, first, url, context=self.client.transport.https_context(), progress=progress)
        except (UrlRefused, aiohttp.ClientError, TimeoutError, ssl.SSLError):
            return None

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
        `sha256`, when the caller has just hashed the file, saves reading it once more.
        A `TransferProgress` hears the bytes sent and, apart, those the server has stored."""
        return await Uploads(self).upload(
            path, parent_id=parent_id, name=name, content_type=content_type, progress=progress, attempts=attempts, sha256=sha256
        )

    # --- download -----------------------------------------------------------------------

    async def download(self, node_id: str, dest: pathlib.Path, *, progress: Progress | None = None) -> blob_pb2.Node:
        """Writes the file to `dest` only once its SHA-256 matches the server's record: by
        signed URL where the server offers them, else (or when that fails) streamed by gRPC."""

        async def url() -> blob_pb2.DownloadUrl:
            return (await self.call(self.stub.GetDownloadUrl, blob_pb2.GetDownloadUrlRequest(node_id=node_id))).download

        fetched = await self._by_url(url, dest, progress)
        if fetched is not None:
            return fetched
        metadata = await self.signed_metadata()
        stream = self.stub.Download(blob_pb2.DownloadRequest(node_id=node_id), metadata=metadata)
        return await self._save(stream, dest, progress)

    async def _save(self, stream: Any, dest: pathlib.Path, progress: Progress | None) -> blob_pb2.Node:
        # Beside the destination (so that the rename is atomic), hidden, and of this run only:
        # two downloads to one place never write the same scratch file. A download that ends
        # otherwise than whole (an error, Ctrl-C's cancellation) takes its scratch file along.
        scratch = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.cumulo-part")
        digest = hashlib.sha256()
        node: blob_pb2.Node | None = None
        done = 0
        try:
            with open(scratch, "xb") as handle:
                async for message in stream:
                    if message.HasField("file"):
                        node = message.file
                        continue
                    data = message.data  # each read of the field is a copy: once
                    handle.write(data)
                    digest.update(data)
                    done += len(data)
                    if progress and node is not None:
                        progress(done, node.size)
            if node is None or digest.hexdigest() != node.sha256:
                raise IntegrityError(f"{dest.name}: the downloaded bytes do not match the file's SHA-256")
            os.replace(scratch, dest)
            return node
        except grpc.aio.AioRpcError as exc:
            raise self.client.rpc_error(exc) from None
        finally:
            scratch.unlink(missing_ok=True)

    async def read_range(self, node_id: str, offset: int, length: int) -> bytes:
        metadata = await self.signed_metadata()
        data = bytearray()
        try:
            async for message in self.stub.Download(
                blob_pb2.DownloadRequest(node_id=node_id, offset=offset, length=length), metadata=metadata
            ):
                if not message.HasField("file"):
                    data += message.data
        except grpc.aio.AioRpcError as exc:
            raise self.client.rpc_error(exc) from None
        return bytes(data)
