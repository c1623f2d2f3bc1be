"""BlobService: thin — translate, call a use case, translate back."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Hashable
from typing import Any

import grpc

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_blob.api import convert
from cumulo_blob.downloads import Downloads, Served
from cumulo_blob.folders import Folders
from cumulo_blob.plans import Plans
from cumulo_blob.quota import Quota
from cumulo_blob.sharing import Sharing, token_hash
from cumulo_blob.stream_limits import StreamSlots
from cumulo_blob.trash import Trash
from cumulo_blob.uploads import Uploads
from cumulo_platform.errors import DeadlineExceeded, InvalidArgument
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.interceptors import current_call, current_principal
from cumulo_platform.logging import get_logger

SERVICE = "cumulo.blob.v1.BlobService"


def _download_url(node: Any, url: str, expires_at: dt.datetime) -> blob_pb2.DownloadUrl:
    return blob_pb2.DownloadUrl(url=url, expires_at=timestamp(expires_at), file=convert.node(node))
log = get_logger(__name__)


# The download handlers write their messages themselves (context.write) rather than yield them,
# so that a write the client leaves waiting can time out: the generated servicer declares them
# as generators, hence their `type: ignore[override]`.
async def _send_file(context: grpc.aio.ServicerContext, downloads: Downloads, message: type[Any], served: Served) -> None:
    """Every download answers alike: the file's metadata first, then its bytes. Each message
    is written once the client has taken enough of the ones before (gRPC's write waits for
    HTTP/2 flow control), and a write the client leaves waiting for the stall timeout ends the
    download with DEADLINE_EXCEEDED — the client resumes from the bytes it has (an offset)."""
    node, key, offset, length = served
    stall = downloads.stall_timeout.total_seconds()
    await _write(context, message(file=convert.node(node)), stall)
    async with contextlib.aclosing(downloads.read(key, offset, length)) as chunks:
        async for chunk in chunks:
            size = len(chunk)
            reply = message(data=chunk)
            del chunk  # the message has the bytes now: no second copy waits with it
            await _write(context, reply, stall)
            if downloads.on_sent is not None:
                downloads.on_sent(size)


async def _write(context: grpc.aio.ServicerContext, message: Any, stall: float) -> None:
    try:
        async with asyncio.timeout(stall):
            await context.write(message)
    except TimeoutError:
        log.info("download_client_not_reading", stall_seconds=stall)
        raise DeadlineExceeded(
            f"the client read nothing for {stall:g} s, so this download was ended; ask for the rest from the bytes received",
            reason="CLIENT_NOT_READING",
        ) from None


def _admit(context: grpc.aio.ServicerContext, slots: StreamSlots, key: Hashable) -> None:
    """A place among `slots` for this download (RESOURCE_EXHAUSTED at once when there is none),
    kept until the call is over: not when the handler returns, but once its status is out — a
    download ended for a client that does not read keeps its place, and its last message in
    gRPC's buffers, until that client reads or goes."""
    slot = slots.take(key)
    context.add_done_callback(lambda _: slot.release())


def _me() -> uuid.UUID:
    return uuid.UUID(current_principal().account_id)


