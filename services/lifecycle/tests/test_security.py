"""Who may call the lifecycle's public API, and on whose account, through the gateway.

Every call wants a registered client id; GetAccountState and Reactivate want a genuine,
unexpired access token and only ever read or reactivate the token's own account (the
requests name no account: another account is out of reach whatever the caller sends);
ReactivateWithLink is anonymous and answers bad tokens with INVALID_ARGUMENT or NOT_FOUND,
never INTERNAL. LifecycleInternalService is for the cluster only: the gateway does not route
it, whatever the path looks like.

The module's `holder` is frozen from the start, so every refused call here is also shown not
to have reactivated it (the last test looks)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import jwt
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.testing import (
    FORGERIES,
    PASSWORD,
    bare_rpc_error,
    eventually,
    expect_error,
    forge_token,
    read_stream,
    rpc,
    unique_email,
)
from cumulo_lifecycle.adapters.tables import accounts, transitions
from cumulo_platform.db import SUBJECT_PREFIX
from cumulo_sdk import Cumulo, CumuloRpcError

PUBLIC = pb.DESCRIPTOR.services_by_name["LifecycleService"]
INTERNAL = pb.DESCRIPTOR.services_by_name["LifecycleInternalService"]
METHODS = [m.name for m in PUBLIC.methods]
TOKEN_METHODS = ["GetAccountState", "Reactivate"]
ANONYMOUS = ["ReactivateWithLink"]
INTERNAL_METHODS = [m.name for m in INTERNAL.methods]


def test_every_public_method_is_either_token_or_anonymous():
    """A method added later must be sorted into one of the lists (and so be tried below)."""
    assert sorted(METHODS) == sorted(TOKEN_METHODS + ANONYMOUS)


# --- people ------------------------------------------------------------------------------


@dataclasses.dataclass
class Person:
    client: Cumulo
    email: str
    account_id: str
    frozen: Any = None  # the ledger row as the freeze left it

    async def token(self) -> str:
        return await self.client.access_token()

    async def metadata(self) -> list[tuple[str, str]]:
        return self.client.metadata(await self.token())


async def row_of(lifecycle, account_id: str) -> Any:  # type: ignore[no-untyped-def]
    async with lifecycle.app.db.read() as conn:
        return (await conn.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account_id)))).first()


async def transitions_of(lifecycle, account_id: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    async with lifecycle.app.db.read() as conn:
        found = await conn.execute(
            sa.select(transitions.c.from_state, transitions.c.to_state, transitions.c.reason)
            .where(transitions.c.account_id == uuid.UUID(account_id))
            .order_by(transitions.c.transition_id)
        )
        return [tuple(r) for r in found]


class People:
    """Registers and logs in accounts through the gateway; each logs in once (one access
    event) and the lifecycle has applied it before the person is handed out, so nothing
    later reactivates a frozen one behind a test's back."""

    def __init__(self, gateway: str, lifecycle) -> None:  # type: ignore[no-untyped-def]
        self.gateway = gateway
        self.lifecycle = lifecycle
        self.clients: list[Cumulo] = []

    async def new(self) -> Person:
        client = Cumulo(self.gateway)
        self.clients.append(client)
        address = unique_email()
        await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
        account = await client.login(address, PASSWORD, device_name="security test")

        async def known() -> Any:
            row = await row_of(self.lifecycle, account.account_id)
            return row if row is not None and row.email == address and row.last_access_at > row.created_at else None

        await eventually(known, what="the lifecycle to know the account and its login")
        return Person(client, address, account.account_id)

    async def freeze(self, person: Person) -> Any:
        """As unused for a year (only this account's row), then one sweep: frozen."""
        clock, cal = self.lifecycle.clock, self.lifecycle.app.settings.calendar
        past = clock.now() - dt.timedelta(days=400)
        async with self.lifecycle.app.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == uuid.UUID(person.account_id))
                .values(last_access_at=past, freeze_at=cal.freeze_at(past), reminders_done=len(cal.freeze_reminders), next_due_at=clock.now())
            )
            await uow.commit()
        await self.lifecycle.app.ledger.sweep()
        row = await row_of(self.lifecycle, person.account_id)
        assert row.state == "frozen", row.state
        return row

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture(scope="module")
async def module_people(gateway, lifecycle) -> AsyncIterator[People]:  # type: ignore[no-untyped-def]
    people = People(gateway, lifecycle)
    yield people
    await people.close()


