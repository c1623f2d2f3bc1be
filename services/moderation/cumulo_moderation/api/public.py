"""ComplaintService (anyone; the owners concerned) and ModerationService (moderators only):
thin — check who calls, translate, call a use case, translate back."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import grpc

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo.moderation.v1 import moderation_pb2_grpc
from cumulo_moderation import audit
from cumulo_moderation.api import convert
from cumulo_moderation.blocklist import Blocklist
from cumulo_moderation.cases import Cases
from cumulo_moderation.complaints import Complaints
from cumulo_moderation.decisions import Decisions
from cumulo_moderation.domain import rules
from cumulo_moderation.preservation import Preservation
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument, PermissionDenied
from cumulo_platform.interceptors import CallInfo, current_call, current_principal
from cumulo_platform.tokens import Principal

COMPLAINT_SERVICE = "cumulo.moderation.v1.ComplaintService"
MODERATION_SERVICE = "cumulo.moderation.v1.ModerationService"
# Complaints need no account: a registered client app (checked by the interceptor) and a
# contact address do. A token, if sent, is verified and makes the complaint the user's. The
# complaint's receipt, not an account, proves who reports legal action.
ANONYMOUS_METHODS = [f"/{COMPLAINT_SERVICE}/FileComplaint", f"/{COMPLAINT_SERVICE}/ReportLegalAction"]
MODERATOR = "moderator"

Authenticate = Callable[[str], Awaitable[Principal]]


def _me() -> uuid.UUID:
    return uuid.UUID(current_principal().account_id)


def _moderator() -> str:
    """The calling moderator's account id (the actor in the audit log); others are refused."""
    principal = current_principal()
    if MODERATOR not in principal.roles:
        raise PermissionDenied("this call is for moderators", reason="NOT_A_MODERATOR")
    return principal.account_id


def _decision(value: pb.Decision.ValueType) -> str:
    decision = rules.DECISIONS.get(value)
    if decision is None:
        raise InvalidArgument("decision", "must be DISMISS, BLOCK, DELETE, WARN, SUSPEND or TERMINATE")
    return decision


class ComplaintService(moderation_pb2_grpc.ComplaintServiceServicer):
    def __init__(self, complaints: Complaints, cases: Cases, authenticate: Authenticate) -> None:
        self.complaints = complaints
        self.cases = cases
        self.authenticate = authenticate

    async def _caller(self, call: CallInfo) -> str | None:
        """The signed-in caller of an anonymous method: a token sent is checked like any other."""
        return (await self.authenticate(call.bearer_token)).account_id if call.bearer_token else None

    async def FileComplaint(self, request: pb.FileComplaintRequest, context: grpc.aio.ServicerContext) -> pb.FileComplaintResponse:
        call = current_call()
        reporter = await self._caller(call)
        filed = await self.complaints.file(request, reporter=reporter, client_id=call.client_id, address=call.client_network)
        return pb.FileComplaintResponse(complaint_id=str(filed.complaint_id), case_id=str(filed.case_id), receipt=filed.receipt)

    async def ReportLegalAction(self, request: pb.ReportLegalActionRequest, context: grpc.aio.ServicerContext) -> pb.ReportLegalActionResponse:
        await self._caller(current_call())
        description = rules.check_description(request.description)
        await self.cases.legal_action(request.complaint_id, request.receipt, description)
        return pb.ReportLegalActionResponse()

    async def ListMyCases(self, request: pb.ListMyCasesRequest, context: grpc.aio.ServicerContext) -> pb.ListMyCasesResponse:
        return pb.ListMyCasesResponse(cases=[convert.case(r, for_owner=True) for r in await self.cases.mine(_me())])

    async def FileCounterNotice(self, request: pb.FileCounterNoticeRequest, context: grpc.aio.ServicerContext) -> pb.FileCounterNoticeResponse:
        owner = _me()
        notice = rules.check_counter_notice(request)
        return pb.FileCounterNoticeResponse(case=convert.case(await self.cases.counter_notice(owner, request.case_id, notice), for_owner=True))


