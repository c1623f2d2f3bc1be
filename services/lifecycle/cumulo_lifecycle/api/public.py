"""LifecycleService: an account's own view of its state. Asking for the state is not a use
of the account (a frozen account can see its deletion date without undoing the freeze);
Reactivate, and the link from a notice, bring it back."""

from __future__ import annotations

import grpc

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_lifecycle.access import Access
from cumulo_lifecycle.announcements import Announcements
from cumulo_lifecycle.api import convert
from cumulo_lifecycle.reports import Reports
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.interceptors import current_principal

SERVICE = "cumulo.lifecycle.v1.LifecycleService"
ANONYMOUS_METHODS = frozenset({f"/{SERVICE}/ReactivateWithLink", f"/{SERVICE}/InspectReactivationLink", f"/{SERVICE}/ListAnnouncements"})


class LifecycleService(lifecycle_pb2_grpc.LifecycleServiceServicer):
    def __init__(self, *, access: Access, reports: Reports, announcements: Announcements) -> None:
        self.access = access
        self.announcements = announcements
        self.reports = reports

    async def _mine(self) -> pb.Account:
        account_id = current_principal().account_id
        row = await self.reports.state_of(account_id)
        if row is None:
            # Not seen yet (its events are on their way): a new account is active.
            return pb.Account(account_id=account_id, state=pb.ACCOUNT_STATE_ACTIVE)
        return convert.account(row)

    async def GetAccountState(self, request: pb.GetAccountStateRequest, context: grpc.aio.ServicerContext) -> pb.GetAccountStateResponse:
        return pb.GetAccountStateResponse(account=await self._mine())

    async def Reactivate(self, request: pb.ReactivateRequest, context: grpc.aio.ServicerContext) -> pb.ReactivateResponse:
        await self.access.ensure_active(current_principal().account_id, reason="reactivated by the user")
        return pb.ReactivateResponse(account=await self._mine())

    async def InspectReactivationLink(
        self, request: pb.InspectReactivationLinkRequest, context: grpc.aio.ServicerContext
    ) -> pb.InspectReactivationLinkResponse:
        state, delete_at = await self.access.inspect_link(request.token)
        return pb.InspectReactivationLinkResponse(state=convert.STATE[state], delete_at=timestamp(delete_at))

    async def ReactivateWithLink(self, request: pb.ReactivateWithLinkRequest, context: grpc.aio.ServicerContext) -> pb.ReactivateWithLinkResponse:
        state = await self.access.reactivate_with_link(request.token)
        return pb.ReactivateWithLinkResponse(state=convert.STATE[state])

    async def ListAnnouncements(self, request: pb.ListAnnouncementsRequest, context: grpc.aio.ServicerContext) -> pb.ListAnnouncementsResponse:
        return pb.ListAnnouncementsResponse(announcements=[convert.announcement(row) for row in await self.announcements.current()])
