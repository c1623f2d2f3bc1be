"""BlobInternalService: for moderation and the lifecycle; the gateway never routes it."""

from __future__ import annotations

import grpc

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_blob.api import convert
from cumulo_blob.enforcement import Enforcement

SERVICE = "cumulo.blob.v1.BlobInternalService"


class BlobInternalService(blob_pb2_grpc.BlobInternalServiceServicer):
    def __init__(self, enforcement: Enforcement) -> None:
        self.e = enforcement

    async def BlockFile(self, request: blob_pb2.BlockFileRequest, context: grpc.aio.ServicerContext) -> blob_pb2.BlockFileResponse:
        row = await self.e.set_blocked(request.account_id, request.node_id, blocked=True, reason=request.reason, actor=request.actor)
        return blob_pb2.BlockFileResponse(file=convert.node(row))

    async def UnblockFile(self, request: blob_pb2.UnblockFileRequest, context: grpc.aio.ServicerContext) -> blob_pb2.UnblockFileResponse:
        row = await self.e.set_blocked(request.account_id, request.node_id, blocked=False, reason=request.reason, actor=request.actor)
        return blob_pb2.UnblockFileResponse(file=convert.node(row))

    async def SetLegalHold(self, request: blob_pb2.SetLegalHoldRequest, context: grpc.aio.ServicerContext) -> blob_pb2.SetLegalHoldResponse:
        await self.e.set_hold(request.account_id, held=request.held, reason=request.reason, actor=request.actor)
        return blob_pb2.SetLegalHoldResponse()

    async def PurgeAccount(self, request: blob_pb2.PurgeAccountRequest, context: grpc.aio.ServicerContext) -> blob_pb2.PurgeAccountResponse:
        items, objects = await self.e.purge(request.account_id)
        return blob_pb2.PurgeAccountResponse(nodes_deleted=items, objects_deleted=objects)
