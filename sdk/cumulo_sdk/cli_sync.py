"""`cumulo sync ...` and `cumulo backup ...`.

Records in files are JSON Lines, one record a line:

    {"id": "ann", "type": "contact", "data": {"name": "Ann"}}            create
    {"id": "ann", "type": "contact", "data": {...}, "tag": "3"}            update on top of tag 3
    {"id": "ann", "delete": true, "tag": "4"}                              delete
    {"id": "raw", "type": "blob", "payload_b64": "AAEC"}                   bytes that are not JSON

`data` is stored as its JSON text (UTF-8); `sync pull` prints records the same way, with
their tags. Each CUMULO_HOME is a device: it remembers its change token per zone, so a pull
prints only what changed since its last pull.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import pathlib
import platform
import sys
from typing import TYPE_CHECKING, Any

from cumulo.sync.v1 import sync_pb2
from cumulo_sdk.cli_common import add_json_flag, fail, show, show_rows, show_table
from cumulo_sdk.console import ProgressBar, home, human_size, plural, when, when_iso
from cumulo_sdk.tables import Column, print_table

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

PUSH_BATCH = 400
ZONE_COLUMNS = [Column("ZONE"), Column("RECORDS", right=True), Column("SIZE", right=True), Column("CHANGED")]
BACKUP_COLUMNS = [Column("BACKUP"), Column("MADE"), Column("DEVICE"), Column("FILES", right=True), Column("SIZE", right=True)]
RECORD_LINES = """Save and delete records; each line of the file is one record:

    {"id": "ann", "type": "contact", "data": {"name": "Ann"}}            create
    {"id": "ann", "type": "contact", "data": {...}, "tag": "3"}            update on top of tag 3
    {"id": "ann", "delete": true, "tag": "4"}                              delete
    {"id": "raw", "type": "blob", "payload_b64": "AAEC"}                   bytes that are not JSON"""
STATUS = {
    sync_pb2.PUSH_STATUS_SAVED: "saved",
    sync_pb2.PUSH_STATUS_DELETED: "deleted",
    sync_pb2.PUSH_STATUS_CONFLICT: "conflict",
    sync_pb2.PUSH_STATUS_NOT_APPLIED: "not applied",
}


class BadLine(ValueError):
    pass


def parse_line(text: str, number: int) -> sync_pb2.RecordSave | sync_pb2.RecordDelete:
    try:
        item = json.loads(text)
    except ValueError as exc:
        raise BadLine(f"line {number}: not JSON ({exc})") from None
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise BadLine(f'line {number}: a record is an object with a string "id"')
    tag = str(item.get("tag", ""))
    if item.get("delete"):
        return sync_pb2.RecordDelete(record_id=item["id"], change_tag=tag)
    if "payload_b64" in item:
        try:
            payload = base64.b64decode(str(item["payload_b64"]), validate=True)
        except (binascii.Error, ValueError):
            raise BadLine(f'line {number}: "payload_b64" is not base64') from None
    else:
        payload = json.dumps(item.get("data"), ensure_ascii=False, separators=(",", ":")).encode()
    return sync_pb2.RecordSave(record_id=item["id"], record_type=str(item.get("type", "record")), payload=payload, change_tag=tag)


def record_json(record: sync_pb2.Record) -> dict[str, Any]:
    out: dict[str, Any] = {"id": record.record_id}
    if record.deleted:
        out["deleted"] = True
    else:
        out["type"] = record.record_type
        try:
            out["data"] = json.loads(record.payload.decode())
        except (UnicodeDecodeError, ValueError):
            out["payload_b64"] = base64.b64encode(record.payload).decode()
    if record.change_tag:
        out["tag"] = record.change_tag
    if record.modified_by_device:
        out["device"] = record.modified_by_device
    if record.HasField("modified_at"):
        out["modified"] = when_iso(record.modified_at)
    return out


class ZoneTokens:
    """This device's change token per zone, in CUMULO_HOME."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def _load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    def get(self, zone: str) -> str:
        return self._load().get(zone, "")

    def put(self, zone: str, token: str) -> None:
        tokens = self._load()
        tokens[zone] = token
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.write_text(json.dumps(tokens))


