"""`cumulo devices ...` (the owner's side) and `cumulo device-agent` (a simulated device)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import pathlib
import platform
from typing import TYPE_CHECKING, Any

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo_sdk.cli_common import add_json_flag, fail, show_rows, show_table
from cumulo_sdk.console import home, plural, read_password, when
from cumulo_sdk.devices import Executed, Fix, read_track, run_agent, walk
from cumulo_sdk.tables import Column

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

STATES = {v: k.removeprefix("COMMAND_STATE_").lower() for k, v in pb.CommandState.items()}
KINDS = {v: k.removeprefix("COMMAND_KIND_").lower() for k, v in pb.CommandKind.items()}


def _position(location: pb.Location) -> str:
    if not location.ByteSize():
        return "no position yet"
    return f"{location.latitude:.5f},{location.longitude:.5f} ±{location.accuracy:.0f} m at {when(location.measured_at)}"


DEVICE_COLUMNS = [Column("DEVICE"), Column("NAME"), Column("BATTERY", right=True), Column("LAST SEEN"), Column("LAST POSITION")]


def _device_cells(device: pb.Device) -> list[str]:
    battery = f"{device.battery}%" if device.battery >= 0 else "?"
    flags = ""
    if device.lost_mode.enabled:
        flags += " [lost" + (f", found {when(device.lost_mode.found_at)}" if device.lost_mode.found_at.ByteSize() else "") + "]"
    if device.wiped_at.ByteSize():
        flags += " [wiped]"
    return [device.device_id, device.name, battery, when(device.last_seen_at), _position(device.last_location) + flags]


def _print_command(command: pb.Command) -> None:
    detail = f"  ({command.detail})" if command.detail else ""
    print(f"{command.command_id}  {KINDS[command.kind]:<9} {STATES[command.state]:<9} sent {when(command.created_at)}{detail}")


async def _ls(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(args, "devices", await client.devices.list(args.account or ""), DEVICE_COLUMNS, _device_cells)


async def _locate(client: Cumulo, args: argparse.Namespace) -> int:
    located = await client.devices.locate(args.device_id, args.account or "")
    before = located.device.last_location.measured_at.ToDatetime() if located.device.last_location.ByteSize() else None
    print(f"last known: {_position(located.device.last_location)}")
    deadline = asyncio.get_running_loop().time() + args.wait
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.5)
        device = await client.devices.get(args.device_id, args.account or "")
        if device.last_location.ByteSize() and (before is None or device.last_location.measured_at.ToDatetime() > before):
            print(f"now:        {_position(device.last_location)}")
            return 0
    command = await client.devices.command(located.command.command_id, account_id=args.account or "")
    print(f"no fresh position yet; the locate command is {STATES[command.state]} (see `cumulo devices commands {args.device_id}`)")
    return 0


async def _wait_for(client: Cumulo, command: pb.Command, seconds: float, account: str) -> pb.Command:
    deadline = asyncio.get_running_loop().time() + seconds
    while command.state in (pb.COMMAND_STATE_QUEUED, pb.COMMAND_STATE_DELIVERED) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.3)
        command = await client.devices.command(command.command_id, account_id=account)
    return command


async def _command(client: Cumulo, args: argparse.Namespace, command: pb.Command) -> int:
    _print_command(command)
    if args.wait:
        done = await _wait_for(client, command, args.wait, getattr(args, "account", "") or "")
        if done.state != command.state:
            _print_command(done)
    return 0


async def _ring(client: Cumulo, args: argparse.Namespace) -> int:
    return await _command(client, args, await client.devices.ring(args.device_id, args.seconds, account_id=args.account or ""))


async def _lock(client: Cumulo, args: argparse.Namespace) -> int:
    command = await client.devices.lost_mode(
        args.device_id, enabled=True, message=args.message, phone=args.phone or "", account_id=args.account or ""
    )
    return await _command(client, args, command)


async def _unlock(client: Cumulo, args: argparse.Namespace) -> int:
    return await _command(client, args, await client.devices.lost_mode(args.device_id, enabled=False, account_id=args.account or ""))


async def _wipe(client: Cumulo, args: argparse.Namespace) -> int:
    password = read_password("Your password, to confirm the wipe: ")
    return await _command(client, args, await client.devices.wipe(args.device_id, password=password))


async def _history(client: Cumulo, args: argparse.Namespace) -> int:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=args.hours) if args.hours else None
    locations = await client.devices.history(args.device_id, account_id=args.account or "", since=since)
    return show_rows(args, "locations", locations, lambda location: print(_position(location)), device_id=args.device_id)


async def _commands(client: Cumulo, args: argparse.Namespace) -> int:
    commands = await client.devices.commands(args.device_id, account_id=args.account or "")
    return show_rows(args, "commands", commands, _print_command, device_id=args.device_id)


async def _rm(client: Cumulo, args: argparse.Namespace) -> int:
    password = read_password("Your password, to confirm the removal: ")
    await client.devices.remove(args.device_id, password=password)
    print(f"device {args.device_id} removed, with its positions and commands")
    return 0


async def _agent(client: Cumulo, args: argparse.Namespace) -> int:
    if args.track:
        fixes = read_track(pathlib.Path(args.track))
        if not fixes:
            fail(f"{args.track}: no positions in it (a GPX file, or a CSV of latitude,longitude[,accuracy])")
            return 2
        track = iter(fixes)
    else:
        latitude, longitude = (float(x) for x in args.start.split(","))
        track = walk(Fix(latitude, longitude))
    device_id = args.device_id or f"{platform.node() or 'device'}-{args.name}".replace(" ", "-")
    handled = await run_agent(
        client, device_id=device_id, name=args.name, model=args.model, platform=args.platform, fixes=track,
        every=args.every, executed=Executed(home(args.environ) / f"agent-{device_id}.json"), stop_after=args.count,
        say=lambda text: print(text, flush=True),
    )
    print(f"handled {plural(handled, 'command')}", flush=True)
    return 0


def add_commands(commands: Any) -> None:
    devices = commands.add_parser("devices", help="find your devices: where they are, ring, lost mode, wipe").add_subparsers(
        dest="devices_command", required=True, metavar="COMMAND"
    )

    def device(name: str, help: str, run: Any, *, wait: bool = False, listing: bool = False) -> argparse.ArgumentParser:
        parser = devices.add_parser(name, help=help)
        parser.add_argument("device_id", help="the device, as `cumulo devices ls` shows it")
        parser.add_argument("--account", help="a minor's account id, for their guardian")
        if wait:
            parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the device to answer (0: do not)")
        if listing:
            add_json_flag(parser)
        parser.set_defaults(run=run)
        return parser

    ls = devices.add_parser("ls", help="your devices: battery, last seen, last position")
    ls.add_argument("--account", help="a minor's account id, for their guardian")
    add_json_flag(ls)
    ls.set_defaults(run=_ls)
    locate = device("locate", "the last position now, and a fresh one when the device answers", _locate)
    locate.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a fresh position")
    ring = device("ring", "play a sound, even if the device is silenced", _ring, wait=True)
    ring.add_argument("--seconds", type=int, default=30, help="how long it rings (default: 30)")
    lock = device("lock", "lost mode: lock the screen with a message and a number to call", _lock, wait=True)
    lock.add_argument(
        "--message", default="This device is lost. Please call the number shown.", help="what the locked screen says"
    )
    lock.add_argument("--phone", help="a number the finder can call, shown on the locked screen")
    device("unlock", "end lost mode", _unlock, wait=True)
    device("wipe", "erase the device (asks for your password)", _wipe, wait=True)
    history = device("history", "the device's positions, newest first", _history, listing=True)
    history.add_argument("--hours", type=float, default=0, help="only the last N hours")
    device("commands", "commands sent to the device and their state", _commands, listing=True)
    rm = devices.add_parser("rm", help="forget a device, its positions and commands (asks for your password)")
    rm.add_argument("device_id", help="the device, as `cumulo devices ls` shows it")
    rm.set_defaults(run=_rm)
    agent = commands.add_parser("device-agent", help="run as a device: report positions, obey commands (a simulator)")
    agent.add_argument("--name", default="my phone", help="the device's name (default: my phone)")
    agent.add_argument("--device-id", help="the device's id (default: <host>-<name>)")
    agent.add_argument("--model", default="cumulo-sim", help="the model it reports (default: cumulo-sim)")
    agent.add_argument("--platform", default="linux", help="the platform it reports (default: linux)")
    agent.add_argument("--track", help="positions to replay: a GPX file, or a CSV of latitude,longitude[,accuracy]")
    agent.add_argument("--start", default="31.23040,121.47370", help="where a simulated walk starts (latitude,longitude)")
    agent.add_argument("--every", type=float, default=10.0, help="seconds between reports")
    agent.add_argument("--count", type=int, default=0, help="stop after this many commands")
    agent.set_defaults(run=_agent)