class BlobService(blob_pb2_grpc.BlobServiceServicer):
    def __init__(
        self,
        *,
        folders: Folders,
        trash: Trash,
        uploads: Uploads,
        downloads: Downloads,
        quota: Quota,
        plans: Plans,
        sharing: Sharing,
    ) -> None:
        self.folders = folders
        self.trash = trash
        self.uploads = uploads
        self.downloads = downloads
        self.quota = quota
        self.plans = plans
        self.sharing = sharing

    async def CreateFolder(self, request: blob_pb2.CreateFolderRequest, context: grpc.aio.ServicerContext) -> blob_pb2.CreateFolderResponse:
        row = await self.folders.create_folder(_me(), request.parent_id, request.name)
        return blob_pb2.CreateFolderResponse(folder=convert.node(row))

    async def ListFolder(self, request: blob_pb2.ListFolderRequest, context: grpc.aio.ServicerContext) -> blob_pb2.ListFolderResponse:
        rows, token = await self.folders.list_folder(_me(), request.folder_id, request.page_size, request.page_token)
        return blob_pb2.ListFolderResponse(nodes=[convert.node(r) for r in rows], next_page_token=token)

    async def Stat(self, request: blob_pb2.StatRequest, context: grpc.aio.ServicerContext) -> blob_pb2.StatResponse:
        return blob_pb2.StatResponse(node=convert.node(await self.folders.stat(_me(), request.node_id)))

    async def Rename(self, request: blob_pb2.RenameRequest, context: grpc.aio.ServicerContext) -> blob_pb2.RenameResponse:
        return blob_pb2.RenameResponse(node=convert.node(await self.folders.rename(_me(), request.node_id, request.new_name)))

    async def Move(self, request: blob_pb2.MoveRequest, context: grpc.aio.ServicerContext) -> blob_pb2.MoveResponse:
        return blob_pb2.MoveResponse(node=convert.node(await self.folders.move(_me(), request.node_id, request.new_parent_id)))

    async def Delete(self, request: blob_pb2.DeleteRequest, context: grpc.aio.ServicerContext) -> blob_pb2.DeleteResponse:
        await self.trash.delete(_me(), request.node_id)
        return blob_pb2.DeleteResponse()

    async def ListTrash(self, request: blob_pb2.ListTrashRequest, context: grpc.aio.ServicerContext) -> blob_pb2.ListTrashResponse:
        rows, token = await self.trash.list_trash(_me(), request.page_size, request.page_token)
        return blob_pb2.ListTrashResponse(nodes=[convert.node(r) for r in rows], next_page_token=token)

    async def Restore(self, request: blob_pb2.RestoreRequest, context: grpc.aio.ServicerContext) -> blob_pb2.RestoreResponse:
        return blob_pb2.RestoreResponse(node=convert.node(await self.trash.restore(_me(), request.node_id)))

    async def EmptyTrash(self, request: blob_pb2.EmptyTrashRequest, context: grpc.aio.ServicerContext) -> blob_pb2.EmptyTrashResponse:
        return blob_pb2.EmptyTrashResponse(deleted=await self.trash.empty_trash(_me()))

    async def StartUpload(self, request: blob_pb2.StartUploadRequest, context: grpc.aio.ServicerContext) -> blob_pb2.StartUploadResponse:
        (upload, _), node = await self.uploads.start(
            _me(),
            parent_id=request.parent_id,
            name=request.name,
            size=request.size,
            sha256=request.sha256,
            content_type=request.content_type,
        )
        return blob_pb2.StartUploadResponse(
            upload_id=str(upload.upload_id),
            committed_offset=upload.committed_offset,
            file=convert.node(node) if node is not None else None,
            part_size=self.uploads.settings.part_size,
        )

    async def UploadChunks(
        self, request_iterator: AsyncIterator[blob_pb2.UploadChunksRequest], context: grpc.aio.ServicerContext
    ) -> blob_pb2.UploadChunksResponse:
        committed, node = await self.uploads.receive(_me(), request_iterator)
        return blob_pb2.UploadChunksResponse(
            committed_offset=committed, file=convert.node(node) if node is not None else None
        )

    async def PutUploadPart(self, request: blob_pb2.PutUploadPartRequest, context: grpc.aio.ServicerContext) -> blob_pb2.PutUploadPartResponse:
        committed, node = await self.uploads.put_part(_me(), request.upload_id, request.offset, request.data)
        return blob_pb2.PutUploadPartResponse(committed_offset=committed, file=convert.node(node) if node is not None else None)

    async def GetUpload(self, request: blob_pb2.GetUploadRequest, context: grpc.aio.ServicerContext) -> blob_pb2.GetUploadResponse:
        upload, node = await self.uploads.get(_me(), request.upload_id)
        return blob_pb2.GetUploadResponse(
            upload_id=str(upload.upload_id),
            size=upload.size,
            committed_offset=upload.committed_offset,
            expires_at=timestamp(upload.expires_at),
            file=convert.node(node) if node is not None else None,
        )

    async def CancelUpload(self, request: blob_pb2.CancelUploadRequest, context: grpc.aio.ServicerContext) -> blob_pb2.CancelUploadResponse:
        await self.uploads.cancel(_me(), request.upload_id)
        return blob_pb2.CancelUploadResponse()

    async def Download(self, request: blob_pb2.DownloadRequest, context: grpc.aio.ServicerContext) -> None:  # type: ignore[override]
        _admit(context, self.downloads.per_address, current_call().client_network)
        served = await self.downloads.open(_me(), request.node_id, request.offset, request.length)
        await _send_file(context, self.downloads, blob_pb2.DownloadResponse, served)

    async def GetDownloadUrl(self, request: blob_pb2.GetDownloadUrlRequest, context: grpc.aio.ServicerContext) -> blob_pb2.GetDownloadUrlResponse:
        served = await self.downloads.open(_me(), request.node_id, 0, 0)
        return blob_pb2.GetDownloadUrlResponse(download=_download_url(*await self.downloads.signed_url(served)))

    async def ListPlans(self, request: blob_pb2.ListPlansRequest, context: grpc.aio.ServicerContext) -> blob_pb2.ListPlansResponse:
        mine = await self.plans.versions_of(_me())
        return blob_pb2.ListPlansResponse(
            plans=[convert.plan(now, coming, mine.get(now.plan_id, (0, 0))) for now, coming in await self.plans.catalog()]
        )

    async def AcceptPrice(self, request: blob_pb2.AcceptPriceRequest, context: grpc.aio.ServicerContext) -> blob_pb2.AcceptPriceResponse:
        row = await self.plans.accept_price(_me(), request.plan_id, request.price_version, current_principal().client_id)
        return blob_pb2.AcceptPriceResponse(plan=convert.plan(row))

    async def ListPurchases(self, request: blob_pb2.ListPurchasesRequest, context: grpc.aio.ServicerContext) -> blob_pb2.ListPurchasesResponse:
        return blob_pb2.ListPurchasesResponse(purchases=[convert.purchase(r) for r in await self.plans.purchases_of(_me())])

    async def CreateShareLink(
        self, request: blob_pb2.CreateShareLinkRequest, context: grpc.aio.ServicerContext
    ) -> blob_pb2.CreateShareLinkResponse:
        try:
            expires_at = request.expires_at.ToDatetime(tzinfo=dt.UTC) if request.HasField("expires_at") else None
        except (OverflowError, ValueError):
            raise InvalidArgument("expires_at", "must be a real point in time") from None
        row, name, token = await self.sharing.create(
            current_principal(), request.node_id, expires_at=expires_at, password=request.password
        )
        return blob_pb2.CreateShareLinkResponse(link=convert.link(row, name, token=token))

    async def ListShareLinks(
        self, request: blob_pb2.ListShareLinksRequest, context: grpc.aio.ServicerContext
    ) -> blob_pb2.ListShareLinksResponse:
        return blob_pb2.ListShareLinksResponse(links=[convert.link(r, r.name) for r in await self.sharing.links(_me())])

    async def RevokeShareLink(
        self, request: blob_pb2.RevokeShareLinkRequest, context: grpc.aio.ServicerContext
    ) -> blob_pb2.RevokeShareLinkResponse:
        await self.sharing.revoke(_me(), request.link_id)
        return blob_pb2.RevokeShareLinkResponse()

    async def ShareWithUser(self, request: blob_pb2.ShareWithUserRequest, context: grpc.aio.ServicerContext) -> blob_pb2.ShareWithUserResponse:
        row, name = await self.sharing.share_with_user(_me(), request.node_id, request.recipient)
        return blob_pb2.ShareWithUserResponse(
            share=blob_pb2.UserShare(share_id=str(row.share_id), node_id=str(row.node_id), name=name,
                                     recipient=row.recipient, created_at=timestamp(row.created_at))
        )

    async def ListUserShares(self, request: blob_pb2.ListUserSharesRequest, context: grpc.aio.ServicerContext) -> blob_pb2.ListUserSharesResponse:
        rows = await self.sharing.user_shares(_me())
        return blob_pb2.ListUserSharesResponse(shares=[convert.user_share(r, for_owner=True) for r in rows])

    async def RevokeUserShare(self, request: blob_pb2.RevokeUserShareRequest, context: grpc.aio.ServicerContext) -> blob_pb2.RevokeUserShareResponse:
        await self.sharing.revoke_user_share(_me(), request.share_id)
        return blob_pb2.RevokeUserShareResponse()

    async def ListSharedWithMe(self, request: blob_pb2.ListSharedWithMeRequest, context: grpc.aio.ServicerContext) -> blob_pb2.ListSharedWithMeResponse:
        rows = await self.sharing.shared_with_me(_me())
        return blob_pb2.ListSharedWithMeResponse(shares=[convert.user_share(r, for_owner=False) for r in rows])

    async def OpenSharedWithMe(self, request: blob_pb2.OpenSharedWithMeRequest, context: grpc.aio.ServicerContext) -> blob_pb2.OpenSharedWithMeResponse:
        root, children = await self.sharing.open_shared_with_me(_me(), request.share_id)
        return blob_pb2.OpenSharedWithMeResponse(root=convert.node(root), children=[convert.node(c) for c in children])

    async def DownloadSharedWithMe(  # type: ignore[override]
        self, request: blob_pb2.DownloadSharedWithMeRequest, context: grpc.aio.ServicerContext
    ) -> None:
        _admit(context, self.downloads.per_address, current_call().client_network)
        root, children = await self.sharing.open_shared_with_me(_me(), request.share_id)
        served = await self.sharing.serve(root, children, request.node_id, request.offset, request.length)
        await _send_file(context, self.downloads, blob_pb2.DownloadSharedWithMeResponse, served)

    async def GetSharedWithMeDownloadUrl(
        self, request: blob_pb2.GetSharedWithMeDownloadUrlRequest, context: grpc.aio.ServicerContext
    ) -> blob_pb2.GetSharedWithMeDownloadUrlResponse:
        root, children = await self.sharing.open_shared_with_me(_me(), request.share_id)
        served = await self.sharing.serve(root, children, request.node_id, 0, 0)
        return blob_pb2.GetSharedWithMeDownloadUrlResponse(download=_download_url(*await self.downloads.signed_url(served)))

    async def GetUsage(self, request: blob_pb2.GetUsageRequest, context: grpc.aio.ServicerContext) -> blob_pb2.GetUsageResponse:
        used, reserved, quota = await self.quota.usage(_me())
        return blob_pb2.GetUsageResponse(used=used, reserved=reserved, quota=quota)


