"""The locator's devices and their sessions, aimed at by other accounts: a device registered
under another account's device id is another device; a device's command stream lives as long
as its token; a wipe wants a password entered within minutes, which neither a refresh nor an
edited token gives; a guardian sees, locates and rings the devices of the minor in their care,
but never wipes them, and nobody else sees them. The door of every method: test_security.py."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid
from typing import Any

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo.locator.v1 import locator_pb2 as pb
from cumulo.locator.v1 import locator_pb2_grpc
from cumulo_devstack.testing import (
    PASSWORD,
    People,
    Person,
    b64json,
    eventually,
    expect_error,
    invoke,
    open_channel,
    token_claims,
    token_expiry,
    unique_email,
    with_client_id,
)
from cumulo_sdk import CumuloRpcError
from cumulo_sdk.devices import DeviceAgent

from .conftest import agent, point

SEND_COMMAND = "/cumulo.locator.v1.DeviceLocatorService/SendCommand"
WAIT = 15.0
MINOR_PASSWORD = "purple monkey dishwasher"


@pytest.fixture
def locator_clock(locator: Any) -> Any:
    """The locator's clock (which judges token expiry and the password's freshness); put back afterwards."""
    before = locator.clock.offset
    yield locator.clock
    locator.clock.offset = before


async def test_a_genuine_token_with_a_forged_password_time_cannot_wipe(gateway, owner, locator_clock):
    """pwd_at is signed like the rest: the owner's own token, its pwd_at moved to "just now"
    after the password window has passed, is no token at all; the genuine one is refused
    for want of a fresh password."""
    token = await owner.client.access_token(force_refresh=True)  # not near its end: the clock moves
    locator_clock.advance(dt.timedelta(minutes=6))
    header, _, signature = token.split(".")
    edited = f"{header}.{b64json({**token_claims(token), 'pwd_at': int(locator_clock.now().timestamp())})}.{signature}"
    wipe = pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_WIPE)
    await expect_error(invoke(gateway, SEND_COMMAND, wipe, with_client_id(edited)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID")
    await expect_error(
        invoke(gateway, SEND_COMMAND, wipe, with_client_id(token)), grpc.StatusCode.FAILED_PRECONDITION, reason="RECENT_PASSWORD_REQUIRED"
    )


async def read_message(stream: Any, timeout: float = WAIT) -> Any:
    try:
        return await asyncio.wait_for(stream.read(), timeout)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


async def test_a_device_of_the_same_id_in_another_account_is_another_device(gateway, owner, stranger):
    """The stranger registers a device under the owner's device id: it is the stranger's
    own. Its stream, polls and acks never see the owner's commands, its reports never
    reach the owner's device, and removing it leaves the owner's."""
    pending = await owner.client.devices.ring(owner.device_id, 10)
    agent = DeviceAgent(stranger)
    mine = await agent.register(owner.device_id, name="Stranger's phone")
    assert mine.account_id == stranger.store.tokens.account_id != owner.account_id
    async with open_channel(gateway) as channel:
        stream = locator_pb2_grpc.DeviceAgentServiceStub(channel).ReceiveCommands(
            pb.ReceiveCommandsRequest(device_id=owner.device_id), metadata=stranger.metadata(await stranger.access_token()), timeout=60
        )
        try:
            first = await read_message(stream)
            assert first.HasField("heartbeat"), first  # not the owner's pending RING
            another = await owner.client.devices.lost_mode(owner.device_id, message="Owner's lost phone")
            second = await read_message(stream)
            assert second.HasField("heartbeat"), second  # nor the one queued now
        finally:
            stream.cancel()
    assert await agent.poll(owner.device_id) == []
    for command in (pending, another):
        await expect_error(agent.ack(owner.device_id, command.command_id, succeeded=False), grpc.StatusCode.NOT_FOUND, reason="COMMAND_NOT_FOUND")
        await expect_error(stranger.devices.command(command.command_id), grpc.StatusCode.NOT_FOUND, reason="COMMAND_NOT_FOUND")
    assert await stranger.devices.commands(owner.device_id) == []
    answer = await agent.report(owner.device_id, [point(1.25, 2.5)])
    assert answer.stored == 1 and not answer.lost_mode.enabled  # the owner's lost mode is not the stranger's
    assert [(h.latitude, h.longitude) for h in await stranger.devices.history(owner.device_id)] == [(1.25, 2.5)]
    await stranger.devices.remove(owner.device_id, password=PASSWORD)
    assert await stranger.devices.list() == []
    # The owner's device: no position, its commands queued and never delivered, lost and not found.
    device = await owner.client.devices.get(owner.device_id)
    assert (device.name, device.HasField("last_location"), device.lost_mode.enabled) == ("Ann's phone", False, True)
    assert not device.lost_mode.found_at.ByteSize()
    assert await owner.client.devices.history(owner.device_id) == []
    states = {c.command_id: (c.state, c.deliveries) for c in await owner.client.devices.commands(owner.device_id)}
    assert states == {pending.command_id: (pb.COMMAND_STATE_QUEUED, 0), another.command_id: (pb.COMMAND_STATE_QUEUED, 0)}
    assert [c.command_id for c in await owner.agent.poll(owner.device_id)] == [pending.command_id, another.command_id]


async def test_a_stream_receives_nothing_once_its_token_has_expired(gateway, owner, locator_clock, clock):
    """The device's stream lives as long as its token: a command queued after the locator's
    time passed the token's end is not delivered on it, and the stream ends TOKEN_EXPIRED."""
    phone_token = await owner.phone.access_token()
    expires_at = token_expiry(phone_token)
    async with open_channel(gateway) as channel:
        stream = locator_pb2_grpc.DeviceAgentServiceStub(channel).ReceiveCommands(
            pb.ReceiveCommandsRequest(device_id=owner.device_id), metadata=owner.phone.metadata(phone_token), timeout=90
        )
        try:
            assert (await read_message(stream)).HasField("heartbeat")
            # The owner's app gets a token that outlives the phone's: auth issues it ten
            # minutes "later"; then the locator's time passes the phone token's end only.
            clock.advance(dt.timedelta(minutes=10))
            await owner.client.access_token(force_refresh=True)
            assert token_expiry(await owner.client.access_token()) > expires_at + 300
            locator_clock.advance(dt.timedelta(seconds=expires_at - time.time() + 60))
            sent = await owner.client.devices.ring(owner.device_id, 5)
            while True:
                try:
                    message = await read_message(stream, timeout=30)
                except CumuloRpcError as err:
                    assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED"), err
                    break
                assert message is not grpc.aio.EOF, "the stream ended without a status"
                assert not message.HasField("command"), f"the stream delivered {message} after its token expired"
        finally:
            stream.cancel()
    command = await owner.client.devices.command(sent.command_id)
    assert (command.state, command.deliveries) == (pb.COMMAND_STATE_QUEUED, 0)


