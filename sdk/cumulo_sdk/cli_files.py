"""`cumulo files ...`, `cumulo trash ...` and `cumulo usage`: an account's files, by path.

Nothing is created, overwritten or renamed unless asked: `files put` (cli_put.py) keeps a
name already taken; a local file is not overwritten without `--force`. At a terminal the
command asks instead of refusing."""

from __future__ import annotations

import argparse
import pathlib
from typing import TYPE_CHECKING, Any

from cumulo.blob.v1 import blob_pb2
from cumulo_sdk.cli_common import add_json_flag, ask, at_terminal, fail, remote_path, show, show_table
from cumulo_sdk.cli_put import add_put_command
from cumulo_sdk.console import ProgressBar, human_size, plural, when
from cumulo_sdk.tables import Column, print_table

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

FOLDER = blob_pb2.NODE_KIND_FOLDER


NODE_COLUMNS = [Column(""), Column("SIZE", right=True), Column("MODIFIED"), Column("NAME"), Column("ID")]
TRASH_COLUMNS = [*NODE_COLUMNS[:2], Column("TRASHED"), *NODE_COLUMNS[3:]]


def node_cells(node: blob_pb2.Node, *, trashed: bool = False) -> list[str]:
    """A file or folder as `ls -l` shows it: "d" for a folder, its size, its time, its name."""
    folder = node.kind == FOLDER
    name = f"{node.name}{'/' if folder else ''}{' [blocked]' if node.blocked else ''}"
    stamp = when(node.trashed_at if trashed else node.modified_at)
    return ["d" if folder else "-", "" if folder else human_size(node.size), stamp, name, node.node_id]


def print_nodes(nodes: list[blob_pb2.Node]) -> None:
    print_table(NODE_COLUMNS, [node_cells(node) for node in nodes])


def may_write(dest: pathlib.Path, force: bool) -> bool:
    """Whether a download may write `dest`: a new file, --force, or the person says yes."""
    if dest.is_dir():
        fail(f"{dest}: is a folder; name a file to write")
        return False
    if not dest.parent.is_dir():
        fail(f"{dest.parent}: no such folder; create it first, or name a file in a folder that exists")
        return False
    if not dest.exists() or force:
        return True
    if at_terminal() and ask(f"{dest} exists. Overwrite it? [y/N]") in ("y", "yes"):
        return True
    fail(f"{dest} already exists; pass --force to overwrite it, or name another file")
    return False


async def _ls(client: Cumulo, args: argparse.Namespace) -> int:
    folder = await client.files.resolve(args.path)
    if folder is not None and folder.kind != FOLDER:
        nodes = [folder]
    else:
        nodes = await client.files.ls(folder.node_id if folder else "")
    return show_table(args, "nodes", nodes, NODE_COLUMNS, node_cells, path=remote_path(args.path))


async def _mkdir(client: Cumulo, args: argparse.Namespace) -> int:
    """Like `mkdir -p`: a folder that exists already is no failure, but it is not "created"."""
    made = await client.files.ensure_folder(args.path)
    print(f"created {made.created[-1]}" if made.created else f"{remote_path(args.path)} already exists")
    return 0


async def _get(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.remote)
    if node is None or node.kind != blob_pb2.NODE_KIND_FILE:
        fail(f"{args.remote}: not a file")
        return 2
    dest = pathlib.Path(args.local or node.name)
    if dest.is_dir():
        dest = dest / node.name
    if not may_write(dest, args.force):
        return 1
    await client.files.download(node.node_id, dest, progress=ProgressBar(node.name))
    print(f"downloaded {node.name} to {dest} (sha256 verified)")
    return 0


async def _mv(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.source)
    if node is None:
        fail("the root folder cannot move")
        return 2
    target = await client.files.resolve(args.target) if args.target.strip("/") else None
    if target is not None and target.kind == FOLDER:
        moved = await client.files.move(node.node_id, target.node_id)
    elif args.target.strip("/") and "/" not in args.target.strip("/") and target is None:
        moved = await client.files.rename(node.node_id, args.target.strip("/"))
    else:
        moved = await client.files.move(node.node_id, "")
    print(f"moved to {moved.name}")
    return 0


async def _rm(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.path)
    if node is None:
        fail("the root folder cannot be deleted")
        return 2
    await client.files.delete(node.node_id)
    print(f"moved {node.name} to the trash")
    return 0