def _device(args: argparse.Namespace) -> str:
    return args.device or platform.node() or "device"


async def _zones(client: Cumulo, args: argparse.Namespace) -> int:
    zones = await client.sync.zones()
    usage = await client.sync.usage()

    def person() -> None:
        print_table(ZONE_COLUMNS, [[z.name, str(z.record_count), human_size(z.bytes), when(z.modified_at)] for z in zones])
        print(f"sync storage: {human_size(usage.used)} of {human_size(usage.quota)}")

    return show(args, {"zones": zones, "storage": usage}, person)


async def _push(client: Cumulo, args: argparse.Namespace) -> int:
    try:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
    except OSError as err:
        fail(f"{args.file}: {err.strerror}")
        return 2
    try:
        items = [parse_line(line, n) for n, line in enumerate(source, 1) if line.strip()]
    except BadLine as err:
        fail(f"{args.file}: {err}")
        return 2
    finally:
        if source is not sys.stdin:
            source.close()
    if args.atomic and len(items) > PUSH_BATCH:
        fail(f"an atomic push carries at most {PUSH_BATCH} records; split the file, or push without --atomic")
        return 2
    conflicts = 0
    for start in range(0, len(items), PUSH_BATCH):
        batch = items[start : start + PUSH_BATCH]
        saves = [i for i in batch if isinstance(i, sync_pb2.RecordSave)]
        deletes = [i for i in batch if isinstance(i, sync_pb2.RecordDelete)]
        response = await client.sync.push(args.zone, saves, deletes, atomic=args.atomic, device_id=_device(args))
        for result in response.results:
            line = f"{STATUS[result.status]:<8} {result.record_id}"
            if result.change_tag:
                line += f"  tag={result.change_tag}"
            if result.status == sync_pb2.PUSH_STATUS_CONFLICT:
                conflicts += 1
                server = result.server_record
                line += "  server has: " + json.dumps(record_json(server), ensure_ascii=False)
            print(line)
    if conflicts:
        fail(f"{plural(conflicts, 'conflict')}: merge with the server's record and push again with its tag")
        return 1
    return 0


async def _pull(client: Cumulo, args: argparse.Namespace) -> int:
    tokens = ZoneTokens(home(args.environ) / "sync-tokens.json")
    start = "" if args.full else (args.token if args.token is not None else tokens.get(args.zone))
    records, token = await client.sync.fetch_all(args.zone, start)
    for record in records:
        print(json.dumps(record_json(record), ensure_ascii=False))
    if args.token is None:
        tokens.put(args.zone, token)
    print(f"{plural(len(records), 'change')}; token {token}", file=sys.stderr)
    return 0


async def _watch(client: Cumulo, args: argparse.Namespace) -> int:
    seen = 0
    async for message in client.sync.watch(args.zones, device_id=args.device or ""):
        if message.event == sync_pb2.WATCH_EVENT_WATCHING:
            print("watching for changes (Ctrl-C stops)", file=sys.stderr, flush=True)
        elif message.event == sync_pb2.WATCH_EVENT_ZONE_CHANGED:
            print(f"{message.zone} changed", flush=True)
            seen += 1
            if args.count and seen >= args.count:
                return 0
    return 0


async def _backup_create(client: Cumulo, args: argparse.Namespace) -> int:
    root = pathlib.Path(args.dir)
    if not root.is_dir():
        fail(f"{root}: not a folder")
        return 2
    device = _device(args)
    report = await client.backups.create(root, device_id=device, device_name=device, progress=ProgressBar(f"backup of {root.name}", upload=True))
    backup = report.backup
    print(
        f"backup {backup.backup_id} of {device}: {plural(report.files, 'file')}, {human_size(backup.total_size)}; "
        f"sent {report.uploaded_files} ({human_size(report.uploaded_bytes)}), {report.reused_files} unchanged"
    )
    for pruned in report.pruned:
        print(f"removed older backup {pruned}")
    return 0


