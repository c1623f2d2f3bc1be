"""AuthService: the public account API. Thin: translate, call a handler, translate back."""

from __future__ import annotations

import grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_auth.account_changes import AccountChanges
from cumulo_auth.api import convert
from cumulo_auth.contacts import ContactVerification
from cumulo_auth.guardians import GuardianLink, Guardians
from cumulo_auth.login import Login
from cumulo_auth.recovery import PasswordResets
from cumulo_auth.registration import Registration
from cumulo_auth.sessions import Sessions
from cumulo_auth.two_step import TwoStep
from cumulo_platform.errors import InvalidArgument
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.interceptors import current_call, current_principal, mark_used
from cumulo_platform.tokens import Principal

SERVICE = "cumulo.auth.v1.AuthService"
# Methods callable without an access token (they still need a registered client id).
ANONYMOUS_METHODS = frozenset(
    f"/{SERVICE}/{m}" for m in ("GetTerms", "CheckNewPassword", "Register", "Login", "Refresh", "StartPasswordReset", "ResetPassword",
                                 "RevokeSessionWithLink")
)
# Methods that check the caller's session first-hand, past the platform's revocations: a retried
# CancelAccount comes with the session its first, answered-but-lost, call ended.
OWN_SESSION_CHECKS = frozenset({f"/{SERVICE}/CancelAccount"})


