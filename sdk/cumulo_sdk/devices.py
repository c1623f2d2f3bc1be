"""Find my device through the SDK: the owner's side (`Devices`), the device's side
(`DeviceAgent`), and `run_agent`, a device simulated from a track file or a walk (what
`cumulo device-agent` runs)."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import datetime as dt
import json
import math
import pathlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING

import grpc
from google.protobuf import timestamp_pb2

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo.locator.v1 import locator_pb2_grpc
from cumulo_sdk.errors import CumuloRpcError

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo


def _stamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


class Devices:
    """The owner's side (or a guardian's, with `account_id` of the minor)."""

    def __init__(self, client: Cumulo) -> None:
        self.client = client
        self.stub = locator_pb2_grpc.DeviceLocatorServiceStub(client.channel)

    async def list(self, account_id: str = "") -> builtins.list[pb.Device]:
        return list((await self.client.call(self.stub.ListDevices, pb.ListDevicesRequest(account_id=account_id))).devices)

    async def get(self, device_id: str, account_id: str = "") -> pb.Device:
        request = pb.GetDeviceRequest(device_id=device_id, account_id=account_id)
        return (await self.client.call(self.stub.GetDevice, request)).device

    async def locate(self, device_id: str, account_id: str = "") -> pb.LocateResponse:
        return await self.client.call(self.stub.Locate, pb.LocateRequest(device_id=device_id, account_id=account_id))

    async def history(self, device_id: str, *, account_id: str = "", since: dt.datetime | None = None) -> builtins.list[pb.Location]:
        found: list[pb.Location] = []
        token = ""
        while True:
            request = pb.GetHistoryRequest(device_id=device_id, account_id=account_id, page_size=5000, page_token=token)
            if since is not None:
                request.since.CopyFrom(_stamp(since))
            page = await self.client.call(self.stub.GetHistory, request)
            found.extend(page.locations)
            token = page.next_page_token
            if not token:
                return found

    async def send(self, request: pb.SendCommandRequest) -> pb.Command:
        return (await self.client.call(self.stub.SendCommand, request)).command

    async def ring(self, device_id: str, seconds: int = 30, *, account_id: str = "") -> pb.Command:
        return await self.send(pb.SendCommandRequest(device_id=device_id, account_id=account_id, kind=pb.COMMAND_KIND_RING, ring_seconds=seconds))

    async def lost_mode(self, device_id: str, *, enabled: bool = True, message: str = "", phone: str = "", account_id: str = "") -> pb.Command:
        return await self.send(
            pb.SendCommandRequest(
                device_id=device_id, account_id=account_id, kind=pb.COMMAND_KIND_LOST_MODE,
                lost_mode=pb.LostMode(enabled=enabled, message=message, contact_phone=phone),
            )
        )

    async def wipe(self, device_id: str, *, password: str | None = None) -> pb.Command:
        """With `password`, confirms it first (the service wants it fresh)."""
        if password is not None:
            await self.client.confirm_password(password)
        return await self.send(pb.SendCommandRequest(device_id=device_id, kind=pb.COMMAND_KIND_WIPE))

    async def commands(self, device_id: str, *, account_id: str = "", limit: int = 0) -> builtins.list[pb.Command]:
        request = pb.ListCommandsRequest(device_id=device_id, account_id=account_id, limit=limit)
        return list((await self.client.call(self.stub.ListCommands, request)).commands)

    async def command(self, command_id: str, *, account_id: str = "") -> pb.Command:
        request = pb.GetCommandRequest(command_id=command_id, account_id=account_id)
        return (await self.client.call(self.stub.GetCommand, request)).command

    async def remove(self, device_id: str, *, password: str | None = None) -> None:
        """With `password`, confirms it first (the service wants it fresh, as for a wipe)."""
        if password is not None:
            await self.client.confirm_password(password)
        await self.client.call(self.stub.RemoveDevice, pb.RemoveDeviceRequest(device_id=device_id))


class DeviceAgent:
    """The device's side, logged in as its owner."""

    def __init__(self, client: Cumulo) -> None:
        self.client = client
        self.stub = locator_pb2_grpc.DeviceAgentServiceStub(client.channel)

    async def register(self, device_id: str, *, name: str = "", model: str = "", platform: str = "") -> pb.Device:
        request = pb.RegisterDeviceRequest(device_id=device_id, name=name, model=model, platform=platform)
        return (await self.client.call(self.stub.RegisterDevice, request)).device

    async def report(self, device_id: str, locations: list[pb.Location]) -> pb.ReportLocationsResponse:
        return await self.client.call(self.stub.ReportLocations, pb.ReportLocationsRequest(device_id=device_id, locations=locations))

    async def poll(self, device_id: str) -> list[pb.Command]:
        return list((await self.client.call(self.stub.PollCommands, pb.PollCommandsRequest(device_id=device_id))).commands)

    async def ack(self, device_id: str, command_id: str, *, succeeded: bool = True, detail: str = "") -> pb.Command:
        request = pb.AckCommandRequest(device_id=device_id, command_id=command_id, succeeded=succeeded, detail=detail)
        return (await self.client.call(self.stub.AckCommand, request)).command

    async def commands(self, device_id: str) -> AsyncGenerator[pb.Command, None]:
        """The device's commands as they come, reconnecting (with a fresh token) whenever the
        stream ends or drops; a command not acknowledged comes again after a reconnect."""
        request = pb.ReceiveCommandsRequest(device_id=device_id)
        async for message in self.client.lasting_stream(lambda metadata: self.stub.ReceiveCommands(request, metadata=metadata)):
            if message.HasField("command"):
                yield message.command