async def test_a_refreshed_token_does_not_make_the_password_fresh(owner, locator_clock, clock):
    """Six minutes after the login (auth's and the locator's clocks moved together) a refresh
    gives a new token, but its pwd_at is still the login's: no wipe until ConfirmPassword."""
    login_at = token_claims(await owner.client.access_token())["pwd_at"]
    clock.advance(dt.timedelta(minutes=6))
    locator_clock.advance(dt.timedelta(minutes=6))
    refreshed = await owner.client.access_token(force_refresh=True)
    assert token_claims(refreshed)["pwd_at"] == login_at
    await expect_error(
        owner.client.devices.send(pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_WIPE)),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="RECENT_PASSWORD_REQUIRED",
    )
    assert await owner.client.devices.commands(owner.device_id) == []
    # The control: the password confirmed, the same wipe is queued.
    wipe = await owner.client.devices.wipe(owner.device_id, password=PASSWORD)
    assert (wipe.kind, wipe.state) == (pb.COMMAND_KIND_WIPE, pb.COMMAND_STATE_QUEUED)


# --- guardians ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Family:
    guardian: Person
    minor: Person
    device_id: str
    position: tuple[float, float]


def birth_date_of_a_ten_year_old() -> auth_pb2.Date:
    today = dt.date.today()
    return auth_pb2.Date(year=today.year - 10, month=1, day=15)


async def guardians_view(family: Family) -> list[pb.Device] | None:
    try:
        return await family.guardian.client.devices.list(family.minor.account_id)
    except CumuloRpcError as err:
        if err.reason == "NOT_YOUR_DEVICES":  # the locator has not heard of the minor's account yet
            return None
        raise


@pytest.fixture
async def family(people: People) -> Family:
    guardian = await people.new("guardian's phone")
    email = unique_email()
    created = await guardian.client.call(
        guardian.client.auth.CreateMinorAccount,
        auth_pb2.CreateMinorAccountRequest(
            email=email, password=MINOR_PASSWORD, birth_date=birth_date_of_a_ten_year_old(), guardian_consent=True
        ),
    )
    assert created.account.minor and created.account.guardian_account_id == guardian.account_id
    minor = await people.login(email, "child's phone", MINOR_PASSWORD)
    assert minor.account_id == created.account.account_id
    device_id = f"kid-{uuid.uuid4().hex[:6]}"
    await agent(minor).register(device_id, name="Kid's phone")
    position = (39.9041999, 116.4073963)
    assert (await agent(minor).report(device_id, [point(*position)])).stored == 1
    family = Family(guardian, minor, device_id, position)
    await eventually(lambda: guardians_view(family), timeout=30, what="the locator to learn the minor's guardian")
    return family