class AuthService(auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self,
        *,
        terms_version: str,
        terms_text: str,
        registration: Registration,
        login: Login,
        sessions: Sessions,
        changes: AccountChanges,
        guardians: Guardians,
        contacts: ContactVerification,
        resets: PasswordResets,
        two_step: TwoStep,
    ) -> None:
        self.terms_version = terms_version
        self.terms_text = terms_text
        self.registration = registration
        self.login = login
        self.sessions = sessions
        self.changes = changes
        self.guardians = guardians
        self.contacts = contacts
        self.resets = resets
        self.two_step = two_step

    async def _me(self) -> Principal:
        principal = current_principal()
        await self.sessions.require_live_session(principal)
        return principal

    async def GetTerms(self, request: auth_pb2.GetTermsRequest, context: grpc.aio.ServicerContext) -> auth_pb2.GetTermsResponse:
        return auth_pb2.GetTermsResponse(version=self.terms_version, text=self.terms_text)

    async def CheckNewPassword(
        self, request: auth_pb2.CheckNewPasswordRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.CheckNewPasswordResponse:
        self.registration.check_new_password(
            request.password, email=request.email, phone=request.phone, client_network=current_call().client_network
        )
        return auth_pb2.CheckNewPasswordResponse()

    async def Register(self, request: auth_pb2.RegisterRequest, context: grpc.aio.ServicerContext) -> auth_pb2.RegisterResponse:
        if not request.HasField("birth_date"):
            raise InvalidArgument("birth_date", "is required")
        row = await self.registration.register(
            email=request.email,
            phone=request.phone,
            password=request.password,
            birth_date=convert.date_tuple(request.birth_date),
            accepted_terms_version=request.accepted_terms_version,
            locale=request.locale,
            client_network=current_call().client_network,
            client_id=current_call().client_id,
        )
        return auth_pb2.RegisterResponse(account=convert.account(row))

    async def Login(self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext) -> auth_pb2.LoginResponse:
        call = current_call()
        tokens, row = await self.login.login(
            login=request.login,
            password=request.password,
            device_name=request.device_name,
            client_id=call.client_id,
            client_network=call.client_network,
            second_factor=request.second_factor,
        )
        mark_used(str(row["account_id"]))
        account = convert.account(row)
        return auth_pb2.LoginResponse(
            tokens=convert.tokens(tokens), account=account, verify_contacts=not (account.email_verified or account.phone_verified),
            accept_terms_version=self.terms_version if account.accepted_terms_version != self.terms_version else "",
        )

    async def StartPasswordReset(
        self, request: auth_pb2.StartPasswordResetRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.StartPasswordResetResponse:
        await self.resets.start(request.login, current_call().client_network)
        return auth_pb2.StartPasswordResetResponse()

    async def ResetPassword(self, request: auth_pb2.ResetPasswordRequest, context: grpc.aio.ServicerContext) -> auth_pb2.ResetPasswordResponse:
        await self.resets.reset(request.login, request.code, request.new_password, current_call().client_network)
        return auth_pb2.ResetPasswordResponse()

    async def Refresh(self, request: auth_pb2.RefreshRequest, context: grpc.aio.ServicerContext) -> auth_pb2.RefreshResponse:
        tokens = await self.sessions.refresh(refresh_token=request.refresh_token, client_id=current_call().client_id)
        mark_used(str(tokens.account_id))
        return auth_pb2.RefreshResponse(tokens=convert.tokens(tokens))

    async def Logout(self, request: auth_pb2.LogoutRequest, context: grpc.aio.ServicerContext) -> auth_pb2.LogoutResponse:
        await self.sessions.logout(current_principal())
        return auth_pb2.LogoutResponse()

    async def GetAccount(self, request: auth_pb2.GetAccountRequest, context: grpc.aio.ServicerContext) -> auth_pb2.GetAccountResponse:
        row = await self.sessions.require_live_session(current_principal())
        return auth_pb2.GetAccountResponse(
            account=convert.account(row), current_terms_version=self.terms_version
        )

    async def ListSessions(self, request: auth_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext) -> auth_pb2.ListSessionsResponse:
        principal = await self._me()
        rows = await self.sessions.list_sessions(principal)
        return auth_pb2.ListSessionsResponse(
            sessions=[
                auth_pb2.Session(
                    session_id=str(r["session_id"]),
                    client_id=r["client_id"],
                    device_name=r["device_name"],
                    created_at=timestamp(r["created_at"]),
                    last_used_at=timestamp(r["last_used_at"]),
                    current=str(r["session_id"]) == principal.session_id,
                )
                for r in rows
            ]
        )

    async def RevokeSession(self, request: auth_pb2.RevokeSessionRequest, context: grpc.aio.ServicerContext) -> auth_pb2.RevokeSessionResponse:
        await self.sessions.revoke_session(await self._me(), request.session_id)
        return auth_pb2.RevokeSessionResponse()

    async def RevokeSessionWithLink(
        self, request: auth_pb2.RevokeSessionWithLinkRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RevokeSessionWithLinkResponse:
        device, signed_in_at, revoked = await self.sessions.revoke_with_link(request.token, current_call().client_network)
        return auth_pb2.RevokeSessionWithLinkResponse(device_name=device, signed_in_at=timestamp(signed_in_at), revoked=revoked)

    async def CreateMinorAccount(
        self, request: auth_pb2.CreateMinorAccountRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.CreateMinorAccountResponse:
        if not request.HasField("birth_date"):
            raise InvalidArgument("birth_date", "is required")
        row = await self.registration.create_minor_account(
            await self._me(),
            email=request.email,
            phone=request.phone,
            password=request.password,
            birth_date=convert.date_tuple(request.birth_date),
            guardian_consent=request.guardian_consent,
            client_network=current_call().client_network,
            client_id=current_call().client_id,
        )
        return auth_pb2.CreateMinorAccountResponse(account=convert.account(row))

    async def BeginTwoStep(self, request: auth_pb2.BeginTwoStepRequest, context: grpc.aio.ServicerContext) -> auth_pb2.BeginTwoStepResponse:
        secret, uri = await self.two_step.begin(await self._me())
        return auth_pb2.BeginTwoStepResponse(secret=secret, otpauth_uri=uri)

    async def ConfirmTwoStep(self, request: auth_pb2.ConfirmTwoStepRequest, context: grpc.aio.ServicerContext) -> auth_pb2.ConfirmTwoStepResponse:
        return auth_pb2.ConfirmTwoStepResponse(recovery_codes=await self.two_step.confirm(await self._me(), request.code))

    async def DisableTwoStep(self, request: auth_pb2.DisableTwoStepRequest, context: grpc.aio.ServicerContext) -> auth_pb2.DisableTwoStepResponse:
        await self.two_step.disable(await self._me(), request.code)
        return auth_pb2.DisableTwoStepResponse()

    async def ListMinors(self, request: auth_pb2.ListMinorsRequest, context: grpc.aio.ServicerContext) -> auth_pb2.ListMinorsResponse:
        minors = await self.guardians.minors(await self._me())
        return auth_pb2.ListMinorsResponse(
            minors=[auth_pb2.Minor(account_id=str(m.account_id), login=m.login, until=timestamp(m.until)) for m in minors]
        )

    async def SetMinorPassword(
        self, request: auth_pb2.SetMinorPasswordRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.SetMinorPasswordResponse:
        await self.guardians.set_minor_password(
            await self._me(), request.minor_account_id, request.new_password, address=current_call().client_network
        )
        return auth_pb2.SetMinorPasswordResponse()

    async def UpdateContacts(self, request: auth_pb2.UpdateContactsRequest, context: grpc.aio.ServicerContext) -> auth_pb2.UpdateContactsResponse:
        row = await self.changes.update_contacts(
            await self._me(), email=request.email, phone=request.phone, mask=list(request.update_mask)
        )
        return auth_pb2.UpdateContactsResponse(account=convert.account(row))

    async def SendVerificationCode(
        self, request: auth_pb2.SendVerificationCodeRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.SendVerificationCodeResponse:
        sent_to, expires_at = await self.contacts.send_code(await self._me(), request.channel)
        return auth_pb2.SendVerificationCodeResponse(sent_to=sent_to, expires_at=timestamp(expires_at))

    async def VerifyContact(self, request: auth_pb2.VerifyContactRequest, context: grpc.aio.ServicerContext) -> auth_pb2.VerifyContactResponse:
        row = await self.contacts.verify(await self._me(), request.channel, request.code)
        return auth_pb2.VerifyContactResponse(account=convert.account(row))

    async def ListTermsAcceptances(
        self, request: auth_pb2.ListTermsAcceptancesRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListTermsAcceptancesResponse:
        rows = await self.changes.terms_acceptances(await self._me())
        return auth_pb2.ListTermsAcceptancesResponse(
            acceptances=[
                auth_pb2.TermsAcceptance(
                    version=r.version, accepted_at=timestamp(r.accepted_at), client_id=r.client_id, accepted_by=str(r.accepted_by or "")
                )
                for r in rows
            ]
        )

    async def AcceptTerms(self, request: auth_pb2.AcceptTermsRequest, context: grpc.aio.ServicerContext) -> auth_pb2.AcceptTermsResponse:
        row = await self.changes.accept_terms(await self._me(), request.terms_version)
        return auth_pb2.AcceptTermsResponse(account=convert.account(row))

    async def ChangePassword(self, request: auth_pb2.ChangePasswordRequest, context: grpc.aio.ServicerContext) -> auth_pb2.ChangePasswordResponse:
        await self.changes.change_password(
            await self._me(), current_password=request.current_password, new_password=request.new_password
        )
        return auth_pb2.ChangePasswordResponse()

    async def ConfirmPassword(
        self, request: auth_pb2.ConfirmPasswordRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ConfirmPasswordResponse:
        token, expires, confirmed = await self.sessions.confirm_password(current_principal(), request.password)
        return auth_pb2.ConfirmPasswordResponse(
            access_token=token, access_token_expires_at=timestamp(expires), password_confirmed_at=timestamp(confirmed)
        )

    async def CancelAccount(self, request: auth_pb2.CancelAccountRequest, context: grpc.aio.ServicerContext) -> auth_pb2.CancelAccountResponse:
        await self.changes.cancel_account(current_principal(), password=request.password)
        return auth_pb2.CancelAccountResponse()

    async def ListGuardians(self, request: auth_pb2.ListGuardiansRequest, context: grpc.aio.ServicerContext) -> auth_pb2.ListGuardiansResponse:
        links = await self.guardians.list(await self._me())
        return auth_pb2.ListGuardiansResponse(guardians=[_guardian(link) for link in links])

    async def RevokeGuardian(self, request: auth_pb2.RevokeGuardianRequest, context: grpc.aio.ServicerContext) -> auth_pb2.RevokeGuardianResponse:
        link = await self.guardians.revoke(await self._me(), request.guardian_account_id)
        return auth_pb2.RevokeGuardianResponse(guardian=_guardian(link))


def _guardian(link: GuardianLink) -> auth_pb2.Guardian:
    return auth_pb2.Guardian(
        guardian_account_id=str(link.guardian_account_id),
        login=link.login,
        since=timestamp(link.since),
        until=timestamp(link.until),
        revoked_at=timestamp(link.revoked_at) if link.revoked_at else None,
        active=link.active,
    )
