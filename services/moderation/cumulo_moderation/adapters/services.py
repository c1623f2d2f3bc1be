"""What moderation asks of the other services, through their internal APIs: blob (find, block,
delete, export files, holds), auth (find accounts, suspend, terminate), lifecycle (holds,
account facts). Every call here is idempotent, so a decision interrupted half-way is simply
carried out again."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import grpc
from google.protobuf import json_format

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_platform.errors import relayed
from cumulo_platform.grpc_convert import timestamp

TIMEOUT = 30


@dataclasses.dataclass(frozen=True)
class Content:
    account_id: str
    node_id: str
    kind: str  # "file" or "folder"
    sha256: str
    name: str
    link_id: str


class Services:
    def __init__(
        self, *, auth: grpc.aio.Channel, blob: grpc.aio.Channel, lifecycle: grpc.aio.Channel, sync: grpc.aio.Channel,
        locator: grpc.aio.Channel,
    ) -> None:
        self.auth = auth_pb2_grpc.AuthInternalServiceStub(auth)
        self.blob = blob_pb2_grpc.BlobInternalServiceStub(blob)
        self.lifecycle = lifecycle_pb2_grpc.LifecycleInternalServiceStub(lifecycle)
        # The data services that write their own part of an evidence bundle.
        self.evidence = {
            "sync": evidence_pb2_grpc.EvidenceInternalServiceStub(sync),
            "locator": evidence_pb2_grpc.EvidenceInternalServiceStub(locator),
        }

    @staticmethod
    async def _call(service: str, method: Any, request: Any, timeout: float = TIMEOUT, field: str = "request") -> Any:
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise relayed(exc, service, field) from None

    # --- blob ---------------------------------------------------------------------------

    async def find_content(self, *, link_token: str = "", node_id: str = "") -> Content:
        request = blob_pb2.FindContentRequest(link_token=link_token) if link_token else blob_pb2.FindContentRequest(node_id=node_id)
        found = await self._call("blob", self.blob.FindContent, request, field="target.link" if link_token else "target.node_id")
        kind = "folder" if found.file.kind == blob_pb2.NODE_KIND_FOLDER else "file"
        return Content(found.account_id, found.file.node_id, kind, found.file.sha256, found.file.name, found.link_id)

    async def block(self, account_id: str, node_id: str, *, blocked: bool, reason: str, actor: str) -> None:
        if blocked:
            await self._call("blob", self.blob.BlockFile, blob_pb2.BlockFileRequest(account_id=account_id, node_id=node_id, reason=reason, actor=actor))
        else:
            await self._call(
                "blob", self.blob.UnblockFile, blob_pb2.UnblockFileRequest(account_id=account_id, node_id=node_id, reason=reason, actor=actor)
            )

    async def block_link(self, link_id: str, *, blocked: bool, reason: str, actor: str) -> None:
        await self._call("blob", self.blob.BlockLink, blob_pb2.BlockLinkRequest(link_id=link_id, blocked=blocked, reason=reason, actor=actor))

    async def delete_file(self, account_id: str, node_id: str, *, reason: str, actor: str) -> None:
        await self._call(
            "blob", self.blob.DeleteFiles, blob_pb2.DeleteFilesRequest(account_id=account_id, node_ids=[node_id], reason=reason, actor=actor)
        )

    async def export_files(self, account_id: str, export_id: str, page_token: str) -> blob_pb2.ExportFilesResponse:
        return await self._call(
            "blob", self.blob.ExportFiles,
            blob_pb2.ExportFilesRequest(account_id=account_id, export_id=export_id, page_token=page_token), timeout=300,
        )

    async def export_parts(self, account_id: str, export_id: str) -> list[evidence_pb2.ExportAccountResponse]:
        """Each data service's part of the bundle (sync records, device locations), written by
        that service into the preservation bucket."""
        request = evidence_pb2.ExportAccountRequest(account_id=account_id, export_id=export_id)
        return [await self._call(name, stub.ExportAccount, request, timeout=3600) for name, stub in self.evidence.items()]

    # --- auth -----------------------------------------------------------------------------

    async def find_account(self, login: str) -> str:
        return (await self._call("auth", self.auth.FindAccount, auth_pb2.FindAccountRequest(login=login), field="target.account")).account_id

    async def account_exists(self, account_id: str) -> None:
        """Raises NotFound (ACCOUNT_NOT_FOUND) unless auth knows the account."""
        await self._call("auth", self.auth.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id=account_id), field="target.account")

    async def suspend(self, account_id: str, until: dt.datetime, *, reason: str, actor: str) -> None:
        await self._call(
            "auth", self.auth.SetAccountStatus,
            auth_pb2.SetAccountStatusRequest(
                account_id=account_id, status=auth_pb2.ACCOUNT_STATUS_SUSPENDED, suspended_until=timestamp(until), reason=reason, actor=actor
            ),
        )

    async def terminate(self, account_id: str, *, reason: str, actor: str) -> None:
        """Auth closes the account and ends its sessions; its account.status_changed event
        starts the lifecycle's deletion saga (which waits while the account is held)."""
        await self._call(
            "auth", self.auth.SetAccountStatus,
            auth_pb2.SetAccountStatusRequest(account_id=account_id, status=auth_pb2.ACCOUNT_STATUS_TERMINATED, reason=reason, actor=actor),
        )

    async def account_facts(self, account_id: str) -> dict[str, Any]:
        """What an evidence bundle says about the account: its contacts (auth) and its
        lifecycle record with transitions."""
        contacts = await self._call("auth", self.auth.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id=account_id))
        lifecycle = await self._call("lifecycle", self.lifecycle.GetAccount, lifecycle_pb2.GetAccountRequest(account_id=account_id))
        return {
            "account_id": account_id,
            "contacts": json_format.MessageToDict(contacts, preserving_proto_field_name=True),
            "lifecycle": json_format.MessageToDict(lifecycle, preserving_proto_field_name=True),
        }

    # --- holds ------------------------------------------------------------------------------

    async def set_hold(self, account_id: str, *, held: bool, reason: str, actor: str) -> None:
        """Placing: the lifecycle first (no deletion starts), then blob (nothing is removed
        from storage). Releasing: blob first, so a deletion the release lets start finds blob
        ready to purge."""
        async def lifecycle() -> None:
            await self._call(
                "lifecycle", self.lifecycle.SetLegalHold,
                lifecycle_pb2.SetLegalHoldRequest(account_id=account_id, held=held, reason=reason, actor=actor),
            )

        async def blob() -> None:
            await self._call(
                "blob", self.blob.SetLegalHold, blob_pb2.SetLegalHoldRequest(account_id=account_id, held=held, reason=reason, actor=actor)
            )

        for step in (lifecycle, blob) if held else (blob, lifecycle):
            await step()
