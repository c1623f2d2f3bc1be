"""Complaints (anyone), the owner's side of moderation (cases about my content, counter-notices)
and the moderators' queue, holds, evidence, audit log and blocklist."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo.moderation.v1 import moderation_pb2_grpc

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

CATEGORIES = {
    "illegal": pb.CATEGORY_ILLEGAL,
    "harmful": pb.CATEGORY_HARMFUL,
    "privacy": pb.CATEGORY_PRIVACY,
    "spam": pb.CATEGORY_SPAM,
    "copyright": pb.CATEGORY_COPYRIGHT,
    "other": pb.CATEGORY_OTHER,
}
DECISIONS = {
    "dismiss": pb.DECISION_DISMISS,
    "block": pb.DECISION_BLOCK,
    "delete": pb.DECISION_DELETE,
    "warn": pb.DECISION_WARN,
    "suspend": pb.DECISION_SUSPEND,
    "terminate": pb.DECISION_TERMINATE,
}
IMPORT_BATCH = 5000


def target(kind: str, value: str) -> pb.Target:
    if kind == "link":
        return pb.Target(kind=pb.TARGET_KIND_LINK, link=value)
    if kind == "file":
        return pb.Target(kind=pb.TARGET_KIND_FILE, node_id=value)
    return pb.Target(kind=pb.TARGET_KIND_ACCOUNT, account=value)


class Complaints:
    def __init__(self, client: Cumulo) -> None:
        self.client = client
        self.stub = moderation_pb2_grpc.ComplaintServiceStub(client.channel)

    async def report(
        self, kind: str, value: str, *, category: str, description: str, contact_address: str = "",
        copyright: pb.CopyrightClaim | None = None, signed_in: bool = True,
    ) -> pb.FileComplaintResponse:
        request = pb.FileComplaintRequest(
            target=target(kind, value), category=CATEGORIES[category], description=description, contact_address=contact_address,
            copyright=copyright,
        )
        return await self.client.call(self.stub.FileComplaint, request, authenticated=signed_in)

    async def legal_action(self, complaint_id: str, receipt: str, description: str) -> None:
        await self.client.call(
            self.stub.ReportLegalAction,
            pb.ReportLegalActionRequest(complaint_id=complaint_id, receipt=receipt, description=description),
            authenticated=False,  # the receipt proves it: complainants may have no account
        )

    async def my_cases(self) -> list[pb.CaseSummary]:
        return list((await self.client.call(self.stub.ListMyCases, pb.ListMyCasesRequest())).cases)

    async def counter_notice(self, case_id: str, *, statement: str, name: str, contact: str) -> pb.CaseSummary:
        request = pb.FileCounterNoticeRequest(
            case_id=case_id, statement=statement, name=name, contact=contact, consent_to_jurisdiction=True, good_faith_statement=True,
        )
        return (await self.client.call(self.stub.FileCounterNotice, request)).case


class Moderation:
    def __init__(self, client: Cumulo) -> None:
        self.client = client
        self.stub = moderation_pb2_grpc.ModerationServiceStub(client.channel)

    async def queue(self, state: pb.CaseState.ValueType = pb.CASE_STATE_UNSPECIFIED) -> AsyncIterator[pb.CaseSummary]:
        token = ""
        while True:
            page = await self.client.call(self.stub.ListQueue, pb.ListQueueRequest(state=state, page_token=token))
            for case in page.cases:
                yield case
            token = page.next_page_token
            if not token:
                return

    async def case(self, case_id: str) -> pb.GetCaseResponse:
        return await self.client.call(self.stub.GetCase, pb.GetCaseRequest(case_id=case_id))

    async def claim(self, case_id: str, *, take_over: bool = False) -> pb.CaseSummary:
        return (await self.client.call(self.stub.ClaimCase, pb.ClaimCaseRequest(case_id=case_id, take_over=take_over))).case

    async def decide(self, case_id: str, decision: str, reason: str, *, suspend_seconds: int = 0, allow_export: bool = False) -> pb.CaseSummary:
        request = pb.DecideCaseRequest(
            case_id=case_id, decision=DECISIONS[decision], reason=reason, suspend_seconds=suspend_seconds, allow_export=allow_export
        )
        return (await self.client.call(self.stub.DecideCase, request, timeout=120)).case

    async def hold(self, account_id: str, *, held: bool, reason: str) -> None:
        await self.client.call(self.stub.SetLegalHold, pb.SetLegalHoldRequest(account_id=account_id, held=held, reason=reason))

    async def export(self, account_id: str, reason: str) -> pb.Evidence:
        request = pb.ExportEvidenceRequest(account_id=account_id, reason=reason)
        return (await self.client.call(self.stub.ExportEvidence, request, timeout=3600)).evidence

    async def verify(self, export_id: str) -> pb.VerifyEvidenceResponse:
        return await self.client.call(self.stub.VerifyEvidence, pb.VerifyEvidenceRequest(export_id=export_id), timeout=3600)

    async def audit(self, *, account_id: str = "", case_id: str = "", limit: int = 100) -> list[pb.AuditEntry]:
        entries: list[pb.AuditEntry] = []
        token = ""
        while len(entries) < limit:
            request = pb.ListAuditRequest(account_id=account_id, case_id=case_id, page_size=min(1000, limit - len(entries)), page_token=token)
            page = await self.client.call(self.stub.ListAudit, request)
            entries.extend(page.entries)
            token = page.next_page_token
            if not token:
                break
        return entries

    async def block_hashes(self, digests: Iterable[str], reason: str) -> tuple[int, int]:
        """(added, already listed), in batches."""
        wanted = list(digests)
        added = listed = 0
        for start in range(0, len(wanted), IMPORT_BATCH):
            request = pb.AddToBlocklistRequest(sha256=wanted[start : start + IMPORT_BATCH], reason=reason)
            response = await self.client.call(self.stub.AddToBlocklist, request)
            added, listed = added + response.added, listed + response.already_listed
        return added, listed

    async def unblock_hash(self, digest: str, reason: str) -> None:
        await self.client.call(self.stub.RemoveFromBlocklist, pb.RemoveFromBlocklistRequest(sha256=digest, reason=reason))

    async def blocklist(self) -> AsyncIterator[pb.BlocklistEntry]:
        token = ""
        while True:
            page = await self.client.call(self.stub.ListBlocklist, pb.ListBlocklistRequest(page_token=token))
            for entry in page.entries:
                yield entry
            token = page.next_page_token
            if not token:
                return


def read_digests(path: pathlib.Path) -> list[str]:
    """A blocklist file: one SHA-256 per line (or `sha256sum` output: digest first); blank
    lines and # comments are skipped."""
    digests = []
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            digests.append(text.split()[0])
    return digests
