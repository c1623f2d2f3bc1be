"""The async client: one channel to the gateway, the client-id metadata on every call,
access tokens refreshed silently from the refresh token (auto-login), typed errors."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_sdk.devices import Devices
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.files import Files
from cumulo_sdk.local_state import PendingUploads, lock_path, write_whole
from cumulo_sdk.moderation import Complaints, Moderation
from cumulo_sdk.reach import ConnectionRefused, HandshakeFailed, wait_ready
from cumulo_sdk.sync import Backups, Sync
from cumulo_sdk.takeout import Takeout
from cumulo_sdk.transport import Transport

DEFAULT_GATEWAY = "127.0.0.1:8080"
DEFAULT_CLIENT_ID = "cumulo-cli"
# How long the first call waits for the connection to the gateway: past it, a clear
# GATEWAY_UNREACHABLE instead of a command that seems to hang.
DEFAULT_CONNECT_TIMEOUT = 5.0
# Refresh a little before expiry, so a call never goes out with a token about to lapse.
REFRESH_MARGIN = dt.timedelta(seconds=60)

T = TypeVar("T")


# Refusals of an access token that a refresh may cure: expired, or cut off by a change of the
# account (a session that ended is refused by the refresh itself).
RENEWABLE = ("TOKEN_EXPIRED", "TOKEN_REVOKED")


@dataclasses.dataclass
class Tokens:
    access_token: str = ""
    access_expires_at: float = 0.0
    refresh_token: str = ""
    session_id: str = ""
    account_id: str = ""
    login: str = ""

    @classmethod
    def from_pair(cls, pair: auth_pb2.TokenPair, *, account_id: str = "", login: str = "") -> Tokens:
        return cls(
            access_token=pair.access_token,
            access_expires_at=pair.access_token_expires_at.ToSeconds(),
            refresh_token=pair.refresh_token,
            session_id=pair.session_id,
            account_id=account_id,
            login=login,
        )


class TokenStore:
    """Keeps the tokens in memory, or in a 0600 file when given a path (the CLI's).

    Several processes may share the file (two `cumulo` commands at once): a refresh happens
    under an exclusive lock on the file, after re-reading it, so only one of them spends the
    refresh token and the others use what it wrote.
    """

    def __init__(self, path: pathlib.Path | None = None) -> None:
        self.path = path
        self.tokens: Tokens | None = None
        self.reload()

    def reload(self) -> None:
        if self.path is None:
            return
        try:
            self.tokens = Tokens(**json.loads(self.path.read_text()))
        except FileNotFoundError:
            self.tokens = None
        except (ValueError, TypeError):
            self.tokens = None

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def save(self, tokens: Tokens | None) -> None:
        self.tokens = tokens
        if self.path is None:
            return
        if tokens is None:
            self.path.unlink(missing_ok=True)
            return
        write_whole(self.path, json.dumps(dataclasses.asdict(tokens)))


class Cumulo:
    def __init__(
        self,
        gateway: str = DEFAULT_GATEWAY,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        store: TokenStore | None = None,
        now: Callable[[], float] | None = None,
        pending_uploads: pathlib.Path | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        transport: Transport | None = None,
    ) -> None:
        """`transport`: TLS, trusting CUMULO_CA besides the system's roots, unless
        CUMULO_PLAINTEXT=1 (Transport.from_environ) when not given."""
        self.gateway = gateway
        self.transport = transport if transport is not None else Transport.from_environ()
        self.connect_timeout = connect_timeout
        self._connected = False
        self.client_id = client_id
        self.store = store or TokenStore()
        self._now = now or (lambda: dt.datetime.now(dt.UTC).timestamp())
        self.channel = self.transport.channel(gateway, options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)])
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self._refresh_lock = asyncio.Lock()
        self.files = Files(self, PendingUploads(pending_uploads))
        self.lifecycle = lifecycle_pb2_grpc.LifecycleServiceStub(self.channel)
        self.sync = Sync(self)
        self.backups = Backups(self)
        self.devices = Devices(self)
        self.complaints = Complaints(self)
        self.moderation = Moderation(self)
        self.takeout = Takeout(self)

    async def __aenter__(self) -> Cumulo:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    # --- plumbing ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Waits for the connection to the gateway, at most `connect_timeout` seconds, before
        the first call; GATEWAY_UNREACHABLE past that, or at once when the connection is
        refused. (A call on a channel that cannot connect would otherwise wait for its own
        deadline, or forever for a stream without one.)"""
        if self._connected:
            return
        try:
            await asyncio.wait_for(
                wait_ready(self.channel, self.gateway, lambda: self.transport.handshake_problem(self.gateway)), self.connect_timeout
            )
        except TimeoutError:
            raise self.unreachable() from None
        except HandshakeFailed as failed:
            raise CumuloRpcError(grpc.StatusCode.UNAVAILABLE, str(failed), reason=failed.reason) from None
        except ConnectionRefused:  # nothing listens there: waiting out the deadline cannot help
            raise self.unreachable(refused=True) from None
        self._connected = True

    def unreachable(self, *, refused: bool = False) -> CumuloRpcError:
        why = ": the connection was refused, nothing listens there" if refused else f" (tried for {self.connect_timeout:g} s)"
        return CumuloRpcError(
            grpc.StatusCode.UNAVAILABLE, f"cannot reach the cumulo gateway at {self.gateway}{why}", reason="GATEWAY_UNREACHABLE"
        )

    def rpc_error(self, exc: grpc.aio.AioRpcError) -> CumuloRpcError:
        """The typed error of a failed call; a connection to the gateway that broke since the
        first call is named as such, not in the transport's words."""
        error = CumuloRpcError.from_rpc_error(exc)
        lost = self.channel.get_state() in (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN)
        if error.code == grpc.StatusCode.UNAVAILABLE and not error.reason and lost:
            return dataclasses.replace(
                self.unreachable(), message=f"lost the connection to the cumulo gateway at {self.gateway}"
            )
        return error

    def metadata(self, access_token: str | None = None) -> list[tuple[str, str]]:
        metadata = [("x-cumulo-client-id", self.client_id)]
        if access_token:
            metadata.append(("authorization", f"Bearer {access_token}"))
        return metadata

    async def call(self, method: Callable[..., Awaitable[T]], request: Any, *, authenticated: bool = True, timeout: float = 30) -> T:
        """Call a unary method with the client id, a fresh access token, and typed errors.

        An access token the server finds expired (this machine's clock may be slow) or
        revoked by a change of the account (its roles) is refreshed once and the call retried;
        a session that has ended answers the refresh with its own refusal."""
        await self.connect()
        for attempt in range(2):
            token = await self.access_token(force_refresh=attempt > 0) if authenticated else None
            try:
                return await method(request, metadata=self.metadata(token), timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                error = self.rpc_error(exc)
                if not (authenticated and attempt == 0 and error.reason in RENEWABLE):
                    raise error from None
        raise AssertionError("unreachable")

    async def lasting_stream(self, open_stream: Callable[[list[tuple[str, str]]], Any]) -> AsyncIterator[Any]:
        """The messages of a long-lived server stream, opened again (with a fresh access
        token, after a short doubling pause) whenever the server ends it for an expired token
        or a restart, or the connection drops. `open_stream(metadata)` makes the call."""
        delay = 0.2
        await self.connect()
        renew = False
        while True:
            stream = open_stream(self.metadata(await self.access_token(force_refresh=renew)))
            try:
                async for message in stream:
                    delay = 0.2
                    yield message
            except grpc.aio.AioRpcError as exc:
                error = self.rpc_error(exc)
                if error.reason not in RENEWABLE and error.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL):
                    raise error from None
                renew = error.reason == "TOKEN_REVOKED"
            finally:
                stream.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    def _fresh(self, tokens: Tokens) -> bool:
        return tokens.access_expires_at - REFRESH_MARGIN.total_seconds() > self._now()

    async def access_token(self, *, force_refresh: bool = False) -> str:
        tokens = self.store.tokens
        if tokens is None or not tokens.refresh_token:
            raise CumuloRpcError(grpc.StatusCode.UNAUTHENTICATED, "not logged in; run `cumulo login`", reason="NOT_LOGGED_IN")
        if not force_refresh and self._fresh(tokens):
            return tokens.access_token
        stale = tokens.access_token
        async with self._refresh_lock, self.store.locked():
            self.store.reload()  # another process may have refreshed already
            current = self.store.tokens
            if current is None:
                raise CumuloRpcError(grpc.StatusCode.UNAUTHENTICATED, "not logged in; run `cumulo login`", reason="NOT_LOGGED_IN")
            if current.access_token == stale or not self._fresh(current):
                current = await self._refresh(current)
            return current.access_token

    async def refresh(self) -> Tokens:
        async with self._refresh_lock, self.store.locked():
            self.store.reload()
            if self.store.tokens is None:
                raise CumuloRpcError(grpc.StatusCode.UNAUTHENTICATED, "not logged in", reason="NOT_LOGGED_IN")
            return await self._refresh(self.store.tokens)

    async def _refresh(self, tokens: Tokens) -> Tokens:
        """Spends the refresh token; the caller holds the store's lock."""
        try:
            response = await self.call(
                self.auth.Refresh, auth_pb2.RefreshRequest(refresh_token=tokens.refresh_token), authenticated=False
            )
        except CumuloRpcError as err:
            if err.code == grpc.StatusCode.UNAUTHENTICATED:
                self.store.save(None)  # the session is over; only a new login helps
            raise
        fresh = Tokens.from_pair(response.tokens, account_id=tokens.account_id, login=tokens.login)
        self.store.save(fresh)
        return fresh

    # --- accounts ----------------------------------------------------------------------

    async def terms_version(self) -> str:
        response = await self.call(self.auth.GetTerms, auth_pb2.GetTermsRequest(), authenticated=False)
        return response.version

    async def register(
        self,
        *,
        password: str,
        birth_date: dt.date,
        email: str = "",
        phone: str = "",
        terms_version: str | None = None,
        locale: str = "",
    ) -> auth_pb2.Account:
        version = terms_version if terms_version is not None else await self.terms_version()
        response = await self.call(
            self.auth.Register,
            auth_pb2.RegisterRequest(
                email=email,
                phone=phone,
                password=password,
                birth_date=auth_pb2.Date(year=birth_date.year, month=birth_date.month, day=birth_date.day),
                accepted_terms_version=version,
                locale=locale,
            ),
            authenticated=False,
        )
        return response.account

    async def login(self, login: str, password: str, *, device_name: str = "", second_factor: str = "") -> auth_pb2.Account:
        """`second_factor`: with two-step sign-in on, the authenticator app's code or a recovery code."""
        response = await self.call(
            self.auth.Login,
            auth_pb2.LoginRequest(login=login, password=password, device_name=device_name, second_factor=second_factor),
            authenticated=False,
        )
        self.store.save(Tokens.from_pair(response.tokens, account_id=response.account.account_id, login=login))
        return response.account

    async def whoami(self) -> auth_pb2.GetAccountResponse:
        return await self.call(self.auth.GetAccount, auth_pb2.GetAccountRequest())

    async def sessions(self) -> list[auth_pb2.Session]:
        return list((await self.call(self.auth.ListSessions, auth_pb2.ListSessionsRequest())).sessions)

    async def confirm_password(self, password: str) -> None:
        """The password once more: the session's access token now says it was just entered
        (what wiping a device needs)."""
        response = await self.call(self.auth.ConfirmPassword, auth_pb2.ConfirmPasswordRequest(password=password))
        async with self._refresh_lock, self.store.locked():
            self.store.reload()
            current = self.store.tokens
            if current is not None:
                self.store.save(
                    dataclasses.replace(
                        current,
                        access_token=response.access_token,
                        access_expires_at=response.access_token_expires_at.ToSeconds(),
                    )
                )

    async def revoke_session(self, session_id: str) -> None:
        await self.call(self.auth.RevokeSession, auth_pb2.RevokeSessionRequest(session_id=session_id))

    async def guardians(self) -> list[auth_pb2.Guardian]:
        """Who has had a guardian's access to this account, since and until when."""
        return list((await self.call(self.auth.ListGuardians, auth_pb2.ListGuardiansRequest())).guardians)

    async def revoke_guardian(self, guardian_account_id: str) -> auth_pb2.Guardian:
        """An adult ends a guardian's access now (a minor cannot: it ends at 18 by itself)."""
        request = auth_pb2.RevokeGuardianRequest(guardian_account_id=guardian_account_id)
        return (await self.call(self.auth.RevokeGuardian, request)).guardian

    async def two_step_begin(self) -> auth_pb2.BeginTwoStepResponse:
        """Two-step sign-in, step one (needs `confirm_password` lately): the secret for an
        authenticator app, as an otpauth:// URI and in base32."""
        return await self.call(self.auth.BeginTwoStep, auth_pb2.BeginTwoStepRequest())

    async def two_step_confirm(self, code: str) -> list[str]:
        """The app's code: two-step sign-in is on. The recovery codes, shown this once."""
        return list((await self.call(self.auth.ConfirmTwoStep, auth_pb2.ConfirmTwoStepRequest(code=code))).recovery_codes)

    async def two_step_disable(self, code: str) -> None:
        await self.call(self.auth.DisableTwoStep, auth_pb2.DisableTwoStepRequest(code=code))

    async def change_password(self, current: str, new: str) -> None:
        """Every other session of the account ends; this one stays."""
        await self.call(self.auth.ChangePassword, auth_pb2.ChangePasswordRequest(current_password=current, new_password=new))

    async def cancel_account(self, password: str) -> None:
        """Cancels the account: its cloud content is deleted by every service, and it cannot sign in again."""
        await self.call(self.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=password))

    async def terms_acceptances(self) -> list[auth_pb2.TermsAcceptance]:
        """Every version of the terms the account accepted, newest first."""
        return list((await self.call(self.auth.ListTermsAcceptances, auth_pb2.ListTermsAcceptancesRequest())).acceptances)

    async def accept_terms(self, version: str) -> auth_pb2.Account:
        return (await self.call(self.auth.AcceptTerms, auth_pb2.AcceptTermsRequest(terms_version=version))).account

    async def create_minor(self, *, email: str = "", phone: str = "", password: str, birth_date: dt.date) -> auth_pb2.Account:
        """A guardian creates the account of a minor in their care (their consent given)."""
        request = auth_pb2.CreateMinorAccountRequest(
            email=email, phone=phone, password=password, guardian_consent=True,
            birth_date=auth_pb2.Date(year=birth_date.year, month=birth_date.month, day=birth_date.day),
        )
        return (await self.call(self.auth.CreateMinorAccount, request)).account

    async def minors(self) -> list[auth_pb2.Minor]:
        """The accounts in this guardian's care now, and until when."""
        return list((await self.call(self.auth.ListMinors, auth_pb2.ListMinorsRequest())).minors)

    async def set_minor_password(self, minor_account_id: str, new_password: str) -> None:
        """A guardian's new password for a minor in their care (needs `confirm_password` lately)."""
        request = auth_pb2.SetMinorPasswordRequest(minor_account_id=minor_account_id, new_password=new_password)
        await self.call(self.auth.SetMinorPassword, request)

    # --- contacts: notices go only to those the owner verified ------------------------------

    async def update_contacts(self, *, email: str | None = None, phone: str | None = None) -> auth_pb2.Account:
        """Sets the contacts given ("" removes one); each new one is unverified until its code is
        entered. Needs the password entered lately (`confirm_password`)."""
        mask = [name for name, value in (("email", email), ("phone", phone)) if value is not None]
        request = auth_pb2.UpdateContactsRequest(email=email or "", phone=phone or "", update_mask=mask)
        return (await self.call(self.auth.UpdateContacts, request)).account

    async def send_verification_code(self, channel: str) -> auth_pb2.SendVerificationCodeResponse:
        """A code to the account's "email" or "phone"; `verify_contact` with it."""
        return await self.call(self.auth.SendVerificationCode, auth_pb2.SendVerificationCodeRequest(channel=channel))

    async def verify_contact(self, channel: str, code: str) -> auth_pb2.Account:
        return (await self.call(self.auth.VerifyContact, auth_pb2.VerifyContactRequest(channel=channel, code=code))).account

    async def start_password_reset(self, login: str) -> None:
        """A forgotten password: a code to `login` if it is a verified contact of an account (the
        answer says nothing either way)."""
        await self.call(self.auth.StartPasswordReset, auth_pb2.StartPasswordResetRequest(login=login), authenticated=False)

    async def reset_password(self, login: str, code: str, new_password: str) -> None:
        """The code and a new password: every session of the account ends (this client's too)."""
        request = auth_pb2.ResetPasswordRequest(login=login, code=code, new_password=new_password)
        await self.call(self.auth.ResetPassword, request, authenticated=False)

    # --- the account's lifecycle (freeze after a year unused, deletion 30 days later) -------

    async def account_state(self) -> lifecycle_pb2.Account:
        """Asking does not count as a use: a frozen account stays frozen."""
        return (await self.call(self.lifecycle.GetAccountState, lifecycle_pb2.GetAccountStateRequest())).account

    async def reactivate(self) -> lifecycle_pb2.Account:
        return (await self.call(self.lifecycle.Reactivate, lifecycle_pb2.ReactivateRequest())).account

    async def reactivate_with_link(self, token: str) -> None:
        await self.call(
            self.lifecycle.ReactivateWithLink, lifecycle_pb2.ReactivateWithLinkRequest(token=token), authenticated=False
        )

    async def logout(self) -> None:
        try:
            await self.call(self.auth.Logout, auth_pb2.LogoutRequest())
        finally:
            self.store.save(None)
