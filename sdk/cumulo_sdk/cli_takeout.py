"""`cumulo takeout ...`: a copy of everything the account holds (files, sync records, backups'
manifests, device locations, account data) in tar archives to download, for 7 days."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import TYPE_CHECKING, Any

from cumulo.takeout.v1 import takeout_pb2 as pb
from cumulo_sdk.cli_common import add_json_flag, show_table
from cumulo_sdk.console import ProgressBar, human_size, when
from cumulo_sdk.tables import Column
from cumulo_sdk.takeout import STATE_NAMES

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

COLUMNS = [Column("EXPORT"), Column("STATE"), Column("ASKED"), Column("SIZE"), Column("EXPIRES")]


def _progress(export: pb.Export) -> str:
    state = STATE_NAMES.get(export.state, "?")
    if export.state == pb.EXPORT_STATE_RUNNING:
        return f"{state}: {export.files_done} of {export.files_total} files, {human_size(export.bytes_written)} written"
    if export.state == pb.EXPORT_STATE_FAILED:
        return f"{state}: {export.failure}"
    if export.state == pb.EXPORT_STATE_READY:
        return f"{state}: {len(export.archives)} archive(s), {human_size(sum(a.size for a in export.archives))}, until {when(export.expires_at)}"
    return state


async def _start(client: Cumulo, args: argparse.Namespace) -> int:
    export = await client.takeout.start()
    print(f"export {export.export_id} {STATE_NAMES.get(export.state, '?')}")
    if not args.wait:
        print(f"  follow it: cumulo takeout status {export.export_id}")
        return 0
    return await _finish(client, export.export_id, args)


async def _status(client: Cumulo, args: argparse.Namespace) -> int:
    export = await client.takeout.get(args.export_id)
    print(f"export {export.export_id} {_progress(export)}")
    for archive in export.archives:
        print(f"  {archive.name}  {human_size(archive.size)}  sha256 {archive.sha256}")
    return 0


async def _finish(client: Cumulo, export_id: str, args: argparse.Namespace) -> int:
    shown = ""

    def show(export: pb.Export) -> None:
        nonlocal shown
        line = _progress(export)
        if line != shown and sys.stderr.isatty():
            print(f"  {line}", file=sys.stderr)
        shown = line

    export = await client.takeout.wait(export_id, every=1.0, progress=show)
    print(f"export {export.export_id} {_progress(export)}")
    if export.state != pb.EXPORT_STATE_READY:
        return 1
    if args.dest:
        return await _save(client, export_id, pathlib.Path(args.dest))
    return 0


async def _save(client: Cumulo, export_id: str, folder: pathlib.Path) -> int:
    saved = await client.takeout.download(export_id, folder, progress=ProgressBar(export_id[:8]))
    for path in saved:
        print(f"downloaded {path} (sha256 verified)")
    return 0


async def _download(client: Cumulo, args: argparse.Namespace) -> int:
    return await _save(client, args.export_id, pathlib.Path(args.dest))


async def _ls(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(args, "exports", await client.takeout.list(), COLUMNS, _cells, empty="no exports yet: cumulo takeout start")


def _cells(export: pb.Export) -> list[str]:
    size = human_size(sum(a.size for a in export.archives)) if export.archives else "-"
    return [export.export_id, STATE_NAMES.get(export.state, "?"), when(export.requested_at), size, when(export.expires_at)]


def add_commands(commands: Any) -> None:
    takeout = commands.add_parser(
        "takeout", help="a copy of everything your account holds, to download (files, sync, backups, devices, account)"
    ).add_subparsers(dest="takeout_command", required=True, metavar="COMMAND")
    start = takeout.add_parser("start", help="ask for an export (one at a time; it runs in the background)")
    start.add_argument("--wait", action="store_true", help="wait until it is ready")
    start.add_argument("--dest", help="with --wait: download the archives into this folder")
    start.set_defaults(run=_start)
    status = takeout.add_parser("status", help="an export's progress, and its archives once ready")
    status.add_argument("export_id", help="its id, as `cumulo takeout start` or `ls` shows it")
    status.set_defaults(run=_status)
    download = takeout.add_parser("download", help="download a ready export's archives (each checked by its SHA-256)")
    download.add_argument("export_id", help="its id, as `cumulo takeout ls` shows it")
    download.add_argument("dest", help="the folder to write the archives into")
    download.set_defaults(run=_download)
    ls = takeout.add_parser("ls", help="your exports, newest first")
    add_json_flag(ls)
    ls.set_defaults(run=_ls)
