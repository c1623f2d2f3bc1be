"""Fixtures of the auth service's tests: `accounts` registers and logs in accounts,
`module_client` serves module-scoped fixtures, and `start_own_auth` starts an auth of a test's
own, with its own settings (test modules cannot import each other, so their shared helpers
live here and in cumulo_devstack.testing)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_auth import bootstrap as auth_bootstrap
from cumulo_auth.config import AuthSettings
from cumulo_devstack.servers import EmbeddedNats, free_port
from cumulo_devstack.testing import (
    PASSWORD,
    allowed_caller,
    call,
    eventually,
    rpc,
    start_service,
    transport_for,
    unique_email,
    unique_phone,
)
from cumulo_platform.clock import FrozenClock
from cumulo_sdk import Cumulo
from cumulo_sdk.errors import CumuloRpcError

TERMS = "2026-11"  # the service's current terms version
ADULT = auth_pb2.Date(year=1990, month=5, day=17)


@dataclasses.dataclass
class Member:
    """A logged-in account and the tokens of its session."""

    account_id: str
    email: str
    phone: str
    access_token: str
    refresh_token: str
    session_id: str


class Accounts:
    """Auth's account calls as the tests make them: through the client they are given, each
    from a fresh fake client address (see cumulo_devstack.testing.call)."""

    def register(self, client: Cumulo, *, email="", phone="", password=PASSWORD, birth_date=ADULT, terms=TERMS):
        """The Register call, to await (or gather, or expect to fail); no birth date if None."""
        request = auth_pb2.RegisterRequest(email=email, phone=phone, password=password, accepted_terms_version=terms)
        if birth_date is not None:
            request.birth_date.CopyFrom(birth_date)
        return call(client, client.auth.Register, request)

    async def new_account(self, client: Cumulo, *, with_phone: bool = False) -> str:
        """A newly registered adult (no session yet); returns the e-mail address."""
        email = unique_email()
        await self.register(client, email=email, phone=unique_phone() if with_phone else "")
        return email

    def login_call(
        self, client: Cumulo, login: str, password: str = PASSWORD, device_name: str = "test device", *, address: str | None = None
    ):
        """The Login call, to await (or expect to fail); from `address` if given."""
        request = auth_pb2.LoginRequest(login=login, password=password, device_name=device_name)
        return call(client, client.auth.Login, request, address=address)

    async def login(
        self, client: Cumulo, login: str, password: str = PASSWORD, device_name: str = "test device", *, address: str | None = None
    ) -> Member:
        """A new session of the account `login` names."""
        response = await self.login_call(client, login, password, device_name, address=address)
        account, tokens = response.account, response.tokens
        return Member(account.account_id, account.email, account.phone, tokens.access_token, tokens.refresh_token, tokens.session_id)

    async def new_member(self, client: Cumulo, *, with_phone: bool = False) -> Member:
        """A newly registered adult, logged in once."""
        return await self.login(client, await self.new_account(client, with_phone=with_phone))

    def refresh(self, client: Cumulo, refresh_token: str):
        return call(client, client.auth.Refresh, auth_pb2.RefreshRequest(refresh_token=refresh_token))

    def get_account(self, client: Cumulo, access_token: str):
        return call(client, client.auth.GetAccount, auth_pb2.GetAccountRequest(), access_token)


@pytest.fixture(scope="session")
def accounts() -> Accounts:
    return Accounts()


@pytest.fixture(scope="module")
async def module_client(auth) -> AsyncIterator[Cumulo]:
    """A client straight to auth that lives as long as the test module (for module fixtures)."""
    async with Cumulo(auth.target, transport=transport_for(auth.target)) as client:
        yield client


@pytest.fixture
async def hold_deletion(lifecycle: Any) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    """Holds an account's deletion in the lifecycle (its SetLegalHold), so that a cancelled or
    terminated account stays as it is: the deletion saga would otherwise purge it at its own
    pace, and a test would see ACCOUNT_DELETED or not depending on the machine's speed."""
    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as internal:

        async def hold(account_id: str) -> None:
            request = lifecycle_pb2.SetLegalHoldRequest(account_id=account_id, held=True, reason="test: keep the account as it is", actor="tests")

            async def held() -> bool:
                try:
                    await rpc(internal.SetLegalHold, request)
                except CumuloRpcError as exc:
                    if exc.code == grpc.StatusCode.NOT_FOUND:
                        return False  # the lifecycle has not heard of the account yet
                    raise
                return True

            await eventually(held, what="the lifecycle to hold the account")

        yield hold


@dataclasses.dataclass
class OwnAuth:
    """An auth service of a test's own: its app, its clock (standing still unless moved) and
    where it listens."""

    app: auth_bootstrap.AuthApp
    clock: FrozenClock
    target: str


OwnAuthStarter = Callable[..., contextlib.AbstractAsyncContextManager[OwnAuth]]


@pytest.fixture(scope="session")
def start_own_auth(infra: Any, tmp_path_factory: pytest.TempPathFactory) -> OwnAuthStarter:
    """`async with start_own_auth(CUMULO_AUTH_...="...")` runs an auth whose limits are the
    test's own (the session's auth lifts some for the whole suite). Its clock stands still, so
    a limit bites however slowly the machine runs, and time passes only when a test moves it;
    its database and NATS are its own too, so that it never takes the session's auth's share of
    the purge events."""

    @contextlib.asynccontextmanager
    async def start(**environ: str) -> AsyncIterator[OwnAuth]:
        folder: pathlib.Path = tmp_path_factory.mktemp("own-auth")
        nats = EmbeddedNats(folder / "nats", free_port(), folder / "nats.log", infra.identities)
        nats.start()
        clock = FrozenClock(dt.datetime.now(dt.UTC))
        try:
            settings = AuthSettings.from_env(infra.service_environ(NATS_URL=nats.url, **environ))
            app = await auth_bootstrap.build(settings, clock=clock)
            port = await start_service(app.runtime)
            try:
                yield OwnAuth(app, clock, f"127.0.0.1:{port}")
            finally:
                await app.runtime.stop()
        finally:
            nats.stop()

    return start
