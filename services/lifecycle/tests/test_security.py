"""Who may call the lifecycle's public API, and on whose account, through the gateway.

Every call is behind the platform's door (a registered client id; GetAccountState and
Reactivate a genuine, unexpired access token too), and only ever reads or reactivates the
token's own account (the requests name no account: another account is out of reach whatever
the caller sends);
ReactivateWithLink is anonymous and answers bad tokens with INVALID_ARGUMENT or NOT_FOUND,
never INTERNAL. LifecycleInternalService is for the cluster only: the gateway does not route
it, whatever the path looks like.

The module's `holder` is frozen from the start, so every call aimed at it here is also shown
not to have reactivated it (the last test looks)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.servers import MailCatcher
from cumulo_devstack.testing import (
    People,
    Person,
    allowed_caller,
    assert_gated,
    bare_rpc_error,
    eventually,
    expect_error,
    gate_cases,
    open_channel,
    public_services,
    read_stream,
    rpc,
    with_client_id,
)
from cumulo_lifecycle.adapters.tables import accounts, transitions
from cumulo_lifecycle.api.public import ANONYMOUS_METHODS
from cumulo_platform.event_types import event_filter

PUBLIC = pb.DESCRIPTOR.services_by_name["LifecycleService"]
INTERNAL = pb.DESCRIPTOR.services_by_name["LifecycleInternalService"]
INTERNAL_METHODS = [m.name for m in INTERNAL.methods]


# --- people ------------------------------------------------------------------------------


async def row_of(lifecycle: Any, account_id: str) -> Any:
    async with lifecycle.app.db.read() as conn:
        return (await conn.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account_id)))).first()


async def transitions_of(lifecycle: Any, account_id: str) -> list[tuple[str, str, str]]:
    async with lifecycle.app.db.read() as conn:
        found = await conn.execute(
            sa.select(transitions.c.from_state, transitions.c.to_state, transitions.c.reason)
            .where(transitions.c.account_id == uuid.UUID(account_id))
            .order_by(transitions.c.transition_id)
        )
        return [tuple(r) for r in found]


class LifecyclePeople(People):
    """People whose one login (one access event) the lifecycle has applied before the person
    is handed out, so nothing later reactivates a frozen one behind a test's back."""

    def __init__(self, gateway: str, lifecycle: Any, mail: MailCatcher) -> None:
        super().__init__(gateway, mail)
        self.lifecycle = lifecycle

    async def new(self, device_name: str = "security test", *, birth_date: dt.date = dt.date(1990, 5, 17)) -> Person:
        person = await super().new(device_name, birth_date=birth_date)

        async def known() -> Any:
            row = await row_of(self.lifecycle, person.account_id)
            return row if row is not None and row.email == person.email and row.last_access_at > row.created_at else None

        await eventually(known, what="the lifecycle to know the account and its login")
        return person

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
        await self.lifecycle.app.cases.sweeper.sweep()
        row = await row_of(self.lifecycle, person.account_id)
        assert row.state == "frozen", row.state
        return row


@pytest.fixture(scope="module")
async def module_people(gateway: str, lifecycle: Any, mail: MailCatcher) -> AsyncIterator[LifecyclePeople]:
    people = LifecyclePeople(gateway, lifecycle, mail)
    yield people
    await people.close()


@pytest.fixture
async def people(gateway: str, lifecycle: Any, mail: MailCatcher) -> AsyncIterator[LifecyclePeople]:
    people = LifecyclePeople(gateway, lifecycle, mail)
    yield people
    await people.close()


@pytest.fixture(scope="module")
async def frozen_holder(module_people: People) -> tuple[Person, Any]:
    """Frozen for the whole module, and its ledger row as the freeze left it."""
    person = await module_people.new()
    return person, await module_people.freeze(person)


@pytest.fixture(scope="module")
async def holder(frozen_holder: Any) -> Person:
    """Frozen for the whole module: what the calls of other accounts aim at."""
    return frozen_holder[0]


@pytest.fixture(scope="module")
async def intruder(module_people) -> Person:
    return await module_people.new()


@pytest.fixture(scope="module")
async def stub(gateway: str) -> AsyncIterator[lifecycle_pb2_grpc.LifecycleServiceStub]:
    """LifecycleService through the gateway, with nothing added to the calls."""
    async with open_channel(gateway) as channel:
        yield lifecycle_pb2_grpc.LifecycleServiceStub(channel)


# --- the door -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, case", gate_cases(public_services(pb), ANONYMOUS_METHODS))
async def test_every_method_is_gated(lifecycle, signing_key, method, case):
    """Every kind of bad token is tried on the platform's interceptor (libs/cumulo_platform/tests)."""
    await assert_gated(lifecycle.target, method, case, signing_key)


def link_token_of(mail: MailCatcher, address: str) -> str:
    """The token of the latest link to `address` that carries one (the freeze notice's)."""
    for message in reversed(mail.messages()):
        found = re.search(r"\?token=([A-Za-z0-9_-]+)", message.get_content()) if message["To"] == address else None
        if found:
            return found.group(1)
    return ""


async def _link(mail: MailCatcher, address: str) -> str:
    return link_token_of(mail, address)


# --- another account's token, and links -------------------------------------------------------------------