async def _trash_ls(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(args, "nodes", await client.files.trash(), TRASH_COLUMNS, lambda node: node_cells(node, trashed=True))


async def _trash_restore(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.restore(args.node_id)
    print(f"restored {node.name}")
    return 0


async def _trash_empty(client: Cumulo, args: argparse.Namespace) -> int:
    print(f"deleted {plural(await client.files.empty_trash(), 'item')} for good")
    return 0


PLAN_COLUMNS = [Column("PLAN"), Column("NAME"), Column("STORAGE", right=True), Column("PRICE", right=True), Column("EVERY")]


def _price(minor_units: int, currency: str) -> str:
    return f"{minor_units / 100:.2f} {currency}"


async def _plans(client: Cumulo, args: argparse.Namespace) -> int:
    plans, bought = await client.files.plans(), await client.files.purchases()

    def person() -> None:
        print_table(PLAN_COLUMNS, [[p.plan_id, p.name, human_size(p.bytes), _price(p.price_minor_units, p.currency), f"{p.period_days} days"] for p in plans])
        for p in plans:
            if p.HasField("next"):
                print(f"{p.plan_id}: from {when(p.next.applies_at)}, {_price(p.next.price_minor_units, p.next.currency)} every {p.next.period_days} days")
                if p.bought_price_version and p.accepted_price_version < p.next.price_version:
                    print(f"  your renewals stay at the price you bought at until you accept: cumulo plans accept {p.plan_id}")
        if not bought:
            print("bought: nothing (the free storage)")
        for purchase in bought:
            print(f"bought: {purchase.plan_id} (+{human_size(purchase.bytes)}) until {when(purchase.ends_at)}")

    return show(args, {"plans": plans, "purchases": bought}, person)


async def _accept_price(client: Cumulo, args: argparse.Namespace) -> int:
    plans = {p.plan_id: p for p in await client.files.plans()}
    plan = plans.get(args.plan_id)
    if plan is None:
        fail(f"{args.plan_id}: no such plan (cumulo plans lists them)")
        return 2
    newest = plan.next if plan.HasField("next") else plan
    accepted = await client.files.accept_price(plan.plan_id, newest.price_version)
    print(f"accepted {accepted.plan_id}: {_price(accepted.price_minor_units, accepted.currency)} every {accepted.period_days} days, "
          f"from {when(accepted.applies_at)}; your renewals are at this price")
    return 0


async def _usage(client: Cumulo, args: argparse.Namespace) -> int:
    usage = await client.files.usage()
    reserved = f" ({human_size(usage.reserved)} reserved for uploads)" if usage.reserved else ""
    return show(args, usage, lambda: print(f"used {human_size(usage.used)} of {human_size(usage.quota)}{reserved}"))


def add_commands(commands: Any) -> None:
    files = commands.add_parser("files", help="your files and folders, by path (/photos/2026/beach.jpg)").add_subparsers(
        dest="files_command", required=True, metavar="COMMAND"
    )
    ls = files.add_parser("ls", help="list a folder (default: the root)")
    ls.add_argument("path", nargs="?", default="/", help="a folder, or a file to show alone (default: /)")
    add_json_flag(ls)
    ls.set_defaults(run=_ls)
    mkdir = files.add_parser("mkdir", help="create a folder, and its parents that are missing")
    mkdir.add_argument("path", help="the folder, e.g. /photos/2026")
    mkdir.set_defaults(run=_mkdir)
    add_put_command(files)
    get = files.add_parser("get", help="download a file, checking its SHA-256")
    get.add_argument("remote", help="the file, e.g. /photos/2026/beach.jpg")
    get.add_argument("local", nargs="?", help="where to write it: a file or a folder (default: its name, here)")
    get.add_argument("-f", "--force", action="store_true", help="overwrite the local file if it exists")
    get.set_defaults(run=_get)
    mv = files.add_parser("mv", help="move into a folder, or rename")
    mv.add_argument("source", help="the file or folder to move")
    mv.add_argument("target", help="a folder to move it into, or a new name (no slash) in the same folder")
    mv.set_defaults(run=_mv)
    rm = files.add_parser("rm", help="move a file or folder to the trash")
    rm.add_argument("path", help="the file or folder")
    rm.set_defaults(run=_rm)
    trash = commands.add_parser("trash", help="deleted files and folders: list, restore, empty").add_subparsers(
        dest="trash_command", required=True, metavar="COMMAND"
    )
    trash_ls = trash.add_parser("ls", help="list the trash")
    add_json_flag(trash_ls)
    trash_ls.set_defaults(run=_trash_ls)
    restore = trash.add_parser("restore", help="bring an item back to where it was")
    restore.add_argument("node_id", help="its id, as `cumulo trash ls` shows it")
    restore.set_defaults(run=_trash_restore)
    trash.add_parser("empty", help="delete everything in the trash for good").set_defaults(run=_trash_empty)
    plans = commands.add_parser("plans", help="the storage plans on offer, and what the account has bought")
    add_json_flag(plans)
    plans.set_defaults(run=_plans)
    accept = plans.add_subparsers(dest="plans_command", metavar="COMMAND").add_parser(
        "accept", help="accept a plan's new price: your renewals are at it from then on (until then, at the price you bought at)"
    )
    accept.add_argument("plan_id", help="the plan, as `cumulo plans` lists it")
    accept.set_defaults(run=_accept_price)
    usage = commands.add_parser("usage", help="storage used and quota")
    add_json_flag(usage)
    usage.set_defaults(run=_usage)
