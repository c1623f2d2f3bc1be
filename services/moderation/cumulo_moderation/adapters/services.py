"""What moderation asks of the other services, through their internal APIs and the platform's
remote calls (deadlines from settings, one error policy, never inside a unit of work): blob
(find, locate, block, delete, export files; the blocklist), auth (find accounts, suspend, terminate), the lifecycle
(legal holds, account facts), and the data services that write their own part of an evidence
bundle. Every call that changes something is idempotent, so an effect interrupted half-way is
simply carried out again."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from google.protobuf import json_format

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_moderation.domain.notices import Place
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.remote import Remote


@dataclasses.dataclass(frozen=True)
class Content:
    account_id: str
    node_id: str
    kind: str  # "file" or "folder"
    sha256: str
    name: str
    link_id: str


@dataclasses.dataclass(frozen=True)
class StoredCopy:
    """A stored file of some content, in some account (what a blocklist entry reaches)."""

    account_id: str
    node_id: str
    sha256: str


class Services:
    def __init__(
        self,
        *,
        auth: Remote[auth_pb2_grpc.AuthInternalServiceStub],
        blob: Remote[blob_pb2_grpc.BlobInternalServiceStub],
        lifecycle: Remote[lifecycle_pb2_grpc.LifecycleInternalServiceStub],
        evidence: dict[str, Remote[evidence_pb2_grpc.EvidenceInternalServiceStub]],
    ) -> None:
        self.auth = auth
        self.blob = blob
        self.lifecycle = lifecycle
        # The data services that write their own part of an evidence bundle, by name.
        self.evidence = evidence

    # --- blob ---------------------------------------------------------------------------

    async def find_content(self, *, link_token: str = "", node_id: str = "") -> Content:
        request = blob_pb2.FindContentRequest(link_token=link_token) if link_token else blob_pb2.FindContentRequest(node_id=node_id)
        found = await self.blob.call(self.blob.stub.FindContent, request, field="target.link" if link_token else "target.node_id")
        kind = "folder" if found.file.kind == blob_pb2.NODE_KIND_FOLDER else "file"
        return Content(found.account_id, found.file.node_id, kind, found.file.sha256, found.file.name, found.link_id)

    async def places(self, account_id: str, node_ids: list[str]) -> dict[str, Place]:
        """Where the account's files or folders are, as the owner sees them; those gone are left out."""
        found = await self.blob.call(self.blob.stub.DescribePaths, blob_pb2.DescribePathsRequest(account_id=account_id, node_ids=node_ids))
        return {p.node_id: Place(path=p.path, in_trash=p.in_trash) for p in found.paths}

    async def block(self, account_id: str, node_id: str, *, blocked: bool, reason: str, actor: str) -> bool:
        """Blocks (or lets go) the file's content in its account; answers whether the file is
        blocked now (unblocked, it stays blocked while its content is on the blocklist)."""
        if blocked:
            answer = await self.blob.call(
                self.blob.stub.BlockFile, blob_pb2.BlockFileRequest(account_id=account_id, node_id=node_id, reason=reason, actor=actor)
            )
            return answer.file.blocked
        undone = await self.blob.call(
            self.blob.stub.UnblockFile, blob_pb2.UnblockFileRequest(account_id=account_id, node_id=node_id, reason=reason, actor=actor)
        )
        return undone.file.blocked

    async def block_content(self, digests: list[str], *, blocked: bool, reason: str, actor: str) -> tuple[list[StoredCopy], bool]:
        """Puts blocklist entries into blob (or takes them out): in every account, uploads of
        the content are refused and its stored copies blocked. Answers the copies blocked (or
        unblocked) and whether there were more than blob names."""
        answer = await self.blob.call(
            self.blob.stub.BlockContent, blob_pb2.BlockContentRequest(sha256=digests, blocked=blocked, reason=reason, actor=actor),
            bulk=True,  # it walks every account's copies
        )
        return [StoredCopy(f.account_id, f.node_id, f.sha256) for f in answer.files], answer.more

    async def block_link(self, link_id: str, *, blocked: bool, reason: str, actor: str) -> None:
        await self.blob.call(self.blob.stub.BlockLink, blob_pb2.BlockLinkRequest(link_id=link_id, blocked=blocked, reason=reason, actor=actor))

    async def delete_file(self, account_id: str, node_id: str, *, reason: str, actor: str) -> None:
        await self.blob.call(
            self.blob.stub.DeleteFiles, blob_pb2.DeleteFilesRequest(account_id=account_id, node_ids=[node_id], reason=reason, actor=actor)
        )

    async def export_files(self, account_id: str, export_id: str, page_token: str) -> blob_pb2.ExportFilesResponse:
        return await self.blob.call(
            self.blob.stub.ExportFiles,
            blob_pb2.ExportFilesRequest(account_id=account_id, export_id=export_id, page_token=page_token),
            bulk=True,
        )

    async def export_parts(self, account_id: str, export_id: str) -> list[evidence_pb2.ExportAccountResponse]:
        """Each data service's part of the bundle (sync records, device locations), written by
        that service into the preservation bucket."""
        request = evidence_pb2.ExportAccountRequest(account_id=account_id, export_id=export_id)
        return [await remote.call(remote.stub.ExportAccount, request, bulk=True) for remote in self.evidence.values()]

    # --- auth -----------------------------------------------------------------------------

    async def find_account(self, login: str) -> str:
        found = await self.auth.call(self.auth.stub.FindAccount, auth_pb2.FindAccountRequest(login=login), field="target.account")
        return found.account_id

    async def account_exists(self, account_id: str) -> None:
        """Raises NotFound (ACCOUNT_NOT_FOUND) unless auth knows the account."""
        await self.auth.call(
            self.auth.stub.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id=account_id), field="target.account"
        )

    async def suspend(self, account_id: str, until: dt.datetime, *, reason: str, actor: str) -> None:
        await self.auth.call(
            self.auth.stub.SetAccountStatus,
            auth_pb2.SetAccountStatusRequest(
                account_id=account_id, status=auth_pb2.ACCOUNT_STATUS_SUSPENDED, suspended_until=timestamp(until), reason=reason, actor=actor
            ),
        )

    async def terminate(self, account_id: str, *, reason: str, actor: str, export_until: dt.datetime | None = None) -> None:
        """Auth closes the account and ends its sessions; its account.status_changed event
        starts the lifecycle's deletion saga (which waits while the account is held, and until
        `export_until` when the owner may take their data out first)."""
        await self.auth.call(
            self.auth.stub.SetAccountStatus,
            auth_pb2.SetAccountStatusRequest(
                account_id=account_id, status=auth_pb2.ACCOUNT_STATUS_TERMINATED, reason=reason, actor=actor,
                export_until=timestamp(export_until),
            ),
        )

    async def contacts(self, account_id: str) -> dict[str, Any]:
        found = await self.auth.call(self.auth.stub.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id=account_id))
        return json_format.MessageToDict(found, preserving_proto_field_name=True)

    # --- the lifecycle: the authority on accounts and their legal holds ---------------------

    async def lifecycle_account(self, account_id: str) -> lifecycle_pb2.GetAccountResponse:
        """The account's lifecycle record with its transitions; `account.held` is the hold as
        the lifecycle has it now (other services learn it from `account.hold_changed`)."""
        return await self.lifecycle.call(self.lifecycle.stub.GetAccount, lifecycle_pb2.GetAccountRequest(account_id=account_id))

    async def set_hold(self, account_id: str, *, held: bool, reason: str, actor: str) -> None:
        """Placed or released in the lifecycle only: it stops (or lets go) the account's
        deletion and announces the change to every service that keeps data (blob, sync, the
        locator, moderation) as `account.hold_changed`."""
        await self.lifecycle.call(
            self.lifecycle.stub.SetLegalHold,
            lifecycle_pb2.SetLegalHoldRequest(account_id=account_id, held=held, reason=reason, actor=actor),
        )