LINK_SERVICE = "cumulo.blob.v1.ShareLinkService"
# Opening a link needs a registered client id, but no account.
ANONYMOUS_METHODS = frozenset(f"/{LINK_SERVICE}/{m}" for m in ("OpenShareLink", "DownloadShared", "GetSharedDownloadUrl"))


class ShareLinkService(blob_pb2_grpc.ShareLinkServiceServicer):
    def __init__(self, *, downloads: Downloads, sharing: Sharing) -> None:
        self.downloads = downloads
        self.sharing = sharing

    async def OpenShareLink(self, request: blob_pb2.OpenShareLinkRequest, context: grpc.aio.ServicerContext) -> blob_pb2.OpenShareLinkResponse:
        root, children = await self.sharing.open(request.token, request.password)
        return blob_pb2.OpenShareLinkResponse(root=convert.node(root), children=[convert.node(c) for c in children])

    async def DownloadShared(  # type: ignore[override]
        self, request: blob_pb2.DownloadSharedRequest, context: grpc.aio.ServicerContext
    ) -> None:
        # Anonymous: counted per client address, and per link (once the link has opened).
        _admit(context, self.downloads.per_address, current_call().client_network)
        served = await self.sharing.open_download(request.token, request.password, request.node_id, request.offset, request.length)
        _admit(context, self.downloads.per_link, token_hash(request.token))
        await _send_file(context, self.downloads, blob_pb2.DownloadSharedResponse, served)

    async def GetSharedDownloadUrl(
        self, request: blob_pb2.GetSharedDownloadUrlRequest, context: grpc.aio.ServicerContext
    ) -> blob_pb2.GetSharedDownloadUrlResponse:
        served = await self.sharing.open_download(request.token, request.password, request.node_id, 0, 0)
        return blob_pb2.GetSharedDownloadUrlResponse(download=_download_url(*await self.downloads.signed_url(served)))