async def test_another_accounts_token_sees_only_its_own_state(stub, holder, intruder):
    answer = await rpc(stub.GetAccountState, pb.GetAccountStateRequest(), metadata=await intruder.metadata())
    assert answer.account.account_id == intruder.account_id
    assert answer.account.state == pb.ACCOUNT_STATE_ACTIVE
    assert not answer.account.frozen_at.seconds and not answer.account.delete_at.seconds


async def test_an_account_id_smuggled_into_the_request_is_ignored(gateway, holder, intruder):
    """The requests name no account; one written into their bytes anyway (field 1, as in
    GetAccountRequest) is an unknown field, and the token still decides whose account it is."""
    smuggled = pb.GetAccountRequest(account_id=holder.account_id).SerializeToString()
    async with open_channel(gateway) as channel:
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


async def test_inspecting_a_link_tells_the_state_and_deletion_time_and_changes_nothing(people, lifecycle, mail, stub):
    """What the console shows before the person clicks: the state and the exact deletion time,
    nothing else of the account, and the account stays frozen until the click."""
    person = await people.new()
    frozen = await people.freeze(person)
    link = await eventually(lambda: _link(mail, person.email), timeout=20, what="the freeze notice")
    for _ in range(3):  # asked again and again (a reload), still frozen
        seen = await rpc(stub.InspectReactivationLink, pb.InspectReactivationLinkRequest(token=link), metadata=with_client_id())
        assert seen.state == pb.ACCOUNT_STATE_FROZEN
        assert seen.delete_at.ToDatetime(dt.UTC) == frozen.delete_at
        assert sorted(f.name for f, _ in seen.ListFields()) == ["delete_at", "state"]
    assert (await row_of(lifecycle, person.account_id)).state == "frozen"
    assert [t[1] for t in await transitions_of(lifecycle, person.account_id)] == ["frozen"]
    await rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=link), metadata=with_client_id())
    # Used, the link is spent: it tells nothing any more.
    await expect_error(
        rpc(stub.InspectReactivationLink, pb.InspectReactivationLinkRequest(token=link), metadata=with_client_id()),
        grpc.StatusCode.NOT_FOUND,
        reason="LINK_INVALID",
    )


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
    await lifecycle.app.cases.sweeper.sweep()
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


async def _mail_to(mail: MailCatcher, address: str, subject_part: str) -> Any:
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
    await lifecycle.app.cases.sweeper.sweep()
    reminder = await eventually(lambda: _mail_to(mail, person.email, "Reminder"), timeout=20, what="the deletion reminder")
    body = reminder.get_content()
    assert "open this link" in body
    token = re.search(r"\?token=([A-Za-z0-9_-]+)", body)
    assert token, body
    answer = await rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=token.group(1)), metadata=with_client_id())
    assert answer.state == pb.ACCOUNT_STATE_ACTIVE
    assert (await row_of(lifecycle, person.account_id)).state == "active"


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
    async with open_channel(gateway) as channel:
        call = channel.unary_unary(path, request_serializer=pb.EnsureActiveRequest.SerializeToString, response_deserializer=pb.EnsureActiveResponse.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=with_client_id(await holder.token()), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, caught.value
    assert (await row_of(lifecycle, holder.account_id)).state == "frozen"


async def test_the_internal_service_answers_inside_the_cluster(lifecycle, holder):
    """The control: the same internal calls, straight to the service, are answered."""
    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as internal:
        found = await internal.GetAccount(pb.GetAccountRequest(account_id=holder.account_id), timeout=10)
        report = await internal.GetReport(pb.GetReportRequest(), timeout=10)
    assert found.account.state == pb.ACCOUNT_STATE_FROZEN
    assert report.frozen >= 1


# --- the holder ---------------------------------------------------------------------------------


async def test_the_holder_is_untouched_by_everything_aimed_at_it(lifecycle, infra, frozen_holder, stub):
    """Still frozen, with its last access and schedule as the freeze left them, never held,
    and no transition but the freeze. Its own questions were not uses either: the lifecycle
    never announced an access of it."""
    holder, frozen = frozen_holder
    row = await row_of(lifecycle, holder.account_id)
    assert row.state == "frozen"
    assert row.last_access_at == frozen.last_access_at
    assert row.delete_at == frozen.delete_at
    assert row.version == frozen.version
    assert not await lifecycle.app.legal_holds.held(uuid.UUID(holder.account_id))
    assert await transitions_of(lifecycle, holder.account_id) == [("active", "frozen", "unused")]
    answer = await rpc(stub.GetAccountState, pb.GetAccountStateRequest(), metadata=await holder.metadata())
    assert answer.account.state == pb.ACCOUNT_STATE_FROZEN
    announced = await read_stream(
        infra.nats.url,
        event_filter("access.recorded"),
        lambda envelope: envelope.account_id == holder.account_id and envelope.producer == "lifecycle",
        at_least=0,
    )
    assert announced == []


async def test_a_frozen_accounts_own_reactivate_brings_it_back(people, lifecycle, stub):
    """The control for the calls above (on an account of its own: the module's holder stays
    frozen whatever order the tests run in)."""
    person = await people.new()
    await people.freeze(person)
    back = await rpc(stub.Reactivate, pb.ReactivateRequest(), metadata=await person.metadata())
    assert (back.account.account_id, back.account.state) == (person.account_id, pb.ACCOUNT_STATE_ACTIVE)
    assert (await row_of(lifecycle, person.account_id)).state == "active"