@pytest.fixture
async def people(gateway, lifecycle) -> AsyncIterator[People]:  # type: ignore[no-untyped-def]
    people = People(gateway, lifecycle)
    yield people
    await people.close()


@pytest.fixture(scope="module")
async def holder(module_people) -> Person:
    """Frozen for the whole module: what the refused calls aim at."""
    person = await module_people.new()
    person.frozen = await module_people.freeze(person)
    return person


@pytest.fixture(scope="module")
async def intruder(module_people) -> Person:
    return await module_people.new()


@pytest.fixture(scope="module")
async def stub(gateway) -> AsyncIterator[lifecycle_pb2_grpc.LifecycleServiceStub]:  # type: ignore[no-untyped-def]
    """LifecycleService through the gateway, with nothing added to the calls."""
    async with grpc.aio.insecure_channel(gateway) as channel:
        yield lifecycle_pb2_grpc.LifecycleServiceStub(channel)


@pytest.fixture
def lifecycle_clock(lifecycle):  # type: ignore[no-untyped-def]
    """The lifecycle's clock (which judges token expiry); put back afterwards."""
    before = lifecycle.clock.offset
    yield lifecycle.clock
    lifecycle.clock.offset = before


@pytest.fixture(scope="module")
async def signing_key(auth) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(auth.target) as channel:
        response = await auth_pb2_grpc.AuthInternalServiceStub(channel).GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=10)
    assert response.keys
    return response.keys[0].key_id, response.keys[0].public_key


def request_for(method: str) -> Any:
    if method == "ReactivateWithLink":
        return pb.ReactivateWithLinkRequest(token=secrets.token_urlsafe(32))
    return getattr(pb, f"{method}Request")()


def with_client_id(token: str | None = None, client_id: str = "cumulo-cli") -> list[tuple[str, str]]:
    metadata = [("x-cumulo-client-id", client_id)]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    return metadata


