"""TakeoutService: the owner's exports (cumulo_blob.takeout)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc

from cumulo.takeout.v1 import takeout_pb2 as pb
from cumulo.takeout.v1 import takeout_pb2_grpc
from cumulo_blob.takeout import Takeout
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.interceptors import current_principal

SERVICE = "cumulo.takeout.v1.TakeoutService"
STATES = {
    "queued": pb.EXPORT_STATE_QUEUED,
    "running": pb.EXPORT_STATE_RUNNING,
    "ready": pb.EXPORT_STATE_READY,
    "failed": pb.EXPORT_STATE_FAILED,
    "expired": pb.EXPORT_STATE_EXPIRED,
}


def _me() -> uuid.UUID:
    return uuid.UUID(current_principal().account_id)


def export(row: Any, archives: list[pb.Archive] | None = None) -> pb.Export:
    if archives is None:
        archives = [pb.Archive(name=a["name"], size=a["size"], sha256=a["sha256"]) for a in row.archives]
    return pb.Export(
        export_id=str(row.export_id), state=STATES[row.state], requested_at=timestamp(row.requested_at),
        finished_at=timestamp(row.finished_at), expires_at=timestamp(row.expires_at), files_done=row.files_done,
        files_total=row.files_total, bytes_written=row.bytes_written, archives=archives, failure=row.failure,
    )


class TakeoutService(takeout_pb2_grpc.TakeoutServiceServicer):
    def __init__(self, takeout: Takeout) -> None:
        self.takeout = takeout

    async def StartExport(self, request: pb.StartExportRequest, context: grpc.aio.ServicerContext) -> pb.StartExportResponse:
        return pb.StartExportResponse(export=export(await self.takeout.start(_me())))

    async def GetExport(self, request: pb.GetExportRequest, context: grpc.aio.ServicerContext) -> pb.GetExportResponse:
        row = await self.takeout.get(_me(), request.export_id)
        signed = await self.takeout.download_urls(row)
        archives = [
            pb.Archive(name=a["name"], size=a["size"], sha256=a["sha256"], download_url=url, download_url_expires_at=timestamp(until))
            for a, url, until in signed
        ]
        return pb.GetExportResponse(export=export(row, archives if signed else None))

    async def ListExports(self, request: pb.ListExportsRequest, context: grpc.aio.ServicerContext) -> pb.ListExportsResponse:
        return pb.ListExportsResponse(exports=[export(row) for row in await self.takeout.exports_of(_me())])
