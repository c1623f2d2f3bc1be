"""Who may call the device locator's public API, and on whose devices, through the gateway.

Every method of DeviceLocatorService (the owner's side) and DeviceAgentService (the device's
side) wants a registered client id and a genuine, unexpired access token, and only ever
reaches the token's own account: another account's device answers NOT_FOUND
DEVICE_NOT_FOUND (just as a device that never was), naming another account's id answers
PERMISSION_DENIED NOT_YOUR_DEVICES (just as an account that never was), and an account that
registers a device under the same device id gets a device of its own. A guardian sees, locates
and rings the devices of the minor in their care, but never wipes them; nobody else sees them.
Positions are personal data: the service's answers to bad ones name the field and the rule,
never the numbers, and its logs never carry them.

The refused calls aim at the module's `owner` (its phone with a history, a command
acknowledged and one still queued); the last test looks that none of them changed anything."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.locator.v1 import locator_pb2 as pb
from cumulo.locator.v1 import locator_pb2_grpc
from cumulo_devstack.testing import (
    FORGERIES,
    PASSWORD,
    b64json,
    eventually,
    expect_error,
    forge_token,
    unique_email,
)
from cumulo_platform.errors import STATUS_DETAILS_KEY
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sdk.devices import DeviceAgent

SERVICES = {name: pb.DESCRIPTOR.services_by_name[name] for name in ("DeviceLocatorService", "DeviceAgentService")}
STUBS = {"DeviceLocatorService": locator_pb2_grpc.DeviceLocatorServiceStub, "DeviceAgentService": locator_pb2_grpc.DeviceAgentServiceStub}
# "Service/Method" -> (client streaming, server streaming), from the descriptor.
SHAPES = {
    f"{service}/{method.name}": (method.client_streaming, method.server_streaming)
    for service, descriptor in SERVICES.items()
    for method in descriptor.methods
}
METHODS = list(SHAPES)
UNARY, SERVER_STREAM = (False, False), (False, True)
# What this file tries, and in which call shape: a method added later must be added here.
TRIED = {
    "DeviceLocatorService/ListDevices": UNARY,
    "DeviceLocatorService/GetDevice": UNARY,
    "DeviceLocatorService/Locate": UNARY,
    "DeviceLocatorService/GetHistory": UNARY,
    "DeviceLocatorService/SendCommand": UNARY,
    "DeviceLocatorService/ListCommands": UNARY,
    "DeviceLocatorService/GetCommand": UNARY,
    "DeviceLocatorService/RemoveDevice": UNARY,
    "DeviceAgentService/RegisterDevice": UNARY,
    "DeviceAgentService/ReportLocations": UNARY,
    "DeviceAgentService/ReceiveCommands": SERVER_STREAM,
    "DeviceAgentService/PollCommands": UNARY,
    "DeviceAgentService/AckCommand": UNARY,
}
# The owner's side that takes an account_id (a minor's, for their guardian): all but RemoveDevice.
WITH_ACCOUNT_ID = [m for m in METHODS if "account_id" in SERVICES[m.split("/")[0]].methods_by_name[m.split("/")[1]].input_type.fields_by_name]
WAIT = 15.0
MINOR_PASSWORD = "purple monkey dishwasher"


def test_every_method_of_both_services_is_tried_in_its_call_shape():
    """A method (or service) added later must be added to TRIED, and so be tried below."""
    assert set(pb.DESCRIPTOR.services_by_name) == set(SERVICES)
    assert SHAPES == TRIED
    assert WITH_ACCOUNT_ID == [m for m in METHODS if m.startswith("DeviceLocatorService/") and m != "DeviceLocatorService/RemoveDevice"]


# --- people ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Person:
    client: Cumulo
    email: str
    account_id: str

    @property
    def agent(self) -> DeviceAgent:
        return DeviceAgent(self.client)

    async def token(self) -> str:
        return await self.client.access_token()

    async def metadata(self) -> list[tuple[str, str]]:
        return self.client.metadata(await self.token())


class People:
    """Accounts registered and logged in through the gateway."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.clients: list[Cumulo] = []

    async def login(self, email: str, device_name: str, password: str = PASSWORD) -> Person:
        client = Cumulo(self.gateway)
        self.clients.append(client)
        account = await client.login(email, password, device_name=device_name)
        return Person(client, email, account.account_id)

    async def new(self, device_name: str = "security test") -> Person:
        address = unique_email()
        async with Cumulo(self.gateway) as client:
            await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
        return await self.login(address, device_name)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture(scope="module")