# --- client id -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_client_id_is_refused_at_the_gateway(gateway, holder, method):
    err = await bare_rpc_error(
        gateway, lifecycle_pb2_grpc.LifecycleServiceStub, method, request_for(method),
        metadata=[("authorization", f"Bearer {await holder.token()}")],
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED, err
    assert "x-cumulo-client-id" in err.details()


async def test_the_gateways_refusal_without_client_id_names_the_reason(gateway, holder):
    err = await bare_rpc_error(
        gateway, lifecycle_pb2_grpc.LifecycleServiceStub, "GetAccountState", pb.GetAccountStateRequest(),
        metadata=[("authorization", f"Bearer {await holder.token()}")],
    )
    assert CumuloRpcError.from_rpc_error(err).reason == "CLIENT_NOT_AUTHORIZED"


@pytest.mark.parametrize("client_id", ["not-a-registered-app", ""], ids=["unregistered", "empty"])
@pytest.mark.parametrize("method", METHODS)
async def test_a_client_id_that_names_no_registered_app_is_refused(stub, holder, method, client_id):
    await expect_error(
        rpc(getattr(stub, method), request_for(method), metadata=with_client_id(await holder.token(), client_id)),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_client_id_is_refused_by_the_service_itself(lifecycle, holder, method):
    """Behind the gateway too: the service checks the client id again."""
    async with grpc.aio.insecure_channel(lifecycle.target) as channel:
        direct = lifecycle_pb2_grpc.LifecycleServiceStub(channel)
        await expect_error(
            rpc(getattr(direct, method), request_for(method), metadata=[("authorization", f"Bearer {await holder.token()}")]),
            grpc.StatusCode.PERMISSION_DENIED,
            reason="CLIENT_NOT_AUTHORIZED",
        )


# --- no token, expired token --------------------------------------------------------------------


@pytest.mark.parametrize("method", TOKEN_METHODS)
async def test_a_call_without_a_token_is_unauthenticated(stub, holder, method):
    await expect_error(
        rpc(getattr(stub, method), request_for(method), metadata=with_client_id()),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "bearer x", "Token abc", "Bearer", ""])
@pytest.mark.parametrize("method", TOKEN_METHODS)
async def test_an_authorization_that_is_not_a_bearer_token_counts_as_missing(stub, holder, method, authorization):
    await expect_error(
        rpc(getattr(stub, method), request_for(method), metadata=with_client_id() + [("authorization", authorization)]),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


@pytest.mark.parametrize("method", TOKEN_METHODS)
async def test_a_call_with_an_expired_token_is_unauthenticated(stub, holder, lifecycle_clock, method):
    token = await holder.token()
    lifecycle_clock.advance(dt.timedelta(minutes=16))  # the lifecycle judges expiry by its own clock
    await expect_error(
        rpc(getattr(stub, method), request_for(method), metadata=with_client_id(token)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_EXPIRED",
    )


async def test_a_token_shortly_before_its_expiry_still_works(stub, holder, lifecycle_clock):
    """The control for the expiry: the same token, half a minute before its end."""
    token = await holder.token()
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    lifecycle_clock.advance(dt.timedelta(seconds=expires_at - time.time() - 30))
    answer = await rpc(stub.GetAccountState, pb.GetAccountStateRequest(), metadata=with_client_id(token))
    assert answer.account.account_id == holder.account_id
    assert answer.account.state == pb.ACCOUNT_STATE_FROZEN


# --- forged tokens --------------------------------------------------------------------------------


def link_token_of(mail, address: str) -> str:  # type: ignore[no-untyped-def]
    """The token of the latest link to `address` that carries one (the freeze notice's)."""
    for message in reversed(mail.messages()):
        found = re.search(r"\?token=([A-Za-z0-9_-]+)", message.get_content()) if message["To"] == address else None
        if found:
            return found.group(1)
    return ""


async def forge(kind: str, holder: Person, intruder: Person, signing_key: tuple[str, bytes], mail) -> str:  # type: ignore[no-untyped-def]
    """A token naming the holder that auth never issued: one of LIFECYCLE_FORGERIES."""
    if kind == "reactivation-link-token":
        return link_token_of(mail, holder.email) or await eventually(
            lambda: _link(mail, holder.email), timeout=20, what="the holder's freeze notice"
        )
    return forge_token(
        kind,
        genuine=await holder.token(),
        signing_key=signing_key,
        intruder_token=await intruder.token(),
        refresh_token=holder.client.store.tokens.refresh_token,
    )


async def _link(mail, address: str) -> str:  # type: ignore[no-untyped-def]
    return link_token_of(mail, address)


# All but "tampered-claims" (the intruder's token naming the holder is the edited payload tried
# here), and the token of the holder's reactivation link.
LIFECYCLE_FORGERIES = [kind for kind in FORGERIES if kind != "tampered-claims"] + ["reactivation-link-token"]


@pytest.mark.parametrize("forgery", LIFECYCLE_FORGERIES)
@pytest.mark.parametrize("method", TOKEN_METHODS)
async def test_a_call_with_a_forged_token_is_unauthenticated(stub, holder, intruder, signing_key, mail, method, forgery):
    token = await forge(forgery, holder, intruder, signing_key, mail)
    assert token
    await expect_error(
        rpc(getattr(stub, method), request_for(method), metadata=with_client_id(token)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_INVALID",
    )


# --- another account's token -------------------------------------------------------------------


async def test_another_accounts_token_sees_only_its_own_state(stub, holder, intruder):
    answer = await rpc(stub.GetAccountState, pb.GetAccountStateRequest(), metadata=await intruder.metadata())
    assert answer.account.account_id == intruder.account_id
    assert answer.account.state == pb.ACCOUNT_STATE_ACTIVE
    assert not answer.account.frozen_at.seconds and not answer.account.delete_at.seconds


async def test_an_account_id_smuggled_into_the_request_is_ignored(gateway, holder, intruder):
    """The requests name no account; one written into their bytes anyway (field 1, as in
    GetAccountRequest) is an unknown field, and the token still decides whose account it is."""
    smuggled = pb.GetAccountRequest(account_id=holder.account_id).SerializeToString()
    async with grpc.aio.insecure_channel(gateway) as channel:
        for method, response_type in (("GetAccountState", pb.GetAccountStateResponse), ("Reactivate", pb.ReactivateResponse)):
            call = channel.unary_unary(
                f"/{PUBLIC.full_name}/{method}", request_serializer=lambda raw: raw, response_deserializer=response_type.FromString
            )
            answer = await rpc(call, smuggled, metadata=await intruder.metadata())
            assert answer.account.account_id == intruder.account_id, method
            assert answer.account.state == pb.ACCOUNT_STATE_ACTIVE


async def test_another_accounts_reactivate_reactivates_only_itself(stub, lifecycle, holder, intruder):
    answer = await rpc(stub.Reactivate, pb.ReactivateRequest(), metadata=await intruder.metadata())
    assert answer.account.account_id == intruder.account_id
    assert answer.account.state == pb.ACCOUNT_STATE_ACTIVE
    assert (await row_of(lifecycle, holder.account_id)).state == "frozen"
    # An active account's Reactivate is a no-op: nothing recorded for it either.
    assert await transitions_of(lifecycle, intruder.account_id) == []


@pytest.mark.parametrize("order", ["intruder-first", "forged-first"])
async def test_two_authorization_headers_never_reach_the_holder(stub, lifecycle, holder, intruder, signing_key, mail, order):
    """A genuine token of the intruder's beside a forged one naming the holder: refused, or
    the intruder's own account; never the holder's."""
    forged = await forge("intruders-token-naming-the-holder", holder, intruder, signing_key, mail)
    headers = [("authorization", f"Bearer {await intruder.token()}"), ("authorization", f"Bearer {forged}")]
    if order == "forged-first":
        headers.reverse()
    for method in TOKEN_METHODS:
        try:
            answer = await rpc(getattr(stub, method), request_for(method), metadata=with_client_id() + headers)
        except CumuloRpcError as err:
            assert err.code == grpc.StatusCode.UNAUTHENTICATED, err
        else:
            assert answer.account.account_id == intruder.account_id
    assert (await row_of(lifecycle, holder.account_id)).state == "frozen"


async def test_a_link_reactivates_only_the_account_it_was_sent_to(people, lifecycle, gateway, mail, stub):
    """Two frozen accounts; the first one's link, sent along with the second one's genuine
    access token, brings back the first and leaves the second frozen. A link is no access
    token, and an access token is no link."""
    first, second = await people.new(), await people.new()
    await people.freeze(first)
    await people.freeze(second)
    link = await eventually(lambda: _link(mail, first.email), timeout=20, what="the first account's freeze notice")
    await expect_error(
        rpc(stub.GetAccountState, pb.GetAccountStateRequest(), metadata=with_client_id(link)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_INVALID",
    )
    await expect_error(
        rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=await second.token()), metadata=with_client_id()),
        grpc.StatusCode.INVALID_ARGUMENT,  # an access token is far longer than a link's token
        field="token",
    )
    await expect_error(
        rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=second.account_id), metadata=with_client_id()),
        grpc.StatusCode.NOT_FOUND,
        reason="LINK_INVALID",
    )
    assert (await row_of(lifecycle, first.account_id)).state == "frozen"
    answer = await rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=link), metadata=await second.metadata())
    assert answer.state == pb.ACCOUNT_STATE_ACTIVE
    # The anonymous answer says nothing but the state: no account id, no dates.
    assert [f.name for f, _ in answer.ListFields()] == ["state"]
    assert (await row_of(lifecycle, first.account_id)).state == "active"
    assert (await row_of(lifecycle, second.account_id)).state == "frozen"
    assert [t[1] for t in await transitions_of(lifecycle, second.account_id)] == ["frozen"]


