"""Take-out through the SDK: ask for a copy of the account, follow its progress, and download
its archives by their signed URLs (each checked against the SHA-256 blob recorded)."""

from __future__ import annotations

import asyncio
import builtins
import pathlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from cumulo.blob.v1 import blob_pb2
from cumulo.takeout.v1 import takeout_pb2 as pb
from cumulo.takeout.v1 import takeout_pb2_grpc
from cumulo_sdk.fetch import fetch_to
from cumulo_sdk.transfer import Progress

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

DONE = (pb.EXPORT_STATE_READY, pb.EXPORT_STATE_FAILED, pb.EXPORT_STATE_EXPIRED)
STATE_NAMES = {
    pb.EXPORT_STATE_QUEUED: "queued",
    pb.EXPORT_STATE_RUNNING: "running",
    pb.EXPORT_STATE_READY: "ready",
    pb.EXPORT_STATE_FAILED: "failed",
    pb.EXPORT_STATE_EXPIRED: "expired",
}


class Takeout:
    def __init__(self, client: Cumulo) -> None:
        self.client = client
        self.stub = takeout_pb2_grpc.TakeoutServiceStub(client.channel)

    async def start(self) -> pb.Export:
        return (await self.client.call(self.stub.StartExport, pb.StartExportRequest())).export

    async def get(self, export_id: str) -> pb.Export:
        return (await self.client.call(self.stub.GetExport, pb.GetExportRequest(export_id=export_id))).export

    async def list(self) -> builtins.list[pb.Export]:
        return builtins.list((await self.client.call(self.stub.ListExports, pb.ListExportsRequest())).exports)

    async def wait(self, export_id: str, *, every: float = 1.0, progress: Callable[[pb.Export], None] | None = None) -> pb.Export:
        """The export once it is ready (or failed); `progress` sees each answer on the way."""
        while True:
            export = await self.get(export_id)
            if progress is not None:
                progress(export)
            if export.state in DONE:
                return export
            await asyncio.sleep(every)

    async def download(self, export_id: str, folder: pathlib.Path, *, progress: Progress | None = None) -> builtins.list[pathlib.Path]:
        """Every archive of a ready export into `folder`, each put in place only once its
        SHA-256 matches; answers their paths."""
        export = await self.get(export_id)
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for index, archive in enumerate(export.archives):

            async def renew(index: int = index) -> blob_pb2.DownloadUrl:
                fresh = (await self.get(export_id)).archives[index]
                return _as_download(fresh)

            dest = folder / pathlib.PurePath(archive.name).name
            await fetch_to(dest, _as_download(archive), renew, context=self.client.transport.https_context(), progress=progress)
            saved.append(dest)
        return saved


def _as_download(archive: pb.Archive) -> blob_pb2.DownloadUrl:
    """An archive's signed URL in the form the SDK's fetcher takes (a file's)."""
    node = blob_pb2.Node(name=archive.name, size=archive.size, sha256=archive.sha256)
    return blob_pb2.DownloadUrl(url=archive.download_url, file=node, expires_at=archive.download_url_expires_at)