async def _backup_ls(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(args, "backups", await client.backups.list(args.device or ""), BACKUP_COLUMNS, _backup_cells)


def _backup_cells(backup: sync_pb2.Backup) -> list[str]:
    return [backup.backup_id, when(backup.created_at), backup.device_name, str(backup.entry_count), human_size(backup.total_size)]


async def _backup_show(client: Cumulo, args: argparse.Namespace) -> int:
    entries = await client.backups.entries(args.backup_id)
    return show_rows(
        args, "entries", entries, lambda entry: print(f"{human_size(entry.size):>10}  {entry.sha256[:12]}  {entry.path}"), backup_id=args.backup_id
    )


async def _backup_restore(client: Cumulo, args: argparse.Namespace) -> int:
    dest = pathlib.Path(args.dir)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        count = await client.backups.restore(args.backup_id, dest, progress=ProgressBar("restore"))
    except FileExistsError as err:
        fail(f"{err}")
        return 2
    print(f"restored {plural(count, 'file')} into {dest} (sha256 verified)")
    return 0


async def _backup_rm(client: Cumulo, args: argparse.Namespace) -> int:
    await client.backups.delete(args.backup_id)
    print(f"backup {args.backup_id} deleted")
    return 0


def add_commands(commands: Any) -> None:
    sync = commands.add_parser("sync", help="records synced between your devices (contacts, notes...)").add_subparsers(
        dest="sync_command", required=True, metavar="COMMAND"
    )
    zones = sync.add_parser("zones", help="your zones and the sync storage used")
    add_json_flag(zones)
    zones.set_defaults(run=_zones)
    push = sync.add_parser(
        "push", help="save and delete records from a JSON Lines file ('-': standard input)",
        description=RECORD_LINES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    push.add_argument("zone", help="the zone, e.g. contacts (created by its first record)")
    push.add_argument("file", help="JSON Lines, one record a line (as below); '-' reads standard input")
    push.add_argument("--atomic", action="store_true", help=f"all or nothing (at most {PUSH_BATCH} records)")
    push.add_argument("--device", help="this device's name (default: the host name)")
    push.set_defaults(run=_push)
    pull = sync.add_parser("pull", help="changes since this device's last pull, as JSON Lines")
    pull.add_argument("zone", help="the zone to pull")
    pull.add_argument("--token", help="changes after this token instead (not remembered)")
    pull.add_argument("--full", action="store_true", help="everything, from the start")
    pull.set_defaults(run=_pull)
    watch = sync.add_parser("watch", help="print each zone as it changes, until Ctrl-C")
    watch.add_argument("zones", nargs="*", help="only these zones (default: all)")
    watch.add_argument("--device", help="do not announce this device's own pushes")
    watch.add_argument("--count", type=int, default=0, help="stop after this many changes")
    watch.set_defaults(run=_watch)
    backup = commands.add_parser("backup", help="device backups: create, list, restore").add_subparsers(
        dest="backup_command", required=True, metavar="COMMAND"
    )
    create = backup.add_parser("create", help="back up a folder (unchanged files are not sent again)")
    create.add_argument("dir", help="the folder to back up")
    create.add_argument("--device", help="the device's name (default: the host name); the newest 3 per device are kept")
    create.set_defaults(run=_backup_create)
    ls = backup.add_parser("ls", help="your backups, newest first")
    ls.add_argument("--device", help="only this device's")
    add_json_flag(ls)
    ls.set_defaults(run=_backup_ls)
    show = backup.add_parser("show", help="the files of a backup")
    show.add_argument("backup_id", help="its id, as `cumulo backup ls` shows it")
    add_json_flag(show)
    show.set_defaults(run=_backup_show)
    restore = backup.add_parser("restore", help="restore a backup into an empty folder, checking every SHA-256")
    restore.add_argument("backup_id", help="its id, as `cumulo backup ls` shows it")
    restore.add_argument("dir", help="the folder to restore into (created if missing; no file in it is overwritten)")
    restore.set_defaults(run=_backup_restore)
    rm = backup.add_parser("rm", help="delete a backup (its files go when no backup needs them)")
    rm.add_argument("backup_id", help="its id, as `cumulo backup ls` shows it")
    rm.set_defaults(run=_backup_rm)
