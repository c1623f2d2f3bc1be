"""LifecycleInternalService: for other services and cumulo-admin; the gateway never routes it."""

from __future__ import annotations

import datetime as dt

import grpc

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_lifecycle.access import Access
from cumulo_lifecycle.announcements import Announcements
from cumulo_lifecycle.api import convert
from cumulo_lifecycle.codes import VerificationCodes
from cumulo_lifecycle.holds import Holds
from cumulo_lifecycle.reports import Reports
from cumulo_lifecycle.sweeper import Sweeper
from cumulo_platform.errors import InvalidArgument
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.interceptors import audit_actor

SERVICE = "cumulo.lifecycle.v1.LifecycleInternalService"


class LifecycleInternalService(lifecycle_pb2_grpc.LifecycleInternalServiceServicer):
    def __init__(
        self, *, access: Access, reports: Reports, holds: Holds, sweeper: Sweeper, codes: VerificationCodes, announcements: Announcements
    ) -> None:
        self.codes = codes
        self.announcements = announcements
        self.access = access
        self.reports = reports
        self.holds = holds
        self.sweeper = sweeper

    async def EnsureActive(self, request: pb.EnsureActiveRequest, context: grpc.aio.ServicerContext) -> pb.EnsureActiveResponse:
        state = await self.access.ensure_active(request.account_id)
        return pb.EnsureActiveResponse(state=convert.STATE[state])

    async def GetAccount(self, request: pb.GetAccountRequest, context: grpc.aio.ServicerContext) -> pb.GetAccountResponse:
        row, history, sent = await self.reports.get(request.account_id)
        return pb.GetAccountResponse(
            account=convert.account(row),
            transitions=[convert.transition(t) for t in history],
            notices=[convert.notice(n) for n in sent],
        )

    async def ListAccounts(self, request: pb.ListAccountsRequest, context: grpc.aio.ServicerContext) -> pb.ListAccountsResponse:
        state = ""
        if request.state != pb.ACCOUNT_STATE_UNSPECIFIED:
            if request.state not in convert.STATE_NAME:
                raise InvalidArgument("state", "is not a known account state")
            state = convert.STATE_NAME[request.state]
        rows, next_token = await self.reports.list_accounts(state=state, page_size=request.page_size, page_token=request.page_token)
        return pb.ListAccountsResponse(accounts=[convert.account(r) for r in rows], next_page_token=next_token)

    async def GetReport(self, request: pb.GetReportRequest, context: grpc.aio.ServicerContext) -> pb.GetReportResponse:
        return pb.GetReportResponse(**await self.reports.report())

    async def SetLegalHold(self, request: pb.SetLegalHoldRequest, context: grpc.aio.ServicerContext) -> pb.SetLegalHoldResponse:
        row = await self.holds.set_hold(request.account_id, held=request.held, reason=request.reason, actor=audit_actor(request.actor))
        return pb.SetLegalHoldResponse(account=convert.account(row))

    async def Sweep(self, request: pb.SweepRequest, context: grpc.aio.ServicerContext) -> pb.SweepResponse:
        if request.limit < 0:
            raise InvalidArgument("limit", "must not be negative")
        planned, done = await self.sweeper.sweep(dry_run=request.dry_run, limit=request.limit or None)
        return pb.SweepResponse(
            actions=[pb.PlannedAction(account_id=str(p.account_id), action=p.action, due_at=timestamp(p.due_at)) for p in planned],
            done=done,
        )

    async def ListPurges(self, request: pb.ListPurgesRequest, context: grpc.aio.ServicerContext) -> pb.ListPurgesResponse:
        found = await self.reports.purges(stuck_only=request.stuck_only)
        return pb.ListPurgesResponse(
            purges=[
                pb.Purge(
                    account_id=str(purge.account_id),
                    reason=purge.reason,
                    started_at=timestamp(purge.started_at),
                    stuck=stuck,
                    participants=[
                        pb.PurgeParticipant(
                            service=p.service, requested_at=timestamp(p.requested_at), attempts=p.attempts,
                            completed_at=timestamp(p.completed_at), items_deleted=p.items_deleted,
                        )
                        for p in parts
                    ],
                )
                for purge, parts, stuck in found
            ]
        )

    async def SendVerificationCode(
        self, request: pb.SendVerificationCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendVerificationCodeResponse:
        await self.codes.send(
            account_id=request.account_id, channel=request.channel, destination=request.destination, code=request.code,
            valid_minutes=request.valid_minutes, locale=request.locale, purpose=request.purpose,
        )
        return pb.SendVerificationCodeResponse()

    async def Announce(self, request: pb.AnnounceRequest, context: grpc.aio.ServicerContext) -> pb.AnnounceResponse:
        kind = convert.ANNOUNCEMENT_KIND_NAME.get(request.kind, "")
        row = await self.announcements.announce(
            kind, request.reference,
            starts_at=request.starts_at.ToDatetime(tzinfo=dt.UTC) if request.HasField("starts_at") else None,
            ends_at=request.ends_at.ToDatetime(tzinfo=dt.UTC) if request.HasField("ends_at") else None,
            message_en=request.message_en, message_zh=request.message_zh, actor=audit_actor(request.actor),
        )
        return pb.AnnounceResponse(announcement=convert.announcement(row))

    async def GetAnnouncement(self, request: pb.GetAnnouncementRequest, context: grpc.aio.ServicerContext) -> pb.GetAnnouncementResponse:
        return pb.GetAnnouncementResponse(announcement=convert.announcement(await self.announcements.get(request.announcement_id)))