async def test_a_deleted_accounts_token_sees_its_state_but_cannot_bring_it_back(people, lifecycle, stub, mail):
    person = await people.new()
    await people.freeze(person)
    link = await eventually(lambda: _link(mail, person.email), timeout=20, what="the freeze notice")
    cal = lifecycle.app.settings.calendar
    now = lifecycle.clock.now()
    async with lifecycle.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.update(accounts)
            .where(accounts.c.account_id == uuid.UUID(person.account_id))
            .values(
                frozen_at=now - dt.timedelta(days=31), delete_at=now - cal.safety_margin - dt.timedelta(minutes=1),
                reminders_done=len(cal.deletion_reminders), next_due_at=now,
            )
        )
        await uow.commit()
    token = await person.token()  # issued before the deletion, still unexpired
    await lifecycle.app.ledger.sweep()
    assert (await row_of(lifecycle, person.account_id)).state in ("deleting", "deleted")
    await expect_error(
        rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=link), metadata=with_client_id()),
        grpc.StatusCode.NOT_FOUND,
        reason="LINK_INVALID",
    )
    await expect_error(
        rpc(stub.Reactivate, pb.ReactivateRequest(), metadata=with_client_id(token)),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="ACCOUNT_DELETED",
    )

    async def deleted() -> Any:
        row = await row_of(lifecycle, person.account_id)
        return row if row.state == "deleted" else None

    await eventually(deleted, timeout=30, what="the purge to finish")
    seen = await rpc(stub.GetAccountState, pb.GetAccountStateRequest(), metadata=with_client_id(token))
    assert seen.account.account_id == person.account_id
    assert seen.account.state == pb.ACCOUNT_STATE_DELETED
    await expect_error(
        rpc(stub.Reactivate, pb.ReactivateRequest(), metadata=with_client_id(token)),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="ACCOUNT_DELETED",
    )
    assert (await row_of(lifecycle, person.account_id)).state == "deleted"


