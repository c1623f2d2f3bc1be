"""AuthInternalService: for other services only; the gateway never routes it."""

from __future__ import annotations

import datetime as dt

import grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_auth.adapters.signing import KeyInfo, SigningKeys
from cumulo_auth.admin import Admin
from cumulo_auth.api import convert
from cumulo_auth.client_apps import ClientApps
from cumulo_platform.errors import NotFound
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.identity import OPERATOR
from cumulo_platform.interceptors import audit_actor, current_call
from cumulo_platform.tokens import ALGORITHM

SERVICE = "cumulo.auth.v1.AuthInternalService"


class AuthInternalService(auth_pb2_grpc.AuthInternalServiceServicer):
    def __init__(self, *, keys: SigningKeys, client_apps: ClientApps, admin: Admin) -> None:
        self.keys = keys
        self.client_apps = client_apps
        self.admin = admin

    async def GetSigningKeys(self, request: auth_pb2.GetSigningKeysRequest, context: grpc.aio.ServicerContext) -> auth_pb2.GetSigningKeysResponse:
        keys = await self.keys.public_keys(request.key_id)
        return auth_pb2.GetSigningKeysResponse(
            keys=[auth_pb2.SigningKey(key_id=k, algorithm=ALGORITHM, public_key=pub) for k, pub in keys]
        )

    async def GetClientApp(self, request: auth_pb2.GetClientAppRequest, context: grpc.aio.ServicerContext) -> auth_pb2.GetClientAppResponse:
        found = await self.client_apps.find(request.client_id)
        if found is None:
            raise NotFound("no such client app", reason="CLIENT_NOT_FOUND")
        name, enabled = found
        return auth_pb2.GetClientAppResponse(client_id=request.client_id, name=name, enabled=enabled)

    async def RegisterClientApp(self, request: auth_pb2.RegisterClientAppRequest, context: grpc.aio.ServicerContext) -> auth_pb2.RegisterClientAppResponse:
        await self.client_apps.register(request.client_id, request.name)
        return auth_pb2.RegisterClientAppResponse()

    async def SetAccountStatus(self, request: auth_pb2.SetAccountStatusRequest, context: grpc.aio.ServicerContext) -> auth_pb2.SetAccountStatusResponse:
        row = await self.admin.set_account_status(
            account_id=request.account_id,
            status=convert.PROTO_TO_STATUS.get(request.status, "unspecified"),
            suspended_until=request.suspended_until.ToDatetime(tzinfo=dt.UTC)
            if request.HasField("suspended_until")
            else None,
            export_until=request.export_until.ToDatetime(tzinfo=dt.UTC) if request.HasField("export_until") else None,
            reason=request.reason,
            actor=audit_actor(request.actor),
        )
        return auth_pb2.SetAccountStatusResponse(account=convert.account(row))

    async def GetAccountContacts(self, request: auth_pb2.GetAccountContactsRequest, context: grpc.aio.ServicerContext) -> auth_pb2.GetAccountContactsResponse:
        found = await self.admin.get_contacts(request.account_id)
        return auth_pb2.GetAccountContactsResponse(
            email=found.email, phone=found.phone, locale=found.locale, guardian_email=found.guardian_email,
            guardian_phone=found.guardian_phone, guardian_until=timestamp(found.guardian_until),
        )

    async def FindAccount(self, request: auth_pb2.FindAccountRequest, context: grpc.aio.ServicerContext) -> auth_pb2.FindAccountResponse:
        # People find people by verified contacts only; the operator finds any account.
        verified_only = current_call().caller != OPERATOR
        return auth_pb2.FindAccountResponse(account_id=await self.admin.find_account(request.login, verified_only=verified_only))

    async def SetAccountRoles(self, request: auth_pb2.SetAccountRolesRequest, context: grpc.aio.ServicerContext) -> auth_pb2.SetAccountRolesResponse:
        roles = await self.admin.set_roles(request.account_id, list(request.roles), reason=request.reason, actor=audit_actor(request.actor))
        return auth_pb2.SetAccountRolesResponse(roles=roles)

    async def RotateSigningKey(
        self, request: auth_pb2.RotateSigningKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RotateSigningKeyResponse:
        added, keys = await self.keys.rotate()
        return auth_pb2.RotateSigningKeyResponse(key=_key(added), keys=[_key(k) for k in keys])


def _key(info: KeyInfo) -> auth_pb2.SigningKeyState:
    return auth_pb2.SigningKeyState(
        key_id=info.key_id, created_at=timestamp(info.created_at), signs_from=timestamp(info.signs_from),
        retired_at=timestamp(info.retired_at) if info.retired_at else None,
    )
