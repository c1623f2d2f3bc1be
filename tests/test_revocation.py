"""Revocation that takes effect at once: after a logout, a password change, a suspension or a
change of roles, the access tokens it voids are refused by blob, sync and the device locator
(and the rest) long before they expire (cumulo_platform.revocations). Each waits by polling
with a deadline, never by sleeping."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.locator.v1 import locator_pb2, locator_pb2_grpc
from cumulo.moderation.v1 import moderation_pb2, moderation_pb2_grpc
from cumulo.sync.v1 import sync_pb2, sync_pb2_grpc
from cumulo_devstack.testing import PASSWORD, allowed_caller, eventually, expect_error, open_channel
from cumulo_devstack.testing.accounts import set_roles
from cumulo_sdk.errors import CumuloRpcError

# Within this, every service refuses a revoked token (the 2 s; the deadline of the
# poll is looser so that a busy machine does not fail it: the time taken is reported).
DEADLINE = 10.0


async def answer(target: str, stub: Any, method: str, request: Any, metadata: list[tuple[str, str]]) -> str:
    """"OK", or the code and reason with which the service refused the call."""
    async with open_channel(target) as channel:
        try:
            await getattr(stub(channel), method)(request, metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}/{CumuloRpcError.from_rpc_error(error).reason}"
    return "OK"


@pytest.fixture
def doors(backends):
    """One cheap authenticated call per service, as the token's holder makes it."""
    return {
        "blob": (backends["blob"], blob_pb2_grpc.BlobServiceStub, "GetUsage", blob_pb2.GetUsageRequest()),
        "sync": (backends["sync"], sync_pb2_grpc.SyncServiceStub, "ListZones", sync_pb2.ListZonesRequest()),
        "locator": (backends["locator"], locator_pb2_grpc.DeviceLocatorServiceStub, "ListDevices", locator_pb2.ListDevicesRequest()),
    }


async def answers(doors, metadata) -> dict[str, str]:
    return {name: await answer(target, stub, method, request, metadata) for name, (target, stub, method, request) in doors.items()}


SESSION_ENDED, CUT_OFF = "UNAUTHENTICATED/SESSION_REVOKED", "UNAUTHENTICATED/TOKEN_REVOKED"


async def refused_everywhere(doors, metadata, answer: str = SESSION_ENDED) -> float:
    """Seconds until every service refuses the token with `answer`."""
    started = time.monotonic()

    async def all_refused() -> bool:
        return set((await answers(doors, metadata)).values()) == {answer}

    await eventually(all_refused, timeout=DEADLINE, what="every service to refuse the revoked token")
    return time.monotonic() - started


async def test_after_logout_the_old_token_is_refused_everywhere(people, doors):
    person = await people.new("phone")
    metadata = await person.metadata()
    assert set((await answers(doors, metadata)).values()) == {"OK"}
    await person.client.logout()
    took = await refused_everywhere(doors, metadata)
    print(f"refused everywhere {took:.2f} s after the logout")


async def test_after_a_password_change_the_other_sessions_tokens_are_refused_and_the_changers_are_not(people, doors):
    laptop = await people.new("laptop")
    phone = await people.login(laptop.email, "stolen phone")
    stolen = await phone.metadata()
    assert set((await answers(doors, stolen)).values()) == {"OK"}
    await laptop.client.call(
        laptop.client.auth.ChangePassword,
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=PASSWORD + " and more"),
    )
    await refused_everywhere(doors, stolen)
    assert set((await answers(doors, await laptop.metadata())).values()) == {"OK"}


async def test_a_suspended_accounts_tokens_are_refused_and_fresh_ones_work_once_it_is_lifted(people, doors, auth):
    person = await people.new("phone")
    metadata = await person.metadata()
    async with allowed_caller(auth.target, auth_pb2_grpc.AuthInternalServiceStub) as internal:
        status = auth_pb2.SetAccountStatusRequest(account_id=person.account_id, status=auth_pb2.ACCOUNT_STATUS_SUSPENDED, reason="abuse report", actor="t&s")
        await internal.SetAccountStatus(status, timeout=10)
        await refused_everywhere(doors, metadata, CUT_OFF)
        status.status = auth_pb2.ACCOUNT_STATUS_ACTIVE
        await internal.SetAccountStatus(status, timeout=10)
    await person.client.refresh()  # a new token, issued after the suspension
    assert set((await answers(doors, await person.metadata())).values()) == {"OK"}
    assert set((await answers(doors, metadata)).values()) == {CUT_OFF}  # the old one stays void


async def test_a_withdrawn_moderator_role_stops_working_at_once(people, auth, moderation):
    person = await people.new("desk")
    await set_roles(auth.target, person, ["moderator"])
    await person.client.login(person.email, PASSWORD, device_name="desk")
    metadata = await person.metadata()
    queue = (moderation.target, moderation_pb2_grpc.ModerationServiceStub, "ListQueue", moderation_pb2.ListQueueRequest())
    assert await answer(*queue, metadata) == "OK"
    await set_roles(auth.target, person, [])

    async def refused() -> bool:
        return await answer(*queue, metadata) == CUT_OFF

    await eventually(refused, timeout=DEADLINE, what="the moderation queue to refuse the old moderator token")
    # The person's own client refreshes on TOKEN_REVOKED: the token it gets carries no role.
    await expect_error(person.client.call(person.client.moderation.stub.ListQueue, moderation_pb2.ListQueueRequest()), grpc.StatusCode.PERMISSION_DENIED)


async def test_another_persons_revocation_leaves_everyone_else_alone(people, doors):
    bystander, leaver = await people.new("phone"), await people.new("phone")
    leaving = await leaver.metadata()
    await leaver.client.logout()
    await refused_everywhere(doors, leaving)
    assert set((await answers(doors, await bystander.metadata())).values()) == {"OK"}