async def module_people(gateway, locator) -> AsyncIterator[People]:  # type: ignore[no-untyped-def]
    people = People(gateway)
    yield people
    await people.close()


@pytest.fixture
async def people(gateway, locator) -> AsyncIterator[People]:  # type: ignore[no-untyped-def]
    people = People(gateway)
    yield people
    await people.close()


def stamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(when)
    return value


def point(latitude: float, longitude: float, *, ago: dt.timedelta = dt.timedelta(0), **values: Any) -> pb.Location:
    fields: dict[str, Any] = {"accuracy": 12.0, "battery": 80, "source": pb.LOCATION_SOURCE_GPS}
    fields.update(values)
    return pb.Location(latitude=latitude, longitude=longitude, measured_at=stamp(dt.datetime.now(dt.UTC) - ago), **fields)


@dataclasses.dataclass
class Snapshot:
    """What the owner sees of their devices: every field of every device, the phone's
    history, and every command of each device."""

    devices: list[pb.Device]
    history: dict[str, list[pb.Location]]
    commands: dict[str, list[pb.Command]]


@dataclasses.dataclass
class World:
    """The owner (their app, and their phone as a second session of the same account) with a
    phone that has reported a history, a LOCATE acknowledged and a RING still queued, and a
    tablet that has nothing; the stranger, another adult with no devices."""

    owner: Person
    phone: Person
    stranger: Person
    device_id: str
    tablet_id: str
    done: pb.Command
    pending: pb.Command
    track: list[tuple[float, float]]
    snapshot: Snapshot


async def snapshot_of(owner: Person, device_ids: list[str]) -> Snapshot:
    devices = owner.client.devices
    return Snapshot(
        devices=await devices.list(),
        history={d: await devices.history(d) for d in device_ids},
        commands={d: await devices.commands(d) for d in device_ids},
    )


@pytest.fixture(scope="module")
async def world(module_people) -> World:  # type: ignore[no-untyped-def]
    owner = await module_people.new("owner's laptop")
    phone = await module_people.login(owner.email, "owner's phone")
    stranger = await module_people.new("stranger")
    device_id, tablet_id = f"phone-{uuid.uuid4().hex[:6]}", f"tablet-{uuid.uuid4().hex[:6]}"
    await phone.agent.register(device_id, name="Owner's phone", model="Pixel", platform="android")
    await phone.agent.register(tablet_id, name="Owner's tablet", model="Tab", platform="android")
    track = [(48.8583701, 2.2944813), (48.8606111, 2.3376440), (48.8529682, 2.3499021)]
    reported = await phone.agent.report(
        device_id, [point(lat, lon, ago=dt.timedelta(minutes=30 - 10 * i)) for i, (lat, lon) in enumerate(track)]
    )
    assert reported.stored == 3
    done = (await owner.client.devices.locate(device_id)).command
    assert [c.command_id for c in await phone.agent.poll(device_id)] == [done.command_id]
    done = await phone.agent.ack(device_id, done.command_id, detail="reported")
    pending = await owner.client.devices.ring(device_id, 15)
    assert pending.state == pb.COMMAND_STATE_QUEUED
    snapshot = await snapshot_of(owner, [device_id, tablet_id])
    assert [d.device_id for d in snapshot.devices] == [device_id, tablet_id]
    assert [(h.latitude, h.longitude) for h in snapshot.history[device_id]] == list(reversed(track))
    assert [c.command_id for c in snapshot.commands[device_id]] == [pending.command_id, done.command_id]
    return World(owner, phone, stranger, device_id, tablet_id, done, pending, track, snapshot)