# --- the reactivation link's token --------------------------------------------------------------


@pytest.mark.parametrize(
    "token, code",
    [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("a" * 201, grpc.StatusCode.INVALID_ARGUMENT),
        ("ü" * 201, grpc.StatusCode.INVALID_ARGUMENT),
        ("x" * 1_000_000, grpc.StatusCode.INVALID_ARGUMENT),
        ("a" * 200, grpc.StatusCode.NOT_FOUND),
        ("ü" * 200, grpc.StatusCode.NOT_FOUND),
        (" ", grpc.StatusCode.NOT_FOUND),
        ("\x00", grpc.StatusCode.NOT_FOUND),
        ("not-a-link", grpc.StatusCode.NOT_FOUND),
        ("' OR '1'='1' --", grpc.StatusCode.NOT_FOUND),
        ("%00%27", grpc.StatusCode.NOT_FOUND),
        ("../../../etc/passwd", grpc.StatusCode.NOT_FOUND),
        ("🙂" * 50, grpc.StatusCode.NOT_FOUND),
        ("\u202e\ufeff\ud7ff", grpc.StatusCode.NOT_FOUND),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
        (secrets.token_urlsafe(32), grpc.StatusCode.NOT_FOUND),
    ],
    ids=[
        "empty", "201-chars", "201-non-ascii", "a-megabyte", "200-chars", "200-non-ascii", "space", "nul", "word",
        "sql", "percent-escapes", "path", "emoji", "bidi-and-bom", "uuid", "well-formed-but-unknown",
    ],
)
async def test_a_bad_link_token_is_invalid_or_not_found_never_internal(stub, token, code):
    err = await expect_error(
        rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=token), metadata=with_client_id()), code
    )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert err.field == "token", err
    else:
        assert err.reason == "LINK_INVALID", err
    assert len(err.message) < 300 and "Traceback" not in err.message


async def _mail_to(mail, address: str, subject_part: str) -> Any:  # type: ignore[no-untyped-def]
    found = [m for m in mail.messages() if m["To"] == address and subject_part in m["Subject"]]
    return found[-1] if found else None


async def test_the_deletion_reminders_link_reactivates_the_account(people, lifecycle, mail, stub):
    person = await people.new()
    await people.freeze(person)
    now = lifecycle.clock.now()
    async with lifecycle.app.db.unit_of_work() as uow:  # six days before the deletion, no reminder yet
        await uow.execute(
            sa.update(accounts)
            .where(accounts.c.account_id == uuid.UUID(person.account_id))
            .values(frozen_at=now - dt.timedelta(days=24), delete_at=now + dt.timedelta(days=6), reminders_done=0, next_due_at=now)
        )
        await uow.commit()
    await lifecycle.app.ledger.sweep()
    reminder = await eventually(lambda: _mail_to(mail, person.email, "Reminder"), timeout=20, what="the deletion reminder")
    body = reminder.get_content()
    assert "open this link" in body
    token = re.search(r"\?token=([A-Za-z0-9_-]+)", body)
    assert token, body
    answer = await rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=token.group(1)), metadata=with_client_id())
    assert answer.state == pb.ACCOUNT_STATE_ACTIVE
    assert (await row_of(lifecycle, person.account_id)).state == "active"


async def test_a_bad_link_token_through_the_sdk_is_the_same(gateway):
    async with Cumulo(gateway) as anonymous:
        await expect_error(anonymous.reactivate_with_link("a" * 201), grpc.StatusCode.INVALID_ARGUMENT, field="token")
        await expect_error(anonymous.reactivate_with_link("garbage"), grpc.StatusCode.NOT_FOUND, reason="LINK_INVALID")


# --- the internal API ---------------------------------------------------------------------------


def internal_request(method: str, holder: Person) -> Any:
    """Each internal method aimed at the holder where it takes an account: had the gateway
    routed any of them, the holder would be reactivated (EnsureActive) or held."""
    requests = {
        "EnsureActive": pb.EnsureActiveRequest(account_id=holder.account_id),
        "GetAccount": pb.GetAccountRequest(account_id=holder.account_id),
        "SetLegalHold": pb.SetLegalHoldRequest(account_id=holder.account_id, held=True, reason="through the gateway", actor="intruder"),
        "Sweep": pb.SweepRequest(dry_run=True),
    }
    return requests.get(method) or getattr(pb, f"{method}Request")()


