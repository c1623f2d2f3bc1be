"""The whole lifecycle in seconds, on the whole cloud as separate processes (real PostgreSQL,
NATS JetStream, S3, SMTP): an account unused for 3 s is frozen and told the exact deletion
time; used again it comes back with its files; left alone 4 s more it is purged everywhere
and cannot log in. A held account is not deleted; a lifecycle killed mid-purge resumes; NATS
stopped during a sweep loses nothing; two lifecycle processes never freeze or notify twice."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import pathlib
import sys
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage

import grpc
import pytest
from aiobotocore.session import get_session

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.servers import MailCatcher, Process, free_port, wait_for_port
from cumulo_devstack.stack import Cloud, Infra
from cumulo_devstack.testing import (
    PASSWORD,
    Member,
    allowed_caller,
    eventually,
    expect_error,
    new_member,
    unique_email,
    verify_email,
)
from cumulo_platform.text import local_time
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore

TZ = "Asia/Shanghai"
LIFECYCLE = {
    "CUMULO_LIFECYCLE_INACTIVITY": "PT3S",
    "CUMULO_LIFECYCLE_GRACE": "PT4S",
    "CUMULO_LIFECYCLE_SAFETY_MARGIN": "PT0S",
    "CUMULO_LIFECYCLE_FREEZE_REMINDERS": "PT1S",
    "CUMULO_LIFECYCLE_DELETION_REMINDERS": "PT2S",
    "CUMULO_LIFECYCLE_SWEEP_EVERY": "PT0.3S",
    "CUMULO_LIFECYCLE_NOTICE_EVERY": "PT0.2S",
    "CUMULO_LIFECYCLE_PURGE_RETRY": "PT1S",
    "CUMULO_LIFECYCLE_PURGE_RETRY_MAX": "PT2S",
    "CUMULO_LIFECYCLE_PURGE_STUCK_AFTER": "PT5S",
    "CUMULO_LIFECYCLE_TIME_ZONE": TZ,
}


@dataclasses.dataclass
class Stack:
    cloud: Cloud
    gateway: str
    mail: MailCatcher
    env: dict[str, str]

    def restart(self, name: str) -> None:
        self.cloud.processes[name].kill()
        self.cloud.start_service(name, **self.env)


@pytest.fixture(scope="module")
def stack(infra: Infra) -> Iterator[Stack]:
    # The session's CA: the session's clients (CUMULO_CA) trust this gateway too.
    cloud = Cloud(prefix="cumulo-lifecycle-", tls=infra.tls, identities=infra.identities)
    mail = MailCatcher(cloud.root / "mail", free_port())
    mail.start()
    env = {
        **LIFECYCLE,
        "CUMULO_LAST_ACCESS_INTERVAL": "PT0.5S",
        "CUMULO_LIFECYCLE_SMTP_HOST": "127.0.0.1",
        "CUMULO_LIFECYCLE_SMTP_PORT": str(mail.port),
    }
    try:
        cloud.start_services(**env)
        yield Stack(cloud, cloud.start_gateway(), mail, env)
    finally:
        mail.stop()
        cloud.stop()


@pytest.fixture
async def internal(stack: Stack) -> AsyncIterator[lifecycle_pb2_grpc.LifecycleInternalServiceStub]:
    async with allowed_caller(stack.cloud.target("lifecycle"), lifecycle_pb2_grpc.LifecycleInternalServiceStub) as internal:
        yield internal


@pytest.fixture
async def person(stack: Stack, tmp_path: pathlib.Path) -> AsyncIterator[Member]:
    member = await new_member(stack.gateway, tmp_path, mail=stack.mail)
    try:
        yield member
    finally:
        await member.client.close()


async def state_of(internal: lifecycle_pb2_grpc.LifecycleInternalServiceStub, account_id: str) -> pb.GetAccountResponse | None:
    try:
        return await internal.GetAccount(pb.GetAccountRequest(account_id=account_id), timeout=10)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
            return None
        raise


async def wait_for_state(
    internal: lifecycle_pb2_grpc.LifecycleInternalServiceStub, account_id: str, state: int, *, timeout: float = 40
) -> pb.GetAccountResponse:
    async def reached() -> pb.GetAccountResponse | None:
        found = await state_of(internal, account_id)
        return found if found is not None and found.account.state == state else None

    found = await eventually(reached, timeout=timeout, what=f"account {account_id} to be {pb.AccountState.Name(state)}")
    assert found is not None
    return found


async def mails(stack: Stack, address: str, subject_part: str, *, count: int = 1, timeout: float = 30) -> list[EmailMessage]:
    async def arrived() -> list[EmailMessage]:
        found = [m for m in stack.mail.messages() if m["To"] == address and subject_part in m["Subject"]]
        return found if len(found) >= count else []

    return await eventually(arrived, timeout=timeout, what=f"{count} notice(s) '{subject_part}' to {address}")


async def stored_objects(stack: Stack, account_id: str) -> list[str]:
    s3 = stack.cloud.infra.s3
    async with get_session().create_client(
        "s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key, region_name="us-east-1"
    ) as client:
        listed = await client.list_objects_v2(Bucket="cumulo-blobs", Prefix=f"accounts/{account_id}/")
    return [item["Key"] for item in listed.get("Contents", [])]


async def test_an_idle_account_is_frozen_told_when_and_then_purged(stack, internal, person, tmp_path):
    assert await stored_objects(stack, person.account_id)
    frozen = await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_FROZEN)
    delete_at = frozen.account.delete_at.ToDatetime(tzinfo=dt.UTC)
    frozen_at = frozen.account.frozen_at.ToDatetime(tzinfo=dt.UTC)
    assert delete_at - frozen_at == dt.timedelta(seconds=4)
    (notice,) = await mails(stack, person.email, "is frozen")
    exact = local_time(delete_at, zoneinfo.ZoneInfo(TZ))
    assert exact in notice["Subject"] and exact in notice.get_content()
    await mails(stack, person.email, "will be frozen")  # the reminder a second before
    await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_DELETED)
    assert await stored_objects(stack, person.account_id) == []
    async with Cumulo(stack.gateway, store=TokenStore(tmp_path / "again.json")) as again:
        await expect_error(again.login(person.email, PASSWORD), grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_DELETED")
    await mails(stack, person.email, "has been deleted")
    final = await state_of(internal, person.account_id)
    assert [t.to_state for t in final.transitions] == ["frozen", "deleting", "deleted"]


async def test_an_account_used_during_the_grace_period_comes_back_with_its_files(stack, internal, person, tmp_path):
    await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_FROZEN)
    listing = await person.client.files.ls()
    assert [n.node_id for n in listing] == [person.file_id]
    back = tmp_path / "back.jpg"
    await person.client.files.download(person.file_id, back)
    assert back.read_bytes() == person.content
    # Served at once: reactivated before the call (or, had blob not heard of the freeze yet,
    # by the access event it sends).
    back_again = await eventually(
        lambda: _active_since(internal, person.account_id), timeout=10, what="the account to be active again"
    )
    assert back_again
    await mails(stack, person.email, "active again")


async def _active_since(internal: lifecycle_pb2_grpc.LifecycleInternalServiceStub, account_id: str) -> bool:
    found = await state_of(internal, account_id)
    return found is not None and "active" in [t.to_state for t in found.transitions]


async def test_a_held_account_is_not_deleted(stack, internal, person):
    # The lifecycle learns of a new account from auth's event: a hold before that finds none.
    await eventually(lambda: state_of(internal, person.account_id), what="the lifecycle to know the new account")
    await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=person.account_id, held=True, reason="case 42", actor="legal"))
    frozen = await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_FROZEN)
    delete_at = frozen.account.delete_at.ToDatetime(tzinfo=dt.UTC)
    await asyncio.sleep(max((delete_at + dt.timedelta(seconds=3) - dt.datetime.now(dt.UTC)).total_seconds(), 0))
    held = await state_of(internal, person.account_id)
    assert held.account.state == pb.ACCOUNT_STATE_FROZEN and held.account.held
    assert await stored_objects(stack, person.account_id)
    await internal.SetLegalHold(pb.SetLegalHoldRequest(account_id=person.account_id, held=False, reason="closed", actor="legal"))
    await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_DELETED)


async def test_a_lifecycle_killed_mid_purge_resumes(stack, internal, person):
    await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_FROZEN)
    stack.cloud.processes["blob"].kill()  # the purge cannot finish while blob is away
    try:
        await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_DELETING)
        stack.restart("lifecycle")
        await asyncio.sleep(1)
        purges = await internal.ListPurges(pb.ListPurgesRequest())
        (purge,) = [p for p in purges.purges if p.account_id == person.account_id]
        assert {p.service for p in purge.participants} == {"auth", "blob", "sync", "locator", "moderation"}
        assert not [p for p in purge.participants if p.service == "blob" and p.completed_at.seconds]
    finally:
        stack.cloud.start_service("blob", **stack.env)
    await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_DELETED)
    assert await stored_objects(stack, person.account_id) == []


async def test_two_lifecycle_processes_never_freeze_or_notify_twice(stack, internal, tmp_path):
    port = free_port()
    second = Process(
        "lifecycle-2",
        [sys.executable, "-m", "cumulo_lifecycle"],
        stack.cloud.root / "lifecycle-2.log",
        env=stack.cloud.environ("lifecycle", **stack.env, CUMULO_GRPC_PORT=str(port)),
    )
    second.start()
    try:
        wait_for_port(port, process=second.process, timeout=60)
        people = []
        for index in range(4):
            client = Cumulo(stack.gateway, store=TokenStore(tmp_path / f"c{index}.json"))
            address = unique_email()
            await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
            account = await client.login(address, PASSWORD)
            await verify_email(client, stack.mail, address)
            await client.close()
            people.append((address, account.account_id))
        for _address, account_id in people:
            await wait_for_state(internal, account_id, pb.ACCOUNT_STATE_DELETED, timeout=60)
        await asyncio.sleep(1)  # anything sent twice would have arrived by now
        for address, account_id in people:  # (each person's own mail: it once read the last one's four times)
            found = await state_of(internal, account_id)
            assert [t.to_state for t in found.transitions] == ["frozen", "deleting", "deleted"]
            subjects = [m["Subject"] for m in stack.mail.messages() if m["To"] == address]
            for kind in ("is frozen", "has been deleted"):
                assert len([s for s in subjects if kind in s]) == 1, subjects
    finally:
        second.stop()


async def test_nats_stopped_during_a_sweep_loses_nothing(stack, internal, person):
    await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_FROZEN)
    stack.cloud.infra.nats.kill()
    try:
        # The sweep goes on without NATS: the deletion starts, its events wait in the outbox.
        await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_DELETING)
        await asyncio.sleep(2)
        assert (await state_of(internal, person.account_id)).account.state == pb.ACCOUNT_STATE_DELETING
    finally:
        stack.cloud.infra.nats.start()
    await wait_for_state(internal, person.account_id, pb.ACCOUNT_STATE_DELETED, timeout=60)
    assert await stored_objects(stack, person.account_id) == []



async def test_the_operators_announcements_reach_every_account_and_the_api_lists_them(stack: Stack, internal, person: Member) -> None:
    """`cumulo-admin notices maintenance` and `terms`, as their RPCs: every account is mailed in
    its language, and the maintenance window is listed to anyone (the console's banner)."""
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    window = pb.AnnounceRequest(
        kind=pb.ANNOUNCEMENT_KIND_MAINTENANCE, reference=f"db-{person.account_id[:8]}", message_en="The database moves.",
        message_zh="数据库迁移。", actor="ops (test)",
    )
    window.starts_at.FromDatetime(start)
    window.ends_at.FromDatetime(start + dt.timedelta(hours=2))
    announced = (await internal.Announce(window, timeout=10)).announcement
    (told,) = await mails(stack, person.email, "cumulo maintenance from")
    assert "The database moves." in told.get_content()
    anyone = Cumulo(stack.gateway, store=TokenStore(pathlib.Path("/nonexistent/no-session.json")))
    try:
        listed = await anyone.call(anyone.lifecycle.ListAnnouncements, pb.ListAnnouncementsRequest(), authenticated=False)
    finally:
        await anyone.close()
    assert announced.announcement_id in [a.announcement_id for a in listed.announcements]
    terms = pb.AnnounceRequest(kind=pb.ANNOUNCEMENT_KIND_TERMS, reference=f"2099-{person.account_id[:4]}", actor="ops (test)")
    terms.starts_at.FromDatetime(start)
    await internal.Announce(terms, timeout=10)
    (changed,) = await mails(stack, person.email, "terms of service change on")
    assert terms.reference in changed.get_content()
    # Someone who is not the operator cannot announce: the gateway does not even route it.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await person.client.channel.unary_unary(
            "/cumulo.lifecycle.v1.LifecycleInternalService/Announce",
            request_serializer=pb.AnnounceRequest.SerializeToString, response_deserializer=pb.AnnounceResponse.FromString,
        )(window, metadata=await person.client.files.signed_metadata(), timeout=10)
    assert refused.value.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