@pytest.fixture
def locator_clock(locator):  # type: ignore[no-untyped-def]
    """The locator's clock (which judges token expiry and the password's freshness); put back afterwards."""
    before = locator.clock.offset
    yield locator.clock
    locator.clock.offset = before


@pytest.fixture(scope="module")
async def signing_key(auth) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(auth.target) as channel:
        response = await auth_pb2_grpc.AuthInternalServiceStub(channel).GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=10)
    assert response.keys
    return response.keys[0].key_id, response.keys[0].public_key


# --- calls in every shape --------------------------------------------------------------------


def with_client_id(token: str | None = None, client_id: str = "cumulo-cli") -> list[tuple[str, str]]:
    metadata = [("x-cumulo-client-id", client_id)]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    return metadata


def request_for(method: str, world: World, *, account_id: str = "") -> Any:
    """Each method aimed at the owner's phone: had a refused call gone through with the
    owner's identity, the phone, its history or its commands would have changed (or, for
    the reads, the owner's data would have been answered)."""
    device, pending = world.device_id, world.pending.command_id
    requests = {
        "DeviceLocatorService/ListDevices": pb.ListDevicesRequest(account_id=account_id),
        "DeviceLocatorService/GetDevice": pb.GetDeviceRequest(account_id=account_id, device_id=device),
        "DeviceLocatorService/Locate": pb.LocateRequest(account_id=account_id, device_id=device),
        "DeviceLocatorService/GetHistory": pb.GetHistoryRequest(account_id=account_id, device_id=device),
        "DeviceLocatorService/SendCommand": pb.SendCommandRequest(
            account_id=account_id, device_id=device, kind=pb.COMMAND_KIND_LOST_MODE,
            lost_mode=pb.LostMode(enabled=True, message="Pay the intruder", contact_phone="+86 138 0000 0000"),
        ),
        "DeviceLocatorService/ListCommands": pb.ListCommandsRequest(account_id=account_id, device_id=device),
        "DeviceLocatorService/GetCommand": pb.GetCommandRequest(account_id=account_id, command_id=pending),
        "DeviceLocatorService/RemoveDevice": pb.RemoveDeviceRequest(device_id=device),
        "DeviceAgentService/RegisterDevice": pb.RegisterDeviceRequest(device_id=device, name="Hijacked", model="X", platform="x"),
        "DeviceAgentService/ReportLocations": pb.ReportLocationsRequest(device_id=device, locations=[point(10.5, 20.5)]),
        "DeviceAgentService/ReceiveCommands": pb.ReceiveCommandsRequest(device_id=device),
        "DeviceAgentService/PollCommands": pb.PollCommandsRequest(device_id=device),
        "DeviceAgentService/AckCommand": pb.AckCommandRequest(device_id=device, command_id=pending, succeeded=False, detail="intruder"),
    }
    return requests[method]