class ModerationService(moderation_pb2_grpc.ModerationServiceServicer):
    def __init__(self, db: Database, cases: Cases, decisions: Decisions, blocklist: Blocklist, preservation: Preservation) -> None:
        self.db = db
        self.cases = cases
        self.decisions = decisions
        self.blocklist = blocklist
        self.preservation = preservation

    async def ListQueue(self, request: pb.ListQueueRequest, context: grpc.aio.ServicerContext) -> pb.ListQueueResponse:
        _moderator()
        state = convert.STATE_NAMES.get(request.state) if request.state else None
        if request.state and state is None:
            raise InvalidArgument("state", "must be OPEN, CLAIMED or DECIDED")
        rows, token = await self.cases.queue(state=state, size=request.page_size, token=request.page_token)
        return pb.ListQueueResponse(cases=[convert.case(r) for r in rows], next_page_token=token)

    async def GetCase(self, request: pb.GetCaseRequest, context: grpc.aio.ServicerContext) -> pb.GetCaseResponse:
        _moderator()
        row, filed, trail = await self.cases.get(request.case_id)
        return pb.GetCaseResponse(
            case=convert.case(row), complaints=[convert.complaint(r) for r in filed], audit=[convert.audit_entry(r) for r in trail]
        )

    async def ClaimCase(self, request: pb.ClaimCaseRequest, context: grpc.aio.ServicerContext) -> pb.ClaimCaseResponse:
        row = await self.cases.claim(request.case_id, _moderator(), take_over=request.take_over)
        return pb.ClaimCaseResponse(case=convert.case(row))

    async def DecideCase(self, request: pb.DecideCaseRequest, context: grpc.aio.ServicerContext) -> pb.DecideCaseResponse:
        moderator = _moderator()
        decision = _decision(request.decision)
        reason = rules.check_reason(request.reason)
        row = await self.decisions.decide(
            request.case_id, moderator, decision=decision, reason=reason, suspend_seconds=request.suspend_seconds,
            allow_export=request.allow_export,
        )
        return pb.DecideCaseResponse(case=convert.case(row))

    async def SetLegalHold(self, request: pb.SetLegalHoldRequest, context: grpc.aio.ServicerContext) -> pb.SetLegalHoldResponse:
        await self.preservation.set_hold(request.account_id, held=request.held, reason=request.reason, actor=_moderator())
        return pb.SetLegalHoldResponse()

    async def ExportEvidence(self, request: pb.ExportEvidenceRequest, context: grpc.aio.ServicerContext) -> pb.ExportEvidenceResponse:
        row = await self.preservation.export(request.account_id, reason=request.reason, actor=_moderator())
        return pb.ExportEvidenceResponse(evidence=convert.evidence(row))

    async def VerifyEvidence(self, request: pb.VerifyEvidenceRequest, context: grpc.aio.ServicerContext) -> pb.VerifyEvidenceResponse:
        _moderator()
        return convert.verification(await self.preservation.verify(request.export_id))

    async def ListAudit(self, request: pb.ListAuditRequest, context: grpc.aio.ServicerContext) -> pb.ListAuditResponse:
        _moderator()
        rows, token = await audit.entries(
            self.db, account_id=request.account_id, case_id=request.case_id, size=request.page_size, token=request.page_token
        )
        return pb.ListAuditResponse(entries=[convert.audit_entry(r) for r in rows], next_page_token=token)

    async def AddToBlocklist(self, request: pb.AddToBlocklistRequest, context: grpc.aio.ServicerContext) -> pb.AddToBlocklistResponse:
        added, listed = await self.blocklist.add(list(request.sha256), reason=request.reason, actor=_moderator())
        return pb.AddToBlocklistResponse(added=added, already_listed=listed)

    async def RemoveFromBlocklist(self, request: pb.RemoveFromBlocklistRequest, context: grpc.aio.ServicerContext) -> pb.RemoveFromBlocklistResponse:
        await self.blocklist.remove(request.sha256, reason=request.reason, actor=_moderator())
        return pb.RemoveFromBlocklistResponse()

    async def ListBlocklist(self, request: pb.ListBlocklistRequest, context: grpc.aio.ServicerContext) -> pb.ListBlocklistResponse:
        _moderator()
        rows, token = await self.blocklist.listing(size=request.page_size, token=request.page_token)
        return pb.ListBlocklistResponse(entries=[convert.blocklist_entry(r) for r in rows], next_page_token=token)