@pytest.mark.parametrize("credentials", ["none", "client-id", "client-id-and-token"])
@pytest.mark.parametrize("method", INTERNAL_METHODS)
async def test_the_internal_service_is_not_routed_by_the_gateway(gateway, holder, method, credentials):
    metadata = {
        "none": None,
        "client-id": with_client_id(),
        "client-id-and-token": with_client_id(await holder.token()),
    }[credentials]
    err = await bare_rpc_error(gateway, lifecycle_pb2_grpc.LifecycleInternalServiceStub, method, internal_request(method, holder), metadata=metadata)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED, err


@pytest.mark.parametrize(
    "path",
    [
        "/cumulo.lifecycle.v1.LifecycleService/../cumulo.lifecycle.v1.LifecycleInternalService/EnsureActive",
        "/cumulo.lifecycle.v1.LifecycleService/%2e%2e/cumulo.lifecycle.v1.LifecycleInternalService/EnsureActive",
        "/cumulo.lifecycle.v1.LifecycleService//cumulo.lifecycle.v1.LifecycleInternalService/EnsureActive",
        "/cumulo.lifecycle.v1.LifecycleService/EnsureActive",
        "//cumulo.lifecycle.v1.LifecycleInternalService/EnsureActive",
        "/cumulo.lifecycle.v1.LifecycleInternalService/EnsureActive?/cumulo.lifecycle.v1.LifecycleService/",
        "/cumulo.lifecycle.v1.lifecycleinternalservice/EnsureActive",
        "/CUMULO.LIFECYCLE.V1.LIFECYCLEINTERNALSERVICE/EnsureActive",
    ],
    ids=["dot-dot", "encoded-dot-dot", "double-slash", "public-prefix", "leading-double-slash", "query", "lower-case", "upper-case"],
)
async def test_no_path_reaches_the_internal_service_through_the_gateway(gateway, lifecycle, holder, path):
    request = pb.EnsureActiveRequest(account_id=holder.account_id)
    async with grpc.aio.insecure_channel(gateway) as channel:
        call = channel.unary_unary(path, request_serializer=pb.EnsureActiveRequest.SerializeToString, response_deserializer=pb.EnsureActiveResponse.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=with_client_id(await holder.token()), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, caught.value
    assert (await row_of(lifecycle, holder.account_id)).state == "frozen"


async def test_the_internal_service_answers_inside_the_cluster(lifecycle, holder):
    """The control: the same internal calls, straight to the service, are answered."""
    async with grpc.aio.insecure_channel(lifecycle.target) as channel:
        internal = lifecycle_pb2_grpc.LifecycleInternalServiceStub(channel)
        found = await internal.GetAccount(pb.GetAccountRequest(account_id=holder.account_id), timeout=10)
        report = await internal.GetReport(pb.GetReportRequest(), timeout=10)
    assert found.account.state == pb.ACCOUNT_STATE_FROZEN
    assert report.frozen >= 1


# --- the holder ---------------------------------------------------------------------------------


async def test_the_holder_is_untouched_by_everything_refused_or_aimed_at_it(lifecycle, infra, holder, stub):
    """Still frozen, with its last access and schedule as the freeze left them, never held,
    and no transition but the freeze. Its own questions were not uses either: the lifecycle
    never announced an access of it."""
    row = await row_of(lifecycle, holder.account_id)
    assert row.state == "frozen"
    assert row.last_access_at == holder.frozen.last_access_at
    assert row.delete_at == holder.frozen.delete_at
    assert row.version == holder.frozen.version
    assert not row.held
    assert await transitions_of(lifecycle, holder.account_id) == [("active", "frozen", "unused")]
    answer = await rpc(stub.GetAccountState, pb.GetAccountStateRequest(), metadata=await holder.metadata())
    assert answer.account.state == pb.ACCOUNT_STATE_FROZEN
    announced = await read_stream(
        infra.nats.url,
        SUBJECT_PREFIX + "access.recorded",
        lambda envelope: envelope.account_id == holder.account_id and envelope.producer == "lifecycle",
        at_least=0,
    )
    assert announced == []
    # The control: the holder's own Reactivate brings it back.
    back = await rpc(stub.Reactivate, pb.ReactivateRequest(), metadata=await holder.metadata())
    assert back.account.account_id == holder.account_id
    assert back.account.state == pb.ACCOUNT_STATE_ACTIVE
    assert (await row_of(lifecycle, holder.account_id)).state == "active"