async def invoke(target: str, method: str, request: Any, metadata: list[tuple[str, str]] | None, *, timeout: float = 10) -> Any:
    """One call of `method` ("Service/Method") to `target` in its shape, through a bare stub
    (no SDK: nothing is added to `metadata`). The answer; for ReceiveCommands, its first
    message. A failure is raised as a CumuloRpcError."""
    service, name = method.split("/")
    _, server_streaming = SHAPES[method]
    async with grpc.aio.insecure_channel(target) as channel:
        multicallable = getattr(STUBS[service](channel), name)
        try:
            if server_streaming:
                call = multicallable(request, metadata=metadata, timeout=timeout)
                try:
                    first = await asyncio.wait_for(call.read(), timeout)
                finally:
                    call.cancel()
                assert first is not grpc.aio.EOF, f"{method} ended without a message"
                return first
            return await multicallable(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise CumuloRpcError.from_rpc_error(exc) from None


# --- client id --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_client_id_is_refused_at_the_gateway(gateway, world, method):
    err = await expect_error(
        invoke(gateway, method, request_for(method, world), [("authorization", f"Bearer {await world.owner.token()}")]),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )
    assert "x-cumulo-client-id" in err.message


@pytest.mark.parametrize("client_id", ["not-a-registered-app", ""], ids=["unregistered", "empty"])
@pytest.mark.parametrize("method", METHODS)
async def test_a_client_id_that_names_no_registered_app_is_refused(gateway, world, method, client_id):
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(await world.owner.token(), client_id)),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_client_id_is_refused_by_the_service_itself(locator, world, method):
    """Behind the gateway too: the service checks the client id again."""
    await expect_error(
        invoke(locator.target, method, request_for(method, world), [("authorization", f"Bearer {await world.owner.token()}")]),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="CLIENT_NOT_AUTHORIZED",
    )


# --- no token, expired token --------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_a_token_is_unauthenticated(gateway, world, method):
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id()),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_without_a_token_is_unauthenticated_by_the_service_itself(locator, world, method):
    await expect_error(
        invoke(locator.target, method, request_for(method, world), with_client_id()),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "bearer x", "Bearer", ""])
@pytest.mark.parametrize("method", METHODS)
async def test_an_authorization_that_is_not_a_bearer_token_counts_as_missing(gateway, world, method, authorization):
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id() + [("authorization", authorization)]),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_MISSING",
    )


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def expiry_of(token: str) -> float:
    return float(claims_of(token)["exp"])


@pytest.mark.parametrize("method", METHODS)
async def test_a_call_with_an_expired_token_is_unauthenticated(gateway, world, locator_clock, method):
    token = await world.owner.token()
    # The locator judges expiry by its own clock: a minute past the token's end.
    locator_clock.advance(dt.timedelta(seconds=expiry_of(token) - time.time() + 60))
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(token)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_EXPIRED",
    )


@pytest.mark.parametrize(
    "method", ["DeviceLocatorService/ListDevices", "DeviceLocatorService/GetHistory", "DeviceAgentService/ReceiveCommands"]
)
async def test_a_token_shortly_before_its_expiry_still_works(gateway, world, locator_clock, method):
    """The control for the expiry: the same token, half a minute before its end (the stream
    on the tablet, which has no command to deliver: its first message is a heartbeat)."""
    token = await world.owner.token()
    locator_clock.advance(dt.timedelta(seconds=expiry_of(token) - time.time() - 30))
    request = request_for(method, world)
    if method == "DeviceAgentService/ReceiveCommands":
        request = pb.ReceiveCommandsRequest(device_id=world.tablet_id)
    answer = await invoke(gateway, method, request, with_client_id(token))
    if method == "DeviceLocatorService/ListDevices":
        assert list(answer.devices) == world.snapshot.devices
    elif method == "DeviceLocatorService/GetHistory":
        assert list(answer.locations) == world.snapshot.history[world.device_id]
    else:
        assert answer.HasField("heartbeat") and answer.heartbeat


