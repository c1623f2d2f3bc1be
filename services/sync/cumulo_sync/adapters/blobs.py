"""The blob files that backups point to: checked when a backup is made, deleted when no
backup needs them any more (blob's internal API)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import grpc

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_platform.errors import FailedPrecondition, Unavailable, reason_of

CHUNK = 1000  # blob's limit per call


@dataclasses.dataclass(frozen=True)
class StoredFile:
    file_id: str
    size: int
    sha256: str


def _translate(exc: grpc.aio.AioRpcError) -> Exception:
    if reason_of(exc) == "LEGAL_HOLD":
        return FailedPrecondition("the account is under a legal hold; nothing is deleted", reason="LEGAL_HOLD")
    return Unavailable("the file service did not answer; try again", reason="BLOB_UNAVAILABLE")


class RemoteBlobs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = blob_pb2_grpc.BlobInternalServiceStub(channel)

    async def live_files(self, account_id: str, file_ids: Sequence[str]) -> dict[str, StoredFile]:
        found: dict[str, StoredFile] = {}
        for start in range(0, len(file_ids), CHUNK):
            try:
                response = await self.stub.DescribeFiles(
                    blob_pb2.DescribeFilesRequest(account_id=account_id, node_ids=list(file_ids[start : start + CHUNK])),
                    timeout=30,
                )
            except grpc.aio.AioRpcError as exc:
                raise _translate(exc) from None
            for node in response.files:
                found[node.node_id] = StoredFile(node.node_id, node.size, node.sha256)
        return found

    async def delete(self, account_id: str, file_ids: Sequence[str], *, reason: str) -> int:
        deleted = 0
        for start in range(0, len(file_ids), CHUNK):
            try:
                response = await self.stub.DeleteFiles(
                    blob_pb2.DeleteFilesRequest(
                        account_id=account_id, node_ids=list(file_ids[start : start + CHUNK]), reason=reason, actor="sync"
                    ),
                    timeout=60,
                )
            except grpc.aio.AioRpcError as exc:
                raise _translate(exc) from None
            deleted += response.deleted
        return deleted