# --- a simulated device --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fix:
    latitude: float
    longitude: float
    accuracy: float = 10.0


def read_track(path: pathlib.Path) -> list[Fix]:
    """Positions from a GPX file (trkpt/wpt) or a CSV of `latitude,longitude[,accuracy]`."""
    if path.suffix.lower() == ".gpx":
        points = []
        for element in ET.parse(path).iter():
            if element.tag.rsplit("}", 1)[-1] in ("trkpt", "wpt", "rtept"):
                points.append(Fix(float(element.attrib["lat"]), float(element.attrib["lon"])))
        return points
    fixes = []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if not parts or not parts[0] or parts[0].lower().startswith(("lat", "#")):
            continue
        fixes.append(Fix(float(parts[0]), float(parts[1]), float(parts[2]) if len(parts) > 2 and parts[2] else 10.0))
    return fixes


def walk(start: Fix, *, step_metres: float = 15.0) -> Iterator[Fix]:
    """A slow walk in a circle around `start`, forever."""
    radius = step_metres * 20 / (2 * math.pi)
    for i in iter(int, 1):
        angle = 2 * math.pi * (i % 20) / 20
        dlat = radius * math.cos(angle) / 111_320
        dlon = radius * math.sin(angle) / (111_320 * max(math.cos(math.radians(start.latitude)), 0.01))
        yield Fix(start.latitude + dlat, start.longitude + dlon, 8.0)


class Executed:
    """Command ids this device has already run, kept in a file: a command sent again after a
    dropped stream is acknowledged, not run twice."""

    def __init__(self, path: pathlib.Path | None) -> None:
        self.path = path
        self.ids: set[str] = set()
        if path is not None and path.exists():
            try:
                self.ids = set(json.loads(path.read_text()))
            except ValueError:
                self.ids = set()

    def __contains__(self, command_id: str) -> bool:
        return command_id in self.ids

    def add(self, command_id: str) -> None:
        self.ids.add(command_id)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path.write_text(json.dumps(sorted(self.ids)))


def describe(command: pb.Command) -> str:
    if command.kind == pb.COMMAND_KIND_RING:
        return f"ringing for {command.ring_seconds} s"
    if command.kind == pb.COMMAND_KIND_LOST_MODE:
        lost = command.lost_mode
        if not lost.enabled:
            return "lost mode off"
        return f"lost mode: screen locked, showing {lost.message!r}" + (f", call {lost.contact_phone}" if lost.contact_phone else "")
    if command.kind == pb.COMMAND_KIND_WIPE:
        return "wiping the device (simulated)"
    return "locating: reporting a fresh position"


async def run_agent(
    client: Cumulo,
    *,
    device_id: str,
    name: str,
    model: str = "",
    platform: str = "",
    fixes: Iterator[Fix],
    every: float = 10.0,
    battery: int = 87,
    executed: Executed | None = None,
    stop_after: int = 0,
    say: Callable[[str], None] = print,
) -> int:
    """Registers, reports a position every `every` seconds (buffering while offline and sending
    the buffer as one batch), runs each command once and acknowledges it. Returns the number
    of commands handled, after `stop_after` of them (0: runs until cancelled)."""
    agent = DeviceAgent(client)
    executed = executed or Executed(None)
    device = await agent.register(device_id, name=name, model=model, platform=platform)
    say(f"device {device.device_id} ({device.name}) registered")
    buffer: list[pb.Location] = []
    current = next(fixes)
    wake = asyncio.Event()

    def reading(fix: Fix) -> pb.Location:
        return pb.Location(
            latitude=fix.latitude, longitude=fix.longitude, accuracy=fix.accuracy, battery=battery,
            source=pb.LOCATION_SOURCE_GPS, measured_at=_stamp(dt.datetime.now(dt.UTC)),
        )

    async def report_now() -> None:
        buffer.append(reading(current))
        try:
            response = await agent.report(device_id, buffer[-1000:])
        except CumuloRpcError as err:
            if err.code != grpc.StatusCode.UNAVAILABLE:
                raise
            say(f"offline: {len(buffer)} position(s) kept for later")
            return
        buffer.clear()
        if response.lost_mode.enabled:
            say(f"lost mode is on: {response.lost_mode.message!r}")

    async def reporter() -> None:
        nonlocal current
        while True:
            await report_now()
            try:
                await asyncio.wait_for(wake.wait(), timeout=every)
            except TimeoutError:
                current = next(fixes, current)
            wake.clear()

    handled = 0
    reporting = asyncio.create_task(reporter())
    stream = agent.commands(device_id)
    try:
        async for command in stream:
            if command.command_id in executed:
                await agent.ack(device_id, command.command_id, succeeded=True, detail="already done")
                continue
            say(f"command {command.command_id}: {describe(command)}")
            if command.kind == pb.COMMAND_KIND_LOCATE:
                wake.set()
            executed.add(command.command_id)
            try:
                await agent.ack(device_id, command.command_id, succeeded=True, detail=describe(command))
            except CumuloRpcError as err:
                if err.reason != "COMMAND_EXPIRED":
                    raise
                say(f"command {command.command_id} had expired")
            handled += 1
            if stop_after and handled >= stop_after:
                break
    finally:
        await stream.aclose()
        reporting.cancel()
        # gather, not `await reporting`: a Ctrl-C arriving meanwhile still cancels this task
        # (catching the reporter's CancelledError would swallow that one too).
        (ended,) = await asyncio.gather(reporting, return_exceptions=True)
        if isinstance(ended, BaseException) and not isinstance(ended, (asyncio.CancelledError, CumuloRpcError)):
            raise ended
    return handled
