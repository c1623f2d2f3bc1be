"""BlobInternalService: for moderation and the lifecycle; the gateway never routes it."""

from __future__ import annotations

import datetime as dt

import grpc

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_blob.api import convert
from cumulo_blob.content_blocks import ContentBlocks
from cumulo_blob.enforcement import Enforcement
from cumulo_blob.plans import Plans
from cumulo_blob.purge import Purge
from cumulo_platform.interceptors import audit_actor

SERVICE = "cumulo.blob.v1.BlobInternalService"


class BlobInternalService(blob_pb2_grpc.BlobInternalServiceServicer):
    def __init__(self, *, enforcement: Enforcement, blocks: ContentBlocks, purge: Purge, plans: Plans) -> None:
        self.e = enforcement
        self.blocks = blocks
        self.purge = purge
        self.plans = plans

    async def BlockFile(self, request: blob_pb2.BlockFileRequest, context: grpc.aio.ServicerContext) -> blob_pb2.BlockFileResponse:
        row = await self.blocks.block_file(request.account_id, request.node_id, blocked=True, reason=request.reason, actor=audit_actor(request.actor))
        return blob_pb2.BlockFileResponse(file=convert.node(row))

    async def UnblockFile(self, request: blob_pb2.UnblockFileRequest, context: grpc.aio.ServicerContext) -> blob_pb2.UnblockFileResponse:
        row = await self.blocks.block_file(request.account_id, request.node_id, blocked=False, reason=request.reason, actor=audit_actor(request.actor))
        return blob_pb2.UnblockFileResponse(file=convert.node(row))

    async def PurgeAccount(self, request: blob_pb2.PurgeAccountRequest, context: grpc.aio.ServicerContext) -> blob_pb2.PurgeAccountResponse:
        items, objects = await self.purge.purge_and_report(request.account_id)
        return blob_pb2.PurgeAccountResponse(nodes_deleted=items, objects_deleted=objects)

    async def RecordPurchase(self, request: blob_pb2.RecordPurchaseRequest, context: grpc.aio.ServicerContext) -> blob_pb2.RecordPurchaseResponse:
        row = await self.plans.record_purchase(request.account_id, request.plan_id, request.price_version, request.payment_reference)
        return blob_pb2.RecordPurchaseResponse(purchase=convert.purchase(row))

    async def SetPlanPrice(self, request: blob_pb2.SetPlanPriceRequest, context: grpc.aio.ServicerContext) -> blob_pb2.SetPlanPriceResponse:
        row = await self.plans.set_price(
            plan_id=request.plan_id, name=request.name, size=request.bytes, price=request.price_minor_units,
            currency=request.currency, period_days=request.period_days,
            applies_at=request.applies_at.ToDatetime(tzinfo=dt.UTC) if request.HasField("applies_at") else None,
        )
        return blob_pb2.SetPlanPriceResponse(plan=convert.plan(row))

    async def DescribeFiles(self, request: blob_pb2.DescribeFilesRequest, context: grpc.aio.ServicerContext) -> blob_pb2.DescribeFilesResponse:
        rows = await self.e.located(request.account_id, request.node_ids, live_files=True)
        return blob_pb2.DescribeFilesResponse(files=[convert.node(r) for r in rows])

    async def DeleteFiles(self, request: blob_pb2.DeleteFilesRequest, context: grpc.aio.ServicerContext) -> blob_pb2.DeleteFilesResponse:
        deleted = await self.e.delete_files(request.account_id, request.node_ids, reason=request.reason, actor=audit_actor(request.actor))
        return blob_pb2.DeleteFilesResponse(deleted=deleted)

    async def FindContent(self, request: blob_pb2.FindContentRequest, context: grpc.aio.ServicerContext) -> blob_pb2.FindContentResponse:
        account_id, row, link_id = await self.e.find_content(link_token=request.link_token, node_id=request.node_id)
        return blob_pb2.FindContentResponse(account_id=account_id, file=convert.node(row), link_id=link_id)

    async def ExportFiles(self, request: blob_pb2.ExportFilesRequest, context: grpc.aio.ServicerContext) -> blob_pb2.ExportFilesResponse:
        files, next_token = await self.e.export_files(
            request.account_id, request.export_id, size=request.page_size, token=request.page_token
        )
        return blob_pb2.ExportFilesResponse(
            bucket=self.e.preservation.bucket,
            files=[blob_pb2.ExportedFile(file=convert.node(row), key=key) for row, key in files],
            next_page_token=next_token,
        )

    async def DescribePaths(self, request: blob_pb2.DescribePathsRequest, context: grpc.aio.ServicerContext) -> blob_pb2.DescribePathsResponse:
        rows = await self.e.located(request.account_id, request.node_ids)
        return blob_pb2.DescribePathsResponse(
            paths=[
                blob_pb2.NodePath(node_id=str(r.node_id), path=r.path, kind=convert.KINDS[r.kind], in_trash=r.in_trash) for r in rows
            ]
        )

    async def BlockLink(self, request: blob_pb2.BlockLinkRequest, context: grpc.aio.ServicerContext) -> blob_pb2.BlockLinkResponse:
        await self.e.set_link_blocked(request.link_id, blocked=request.blocked, reason=request.reason, actor=audit_actor(request.actor))
        return blob_pb2.BlockLinkResponse()

    async def BlockContent(self, request: blob_pb2.BlockContentRequest, context: grpc.aio.ServicerContext) -> blob_pb2.BlockContentResponse:
        files, more = await self.blocks.block_listed(request.sha256, blocked=request.blocked, reason=request.reason, actor=audit_actor(request.actor))
        return blob_pb2.BlockContentResponse(
            files=[blob_pb2.StoredCopy(account_id=str(f.account_id), node_id=str(f.node_id), sha256=f.sha256) for f in files], more=more
        )
