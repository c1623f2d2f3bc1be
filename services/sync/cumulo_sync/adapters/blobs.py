"""The blob files that backups point to: checked when a backup is made, deleted when no
backup needs them any more (blob's internal API, through the platform's remote calls: its
deadlines and its one error policy; a LEGAL_HOLD refusal comes back as FailedPrecondition)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_platform.remote import Remote

CHUNK = 1000  # blob's limit per call


@dataclasses.dataclass(frozen=True)
class StoredFile:
    file_id: str
    size: int
    sha256: str


class RemoteBlobs:
    def __init__(self, blob: Remote[blob_pb2_grpc.BlobInternalServiceStub]) -> None:
        self.blob = blob

    async def live_files(self, account_id: str, file_ids: Sequence[str]) -> dict[str, StoredFile]:
        found: dict[str, StoredFile] = {}
        for start in range(0, len(file_ids), CHUNK):
            response = await self.blob.call(
                self.blob.stub.DescribeFiles,
                blob_pb2.DescribeFilesRequest(account_id=account_id, node_ids=list(file_ids[start : start + CHUNK])),
                field="entries",
            )
            for node in response.files:
                found[node.node_id] = StoredFile(node.node_id, node.size, node.sha256)
        return found

    async def delete(self, account_id: str, file_ids: Sequence[str], *, reason: str) -> int:
        deleted = 0
        for start in range(0, len(file_ids), CHUNK):
            response = await self.blob.call(
                self.blob.stub.DeleteFiles,
                blob_pb2.DeleteFilesRequest(
                    account_id=account_id, node_ids=list(file_ids[start : start + CHUNK]), reason=reason, actor="sync"
                ),
                bulk=True,
            )
            deleted += response.deleted
        return deleted
