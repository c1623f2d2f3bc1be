"""DeviceLocatorService (the owner's side) and DeviceAgentService (the device's side):
thin — translate, call a use case, translate back."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import grpc
from google.protobuf import timestamp_pb2

from cumulo.locator.v1 import locator_pb2, locator_pb2_grpc
from cumulo_locator.api import convert
from cumulo_locator.commands import LOCATE, LOST_MODE, RING, Commands, NewCommand
from cumulo_locator.devices import Devices
from cumulo_locator.domain import rules
from cumulo_platform.errors import InvalidArgument
from cumulo_platform.fanout import HEARTBEAT
from cumulo_platform.interceptors import current_principal

SERVICE = "cumulo.locator.v1.DeviceLocatorService"
AGENT_SERVICE = "cumulo.locator.v1.DeviceAgentService"


def _me() -> uuid.UUID:
    return uuid.UUID(current_principal().account_id)


def _when(stamp: timestamp_pb2.Timestamp, field: str) -> dt.datetime | None:
    if not stamp.ByteSize():
        return None
    try:
        return stamp.ToDatetime(dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(field, "is not a valid time") from None


class DeviceLocatorService(locator_pb2_grpc.DeviceLocatorServiceServicer):
    def __init__(self, devices: Devices, commands: Commands) -> None:
        self.devices = devices
        self.commands = commands

    async def _owner(self, account_id: str) -> uuid.UUID:
        return await self.devices.owner(current_principal(), account_id)

    async def ListDevices(self, request: locator_pb2.ListDevicesRequest, context: grpc.aio.ServicerContext) -> locator_pb2.ListDevicesResponse:
        rows = await self.devices.of_account(await self._owner(request.account_id))
        return locator_pb2.ListDevicesResponse(devices=[convert.device(r) for r in rows])

    async def GetDevice(self, request: locator_pb2.GetDeviceRequest, context: grpc.aio.ServicerContext) -> locator_pb2.GetDeviceResponse:
        row = await self.devices.get(await self._owner(request.account_id), request.device_id)
        return locator_pb2.GetDeviceResponse(device=convert.device(row))

    async def Locate(self, request: locator_pb2.LocateRequest, context: grpc.aio.ServicerContext) -> locator_pb2.LocateResponse:
        account = await self._owner(request.account_id)
        command = await self.commands.send(
            current_principal(), account, request.device_id, NewCommand(LOCATE), self.commands.ttl(0)
        )
        row = await self.devices.get(account, request.device_id)
        return locator_pb2.LocateResponse(device=convert.device(row), command=convert.command(command))

    async def GetHistory(self, request: locator_pb2.GetHistoryRequest, context: grpc.aio.ServicerContext) -> locator_pb2.GetHistoryResponse:
        rows, token = await self.devices.history(
            await self._owner(request.account_id), request.device_id,
            _when(request.since, "since"), _when(request.until, "until"), request.page_size, request.page_token,
        )
        return locator_pb2.GetHistoryResponse(locations=[convert.location(r) for r in rows], next_page_token=token)

    async def SendCommand(self, request: locator_pb2.SendCommandRequest, context: grpc.aio.ServicerContext) -> locator_pb2.SendCommandResponse:
        account = await self._owner(request.account_id)
        kind = convert.KIND_NAMES.get(request.kind)
        if kind is None:
            raise InvalidArgument("kind", "must be LOCATE, RING, LOST_MODE or WIPE")
        if kind == RING:
            command = NewCommand(RING, ring_seconds=rules.check_ring_seconds(request.ring_seconds))
        elif kind == LOST_MODE:
            lost = request.lost_mode
            command = NewCommand(
                LOST_MODE, lost_enabled=lost.enabled,
                lost_message=rules.check_lost_message(lost.message, "lost_mode.message"),
                lost_phone=rules.check_phone(lost.contact_phone, "lost_mode.contact_phone"),
            )
        else:
            command = NewCommand(kind)
        ttl = self.commands.ttl(request.ttl_seconds)
        row = await self.commands.send(current_principal(), account, request.device_id, command, ttl)
        return locator_pb2.SendCommandResponse(command=convert.command(row))

    async def ListCommands(self, request: locator_pb2.ListCommandsRequest, context: grpc.aio.ServicerContext) -> locator_pb2.ListCommandsResponse:
        rows = await self.commands.of_device(await self._owner(request.account_id), request.device_id, request.limit)
        return locator_pb2.ListCommandsResponse(commands=[convert.command(r) for r in rows])

    async def GetCommand(self, request: locator_pb2.GetCommandRequest, context: grpc.aio.ServicerContext) -> locator_pb2.GetCommandResponse:
        row = await self.commands.get(await self._owner(request.account_id), request.command_id)
        return locator_pb2.GetCommandResponse(command=convert.command(row))

    async def RemoveDevice(self, request: locator_pb2.RemoveDeviceRequest, context: grpc.aio.ServicerContext) -> locator_pb2.RemoveDeviceResponse:
        await self.devices.remove(current_principal(), request.device_id)
        return locator_pb2.RemoveDeviceResponse()


class DeviceAgentService(locator_pb2_grpc.DeviceAgentServiceServicer):
    def __init__(self, devices: Devices, commands: Commands, heartbeat: float) -> None:
        self.devices = devices
        self.commands = commands
        self.heartbeat = heartbeat

    async def RegisterDevice(self, request: locator_pb2.RegisterDeviceRequest, context: grpc.aio.ServicerContext) -> locator_pb2.RegisterDeviceResponse:
        row = await self.devices.register(_me(), request.device_id, request.name, request.model, request.platform)
        return locator_pb2.RegisterDeviceResponse(device=convert.device(row))

    async def ReportLocations(
        self, request: locator_pb2.ReportLocationsRequest, context: grpc.aio.ServicerContext
    ) -> locator_pb2.ReportLocationsResponse:
        device_id = rules.check_device_id(request.device_id)
        points = self.devices.points(request.locations)
        reported = await self.devices.report(_me(), device_id, points)
        lost = convert.lost_mode(reported.lost) if reported.lost is not None and reported.lost.lost_mode else None
        return locator_pb2.ReportLocationsResponse(stored=reported.stored, lost_mode=lost)

    async def ReceiveCommands(
        self, request: locator_pb2.ReceiveCommandsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[locator_pb2.ReceiveCommandsResponse]:
        device = await self.devices.get(_me(), request.device_id)
        sent: set[uuid.UUID] = set()
        notices = self.commands.fanout.notices(
            str(device.device_key), principal=current_principal(), clock=self.commands.clock, heartbeat=self.heartbeat
        )
        async for notice in notices:
            # Listening before reading: a command queued from now on is announced, or read here.
            delivered = await self.commands.deliver(device.device_key, sent)
            for row in delivered:
                sent.add(row.command_id)
                yield locator_pb2.ReceiveCommandsResponse(command=convert.command(row))
            if notice == HEARTBEAT and not delivered:
                yield locator_pb2.ReceiveCommandsResponse(heartbeat=True)

    async def PollCommands(self, request: locator_pb2.PollCommandsRequest, context: grpc.aio.ServicerContext) -> locator_pb2.PollCommandsResponse:
        device = await self.devices.get(_me(), request.device_id)
        rows = await self.commands.deliver(device.device_key, set())
        return locator_pb2.PollCommandsResponse(commands=[convert.command(r) for r in rows])

    async def AckCommand(self, request: locator_pb2.AckCommandRequest, context: grpc.aio.ServicerContext) -> locator_pb2.AckCommandResponse:
        row = await self.commands.ack(_me(), request.device_id, request.command_id, succeeded=request.succeeded, detail=request.detail)
        return locator_pb2.AckCommandResponse(command=convert.command(row))