# --- forged tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("method", METHODS)
async def test_a_call_with_a_forged_token_is_unauthenticated(gateway, world, signing_key, method, forgery):
    """A token naming the owner that auth never issued ("intruder": the stranger)."""
    token = forge_token(
        forgery,
        genuine=await world.owner.token(),
        signing_key=signing_key,
        intruder_token=await world.stranger.token(),
        refresh_token=world.owner.client.store.tokens.refresh_token,
    )
    assert token
    await expect_error(
        invoke(gateway, method, request_for(method, world), with_client_id(token)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_INVALID",
    )


async def test_a_genuine_token_with_a_forged_password_time_cannot_wipe(gateway, world, locator_clock):
    """pwd_at is signed like the rest: the owner's own token, its pwd_at moved to "just now"
    after the password window has passed, is no token at all; the genuine one is refused
    for want of a fresh password."""
    token = await world.owner.client.access_token(force_refresh=True)  # not near its end: the clock moves
    locator_clock.advance(dt.timedelta(minutes=6))
    header, _, signature = token.split(".")
    edited = f"{header}.{b64json({**claims_of(token), 'pwd_at': int(locator_clock.now().timestamp())})}.{signature}"
    wipe = pb.SendCommandRequest(device_id=world.device_id, kind=pb.COMMAND_KIND_WIPE)
    await expect_error(
        invoke(gateway, "DeviceLocatorService/SendCommand", wipe, with_client_id(edited)), grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID"
    )
    await expect_error(
        invoke(gateway, "DeviceLocatorService/SendCommand", wipe, with_client_id(token)),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="RECENT_PASSWORD_REQUIRED",
    )


# --- another account's genuine token ----------------------------------------------------------

DEVICE_NOT_FOUND = (grpc.StatusCode.NOT_FOUND, "DEVICE_NOT_FOUND")
# What a bystander (a genuine, unrelated account with no devices) gets for the very calls
# aimed at the owner's phone above: None for an answer, else (code, reason). Never the owner's.
BYSTANDER_GETS: dict[str, Any] = {
    "DeviceLocatorService/ListDevices": None,
    "DeviceLocatorService/GetDevice": DEVICE_NOT_FOUND,
    "DeviceLocatorService/Locate": DEVICE_NOT_FOUND,
    "DeviceLocatorService/GetHistory": DEVICE_NOT_FOUND,
    "DeviceLocatorService/SendCommand": DEVICE_NOT_FOUND,
    "DeviceLocatorService/ListCommands": DEVICE_NOT_FOUND,
    "DeviceLocatorService/GetCommand": (grpc.StatusCode.NOT_FOUND, "COMMAND_NOT_FOUND"),
    "DeviceLocatorService/RemoveDevice": DEVICE_NOT_FOUND,
    "DeviceAgentService/RegisterDevice": "its-own",  # a device of its own under the same id
    "DeviceAgentService/ReportLocations": DEVICE_NOT_FOUND,
    "DeviceAgentService/ReceiveCommands": DEVICE_NOT_FOUND,
    "DeviceAgentService/PollCommands": DEVICE_NOT_FOUND,
    "DeviceAgentService/AckCommand": DEVICE_NOT_FOUND,
}


def test_the_bystanders_expectations_cover_every_method():
    assert sorted(BYSTANDER_GETS) == sorted(METHODS)


def made_up(request: Any, world: World) -> Any:
    """The same request naming a device and a command that never were."""
    copy = type(request)()
    copy.CopyFrom(request)
    if "device_id" in type(request).DESCRIPTOR.fields_by_name and copy.device_id == world.device_id:
        copy.device_id = f"phone-{uuid.uuid4().hex[:6]}"
    if "command_id" in type(request).DESCRIPTOR.fields_by_name and copy.command_id:
        copy.command_id = str(uuid.uuid4())
    return copy


@pytest.mark.parametrize("method", METHODS)
async def test_another_accounts_genuine_token_reaches_only_its_own(gateway, world, people, method):
    """The control for the refusals above (the request shapes are right and a genuine token
    is let in); aimed at the owner's phone, the same calls find nothing of the owner's, and
    answer just as for a device (or command) that never was."""
    bystander = await people.new("bystander")
    request = request_for(method, world)
    expected = BYSTANDER_GETS[method]
    metadata = await bystander.metadata()
    if isinstance(expected, tuple):
        err = await expect_error(invoke(gateway, method, request, metadata), expected[0], reason=expected[1])
        assert world.device_id not in err.message and world.pending.command_id not in err.message
        never = await expect_error(invoke(gateway, method, made_up(request, world), metadata), expected[0])
        assert (never.reason, never.message, never.metadata) == (err.reason, err.message, err.metadata)
    elif expected == "its-own":
        answer = await invoke(gateway, method, request, metadata)
        assert (answer.device.account_id, answer.device.device_id, answer.device.name) == (bystander.account_id, world.device_id, "Hijacked")
        assert not answer.device.HasField("last_location")
        assert await bystander.client.devices.commands(world.device_id) == []
        assert await bystander.client.devices.history(world.device_id) == []
    else:
        assert list((await invoke(gateway, method, request, metadata)).devices) == []
    assert (await world.owner.client.devices.get(world.device_id)).name == "Owner's phone"


@pytest.mark.parametrize("method", WITH_ACCOUNT_ID)
async def test_the_stranger_cannot_name_the_owners_account(gateway, world, method):
    """Naming the owner's account id answers NOT_YOUR_DEVICES, exactly as for an account id
    that never was: nothing tells the stranger the owner's account exists."""
    metadata = await world.stranger.metadata()
    err = await expect_error(
        invoke(gateway, method, request_for(method, world, account_id=world.owner.account_id), metadata),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="NOT_YOUR_DEVICES",
    )
    assert world.owner.account_id not in err.message and world.device_id not in err.message
    never = await expect_error(
        invoke(gateway, method, request_for(method, world, account_id=str(uuid.uuid4())), metadata), grpc.StatusCode.PERMISSION_DENIED
    )
    assert (never.reason, never.message, never.metadata) == (err.reason, err.message, err.metadata)
    # the same id written otherwise (upper case) is the same account, and as refused
    await expect_error(
        invoke(gateway, method, request_for(method, world, account_id=world.owner.account_id.upper()), metadata),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="NOT_YOUR_DEVICES",
    )


async def test_the_stranger_cannot_wipe_the_owners_device_even_with_a_fresh_password(world):
    await world.stranger.client.confirm_password(PASSWORD)
    await expect_error(
        world.stranger.client.devices.send(pb.SendCommandRequest(device_id=world.device_id, kind=pb.COMMAND_KIND_WIPE)),
        grpc.StatusCode.NOT_FOUND,
        reason="DEVICE_NOT_FOUND",
    )
    await expect_error(
        world.stranger.client.devices.send(
            pb.SendCommandRequest(account_id=world.owner.account_id, device_id=world.device_id, kind=pb.COMMAND_KIND_WIPE)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="NOT_YOUR_DEVICES",
    )


async def test_the_strangers_own_lists_show_nothing_of_the_owners(world):
    stranger = world.stranger.client.devices
    assert await stranger.list() == []
    for device_id in (world.device_id, world.tablet_id):
        await expect_error(stranger.get(device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
        await expect_error(stranger.history(device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
        await expect_error(stranger.commands(device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
    for command in (world.done, world.pending):
        await expect_error(stranger.command(command.command_id), grpc.StatusCode.NOT_FOUND, reason="COMMAND_NOT_FOUND")


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
    async with grpc.aio.insecure_channel(gateway) as channel:
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
    await stranger.devices.remove(owner.device_id)
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
    expires_at = expiry_of(phone_token)
    async with grpc.aio.insecure_channel(gateway) as channel:
        stream = locator_pb2_grpc.DeviceAgentServiceStub(channel).ReceiveCommands(
            pb.ReceiveCommandsRequest(device_id=owner.device_id), metadata=owner.phone.metadata(phone_token), timeout=90
        )
        try:
            assert (await read_message(stream)).HasField("heartbeat")
            # The owner's app gets a token that outlives the phone's: auth issues it ten
            # minutes "later"; then the locator's time passes the phone token's end only.
            clock.advance(dt.timedelta(minutes=10))
            await owner.client.access_token(force_refresh=True)
            assert expiry_of(await owner.client.access_token()) > expires_at + 300
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
    login_at = claims_of(await owner.client.access_token())["pwd_at"]
    clock.advance(dt.timedelta(minutes=6))
    locator_clock.advance(dt.timedelta(minutes=6))
    refreshed = await owner.client.access_token(force_refresh=True)
    assert claims_of(refreshed)["pwd_at"] == login_at
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
async def family(people) -> Family:  # type: ignore[no-untyped-def]
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
    await minor.agent.register(device_id, name="Kid's phone")
    position = (39.9041999, 116.4073963)
    assert (await minor.agent.report(device_id, [point(*position)])).stored == 1
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
    assert [c.command_id for c in await family.minor.agent.poll(family.device_id)] == [located.command.command_id, ring.command_id]
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
    assert await family.minor.agent.poll(family.device_id) == []


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
    await family.guardian.agent.register(guardians_phone)
    minor = family.minor.client.devices
    await expect_error(minor.list(family.guardian.account_id), grpc.StatusCode.PERMISSION_DENIED, reason="NOT_YOUR_DEVICES")
    await expect_error(minor.get(guardians_phone), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
    assert [d.device_id for d in await minor.list()] == [family.device_id]


# --- positions are personal data: never in errors, never in logs ------------------------------

GOOD = (-33.8567844, 151.2152967)  # a position the reports below send along with a bad one
BAD_POSITIONS: dict[str, tuple[str, pb.Location]] = {
    "latitude-out-of-range": ("locations[0].latitude", point(91.2468013, 151.2152967)),
    "latitude-far-south": ("locations[0].latitude", point(-123.4567891, 10.1112131)),
    "longitude-out-of-range": ("locations[0].longitude", point(-33.8567844, -181.9753124)),
    "longitude-far-east": ("locations[0].longitude", point(12.3456789, 987.6543219)),
    "accuracy": ("locations[0].accuracy", point(-33.8567844, 151.2152967, accuracy=-7.25)),
    "altitude": ("locations[0].altitude", point(-33.8567844, 151.2152967, altitude=123456.789)),
    "speed": ("locations[0].speed", point(-33.8567844, 151.2152967, speed=4321.125)),
    "battery": ("locations[0].battery", point(-33.8567844, 151.2152967, battery=150)),
    "source": ("locations[0].source", point(-33.8567844, 151.2152967, source=pb.LOCATION_SOURCE_UNSPECIFIED)),
    "future": ("locations[0].measured_at", point(-33.8567844, 151.2152967, ago=-dt.timedelta(hours=2))),
    "too-old": ("locations[0].measured_at", point(-33.8567844, 151.2152967, ago=dt.timedelta(days=9))),
    "not-a-number": ("locations[0].latitude", point(math.nan, 151.2152967)),
    "infinite": ("locations[0].longitude", point(-33.8567844, math.inf)),
}


def spellings(value: float) -> set[str]:
    """How a coordinate might be written in a message or a log line (at least three
    decimals: with fewer, other numbers of a log line, such as durations, could match)."""
    if not math.isfinite(value) or value == 0:
        return set()
    found = {repr(value), str(value), f"{value:.6f}", f"{value:.5f}", f"{value:.4f}", f"{value:.3f}"}
    return found | {s.lstrip("-") for s in found}


def numbers_of(location: pb.Location) -> set[str]:
    return spellings(location.latitude) | spellings(location.longitude) | spellings(location.altitude) | spellings(location.speed)


def everything_said(exc: grpc.aio.AioRpcError) -> str:
    """The message, the trailing metadata and every detail of the status, as text."""
    parts = [exc.details() or ""]
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            parts.append(status.message)
            for detail in status.details:
                for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
                    unpacked = kind()
                    if detail.Unpack(unpacked):
                        parts.append(str(unpacked))
        else:
            parts.append(f"{key}={value!r}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
async def reporter(module_people) -> tuple[Person, str]:  # type: ignore[no-untyped-def]
    """An account with a registered device, for the bad reports."""
    person = await module_people.new("reporter")
    device_id = f"phone-{uuid.uuid4().hex[:6]}"
    await person.agent.register(device_id, name="Reporter's phone")
    return person, device_id


@pytest.mark.parametrize("batch", ["alone", "after-a-good-one"])
@pytest.mark.parametrize("case", list(BAD_POSITIONS))
async def test_a_bad_position_is_refused_without_repeating_a_coordinate(gateway, reporter, case, batch):
    person, device_id = reporter
    field, bad = BAD_POSITIONS[case]
    locations = [bad] if batch == "alone" else [point(*GOOD, ago=dt.timedelta(minutes=1)), bad]
    if batch == "after-a-good-one":
        field = field.replace("locations[0]", "locations[1]")
    async with grpc.aio.insecure_channel(gateway) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await locator_pb2_grpc.DeviceAgentServiceStub(channel).ReportLocations(
                pb.ReportLocationsRequest(device_id=device_id, locations=locations), metadata=await person.metadata(), timeout=10
            )
    err = CumuloRpcError.from_rpc_error(caught.value)
    assert (err.code, err.field) == (grpc.StatusCode.INVALID_ARGUMENT, field), err
    said = everything_said(caught.value)
    for number in set().union(*(numbers_of(location) for location in locations)):
        assert number not in said, f"{number} in the answer: {said}"
    assert await person.client.devices.history(device_id) == []




async def test_positions_never_reach_the_locators_logs(owner, debug_logs):
    """A report with a bad position, one with a bad and a good one, and one with good ones;
    then the owner reads them back and sends the phone to lost mode (which marks it found at
    the next report). The locator logs every call at debug level, but never a coordinate."""
    # (integer parts of 60 and more: never mistaken for the seconds of a log line's timestamp)
    bad = point(95.4321987, 117.6543219)
    first = point(-64.2864603, 174.7762426, ago=dt.timedelta(minutes=3))
    second = point(-64.2901234, 174.7798765, ago=dt.timedelta(minutes=2))
    third = point(-64.2934567, 174.7812345, ago=dt.timedelta(minutes=1))
    await expect_error(owner.agent.report(owner.device_id, [bad]), grpc.StatusCode.INVALID_ARGUMENT, field="locations[0].latitude")
    await expect_error(owner.agent.report(owner.device_id, [first, bad]), grpc.StatusCode.INVALID_ARGUMENT, field="locations[1].latitude")
    assert (await owner.agent.report(owner.device_id, [first, second])).stored == 2
    await owner.client.devices.get(owner.device_id)
    await owner.client.devices.history(owner.device_id)
    await owner.client.devices.locate(owner.device_id)
    await owner.client.devices.lost_mode(owner.device_id, message="Please call me", phone="+86 138 0013 8000")
    assert (await owner.agent.report(owner.device_id, [third])).lost_mode.enabled
    assert (await owner.client.devices.get(owner.device_id)).lost_mode.found_at.ByteSize()
    text = debug_logs()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    # The control: the capture works, and saw the reports refused and stored.
    reports = [line.get("code") for line in lines if line.get("event") == "rpc" and str(line.get("method", "")).endswith("/ReportLocations")]
    assert reports.count("INVALID_ARGUMENT") == 2 and reports.count("OK") == 2, text
    for location in (bad, first, second, third):
        for number in numbers_of(location):
            assert number not in text, f"{number} logged:\n{text}"


# --- the owner ------------------------------------------------------------------------------


async def test_the_owner_is_untouched_by_everything_refused_or_aimed_at_it(world):
    """Runs last: the owner's devices, the phone's history and every command are as the setup
    left them, and the phone still gets its queued RING, delivered for the first time."""
    assert await snapshot_of(world.owner, [world.device_id, world.tablet_id]) == world.snapshot
    (command,) = await world.phone.agent.poll(world.device_id)
    assert (command.command_id, command.kind, command.deliveries) == (world.pending.command_id, pb.COMMAND_KIND_RING, 1)
