"""Who may call the device locator's public API, and on whose devices, through the gateway.

Every method of DeviceLocatorService (the owner's side) and DeviceAgentService (the device's
side) is behind the platform's door (a registered client id and a genuine, unexpired access
token), and only ever reaches the token's own account: another account's device answers
NOT_FOUND DEVICE_NOT_FOUND (just as a device that never was), naming another account's id
answers PERMISSION_DENIED NOT_YOUR_DEVICES (just as an account that never was). Devices of
the same id, streams, passwords and guardians: test_security_devices.py; positions in
answers and logs: test_security_positions.py.

The calls of other accounts aim at the module's `owner` (its phone with a history, a command
acknowledged and one still queued); the last test looks that none of them changed anything."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import grpc
import pytest

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo_devstack.testing import (
    PASSWORD,
    People,
    Person,
    assert_gated,
    expect_error,
    gate_cases,
    invoke,
    public_methods,
    public_services,
)

from .conftest import agent, point

# "Service/Method" -> its descriptor: every method of the public API, from the proto.
METHODS = public_methods(pb)
# The owner's side that takes an account_id (a minor's, for their guardian): all but RemoveDevice.
WITH_ACCOUNT_ID = [name for name, m in METHODS.items() if "account_id" in m.input_type.fields_by_name]


def test_every_method_is_tried_with_another_accounts_token():
    """A method added later must be aimed at the owner's phone (request_for) and the
    bystander's answer said (BYSTANDER_GETS)."""
    assert sorted(METHODS) == sorted(BYSTANDER_GETS)
    assert WITH_ACCOUNT_ID == [m for m in METHODS if m.startswith("DeviceLocatorService/") and m != "DeviceLocatorService/RemoveDevice"]


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
async def world(module_people: People) -> World:
    owner = await module_people.new("owner's laptop")
    phone = await module_people.login(owner.email, "owner's phone")
    stranger = await module_people.new("stranger")
    device_id, tablet_id = f"phone-{uuid.uuid4().hex[:6]}", f"tablet-{uuid.uuid4().hex[:6]}"
    await agent(phone).register(device_id, name="Owner's phone", model="Pixel", platform="android")
    await agent(phone).register(tablet_id, name="Owner's tablet", model="Tab", platform="android")
    track = [(48.8583701, 2.2944813), (48.8606111, 2.3376440), (48.8529682, 2.3499021)]
    reported = await agent(phone).report(
        device_id, [point(lat, lon, ago=dt.timedelta(minutes=30 - 10 * i)) for i, (lat, lon) in enumerate(track)]
    )
    assert reported.stored == 3
    done = (await owner.client.devices.locate(device_id)).command
    assert [c.command_id for c in await agent(phone).poll(device_id)] == [done.command_id]
    done = await agent(phone).ack(device_id, done.command_id, detail="reported")
    pending = await owner.client.devices.ring(device_id, 15)
    assert pending.state == pb.COMMAND_STATE_QUEUED
    snapshot = await snapshot_of(owner, [device_id, tablet_id])
    assert [d.device_id for d in snapshot.devices] == [device_id, tablet_id]
    assert [(h.latitude, h.longitude) for h in snapshot.history[device_id]] == list(reversed(track))
    assert [c.command_id for c in snapshot.commands[device_id]] == [pending.command_id, done.command_id]
    return World(owner, phone, stranger, device_id, tablet_id, done, pending, track, snapshot)


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


# --- the door -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, case", gate_cases(public_services(pb)))
async def test_every_method_is_gated(locator, signing_key, method, case):
    """Every kind of bad token is tried on the platform's interceptor (libs/cumulo_platform/tests)."""
    await assert_gated(locator.target, method, case, signing_key)


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
    """Aimed at the owner's phone with another account's genuine token, every call finds
    nothing of the owner's, and answers just as for a device (or command) that never was
    (and the request shapes are right: a genuine token is let in)."""
    bystander = await people.new("bystander")
    request = request_for(method, world)
    expected = BYSTANDER_GETS[method]
    metadata = await bystander.metadata()
    if isinstance(expected, tuple):
        err = await expect_error(invoke(gateway, METHODS[method], request, metadata), expected[0], reason=expected[1])
        assert world.device_id not in err.message and world.pending.command_id not in err.message
        never = await expect_error(invoke(gateway, METHODS[method], made_up(request, world), metadata), expected[0])
        assert (never.reason, never.message, never.metadata) == (err.reason, err.message, err.metadata)
    elif expected == "its-own":
        answer = await invoke(gateway, METHODS[method], request, metadata)
        assert (answer.device.account_id, answer.device.device_id, answer.device.name) == (bystander.account_id, world.device_id, "Hijacked")
        assert not answer.device.HasField("last_location")
        assert await bystander.client.devices.commands(world.device_id) == []
        assert await bystander.client.devices.history(world.device_id) == []
    else:
        assert list((await invoke(gateway, METHODS[method], request, metadata)).devices) == []
    assert (await world.owner.client.devices.get(world.device_id)).name == "Owner's phone"


@pytest.mark.parametrize("method", WITH_ACCOUNT_ID)
async def test_the_stranger_cannot_name_the_owners_account(gateway, world, method):
    """Naming the owner's account id answers NOT_YOUR_DEVICES, exactly as for an account id
    that never was: nothing tells the stranger the owner's account exists."""
    metadata = await world.stranger.metadata()
    err = await expect_error(
        invoke(gateway, METHODS[method], request_for(method, world, account_id=world.owner.account_id), metadata),
        grpc.StatusCode.PERMISSION_DENIED,
        reason="NOT_YOUR_DEVICES",
    )
    assert world.owner.account_id not in err.message and world.device_id not in err.message
    never = await expect_error(
        invoke(gateway, METHODS[method], request_for(method, world, account_id=str(uuid.uuid4())), metadata), grpc.StatusCode.PERMISSION_DENIED
    )
    assert (never.reason, never.message, never.metadata) == (err.reason, err.message, err.metadata)
    # the same id written otherwise (upper case) is the same account, and as refused
    await expect_error(
        invoke(gateway, METHODS[method], request_for(method, world, account_id=world.owner.account_id.upper()), metadata),
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


# --- the owner ------------------------------------------------------------------------------


async def test_the_owner_is_untouched_by_everything_aimed_at_it(world):
    """Runs last: the owner's devices, the phone's history and every command are as the setup
    left them, and the phone still gets its queued RING, delivered for the first time."""
    assert await snapshot_of(world.owner, [world.device_id, world.tablet_id]) == world.snapshot
    (command,) = await agent(world.phone).poll(world.device_id)
    assert (command.command_id, command.kind, command.deliveries) == (world.pending.command_id, pb.COMMAND_KIND_RING, 1)