async def test_a_guardian_sees_locates_and_rings_the_minors_device(family):
    devices, kid = family.guardian.client.devices, family.minor.account_id
    (device,) = await devices.list(kid)
    assert (device.device_id, device.account_id) == (family.device_id, kid)
    assert (device.last_location.latitude, device.last_location.longitude) == family.position
    assert (await devices.get(family.device_id, kid)).device_id == family.device_id
    assert [(h.latitude, h.longitude) for h in await devices.history(family.device_id, account_id=kid)] == [family.position]
    located = await devices.locate(family.device_id, kid)
    ring = await devices.ring(family.device_id, 30, account_id=kid)
    assert (await devices.command(ring.command_id, account_id=kid)).kind == pb.COMMAND_KIND_RING
    assert {c.command_id for c in await devices.commands(family.device_id, account_id=kid)} == {located.command.command_id, ring.command_id}
    # the minor's device receives both
    assert [c.command_id for c in await agent(family.minor).poll(family.device_id)] == [located.command.command_id, ring.command_id]
    # without account_id the guardian is looking at their own (none)
    assert await devices.list() == []
    await expect_error(devices.get(family.device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")


async def test_a_guardian_cannot_wipe_or_remove_the_minors_device(family):
    guardian = family.guardian.client
    await guardian.confirm_password(PASSWORD)  # fresh: only the guardianship is lacking
    err = await expect_error(
        guardian.devices.send(pb.SendCommandRequest(account_id=family.minor.account_id, device_id=family.device_id, kind=pb.COMMAND_KIND_WIPE)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert err.reason == "NOT_YOUR_DEVICES", err
    await expect_error(guardian.devices.remove(family.device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
    assert await guardian.devices.commands(family.device_id, account_id=family.minor.account_id) == []
    device = await family.minor.client.devices.get(family.device_id)
    assert not device.wiped_at.ByteSize()
    assert await agent(family.minor).poll(family.device_id) == []


async def test_the_minors_device_is_not_visible_to_an_unrelated_adult(family, people):
    adult = (await people.new("unrelated adult")).client.devices
    kid = family.minor.account_id
    assert await adult.list() == []
    for attempt in (
        adult.list(kid),
        adult.get(family.device_id, kid),
        adult.locate(family.device_id, kid),
        adult.history(family.device_id, account_id=kid),
        adult.ring(family.device_id, account_id=kid),
        adult.commands(family.device_id, account_id=kid),
    ):
        await expect_error(attempt, grpc.StatusCode.PERMISSION_DENIED, reason="NOT_YOUR_DEVICES")
    await expect_error(adult.get(family.device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
    assert await family.guardian.client.devices.commands(family.device_id, account_id=kid) == []


async def test_the_minor_cannot_see_the_guardians_devices(family):
    guardians_phone = f"phone-{uuid.uuid4().hex[:6]}"
    await agent(family.guardian).register(guardians_phone)
    minor = family.minor.client.devices
    await expect_error(minor.list(family.guardian.account_id), grpc.StatusCode.PERMISSION_DENIED, reason="NOT_YOUR_DEVICES")
    await expect_error(minor.get(guardians_phone), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
    assert [d.device_id for d in await minor.list()] == [family.device_id]


async def test_removing_a_device_wants_the_password_fresh_as_a_wipe_does(owner, locator_clock):
    """A thief holding the unlocked phone's session must not remove it (and its pending wipe):
    the password entered at sign-in is long past."""
    await owner.client.access_token(force_refresh=True)  # not near its end: the clock moves
    locator_clock.advance(dt.timedelta(minutes=6))
    err = await expect_error(owner.client.devices.remove(owner.device_id), grpc.StatusCode.FAILED_PRECONDITION)
    assert err.reason == "RECENT_PASSWORD_REQUIRED", err
    assert (await owner.client.devices.get(owner.device_id)).device_id == owner.device_id  # still there
    locator_clock.advance(-dt.timedelta(minutes=6))  # back to auth's time, which confirms the password
    await expect_error(owner.client.devices.remove(owner.device_id, password="not the password"), grpc.StatusCode.PERMISSION_DENIED, reason="INVALID_CREDENTIALS")
    await owner.client.devices.remove(owner.device_id, password=PASSWORD)
    await expect_error(owner.client.devices.get(owner.device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
