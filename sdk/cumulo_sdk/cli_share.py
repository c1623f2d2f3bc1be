"""`cumulo share ...`: links anyone can open, read-only shares with other cumulo users, and
what others share with you. Downloads, like `files get`, do not overwrite a local file
without --force (at a terminal, they ask)."""

from __future__ import annotations

import argparse
import pathlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from cumulo.blob.v1 import blob_pb2
from cumulo_sdk.cli_common import add_json_flag, fail, show_table
from cumulo_sdk.cli_files import may_write, print_nodes
from cumulo_sdk.console import ProgressBar, parse_span, read_password, when
from cumulo_sdk.tables import Column

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo


async def _create(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.path)
    if node is None:
        fail("the root folder cannot be shared")
        return 2
    password = read_password("Link password (empty for none): ") if args.password else ""
    expires = time.time() + parse_span(args.expires_in, "--expires-in") if args.expires_in else None
    link = await client.files.share(node.node_id, expires_at=expires, password=password)
    print(f"link {link.link_id} to {link.name}")
    print(f"  anyone with it: cumulo share get {link.token}")
    return 0


LINK_COLUMNS = [Column("LINK"), Column("NAME"), Column("EXPIRES")]
INBOX_COLUMNS = [Column("SHARE"), Column("NAME")]


async def _ls(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(args, "links", await client.files.links(), LINK_COLUMNS, _link_cells)


def _link_cells(link: blob_pb2.ShareLink) -> list[str]:
    expires = when(link.expires_at) if link.HasField("expires_at") else "never"
    lock = " (password)" if link.password_protected else ""
    return [link.link_id, link.name + lock, expires]


async def _revoke(client: Cumulo, args: argparse.Namespace) -> int:
    await client.files.revoke_link(args.link_id)
    print(f"link {args.link_id} revoked")
    return 0


async def _save_shared(
    opened: Any, args: argparse.Namespace, download: Callable[[str, pathlib.Path, ProgressBar], Awaitable[Any]]
) -> int:
    """A shared file (or a named file of a shared folder) to disk; a folder alone is listed."""
    target = opened.root
    if args.name:
        target = next((c for c in opened.children if c.name == args.name), None)
        if target is None:
            fail(f"{args.name}: not in this shared folder")
            return 2
    elif target.kind == blob_pb2.NODE_KIND_FOLDER:
        print(f"{target.name}/ (shared folder)")
        print_nodes(list(opened.children))
        return 0
    path = pathlib.Path(args.dest or target.name)
    if path.is_dir():
        path = path / target.name
    if not may_write(path, args.force):
        return 1
    await download("" if target is opened.root else target.node_id, path, ProgressBar(target.name))
    print(f"downloaded {target.name} to {path} (sha256 verified)")
    return 0


async def _get(client: Cumulo, args: argparse.Namespace) -> int:
    token = args.link.rsplit("/", 1)[-1]
    password = read_password("Link password: ") if args.password else ""
    opened = await client.files.open_link(token, password)
    return await _save_shared(
        opened, args,
        lambda node_id, path, bar: client.files.download_link(token, path, password=password, node_id=node_id, progress=bar),
    )


async def _user(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.path)
    if node is None:
        fail("the root folder cannot be shared")
        return 2
    share = await client.files.share_with(node.node_id, args.recipient)
    print(f"shared {share.name} with {share.recipient} (share {share.share_id}, read-only)")
    return 0


async def _inbox(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(args, "shares", await client.files.shared_with_me(), INBOX_COLUMNS, lambda share: [share.share_id, share.name])


async def _fetch(client: Cumulo, args: argparse.Namespace) -> int:
    opened = await client.files.open_shared(args.share_id)
    return await _save_shared(
        opened, args,
        lambda node_id, path, bar: client.files.download_shared(args.share_id, path, node_id=node_id, progress=bar),
    )


def _download_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", nargs="?", help="where to write the file: a file or a folder (default: its name, here)")
    parser.add_argument("--name", help="the file to download, when what is shared is a folder")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite the local file if it exists")


def add_commands(commands: Any) -> None:
    share = commands.add_parser("share", help="share by link or with other users; what others share with you").add_subparsers(
        dest="share_command", required=True, metavar="COMMAND"
    )
    create = share.add_parser("create", help="make a link anyone with it can open")
    create.add_argument("path", help="the file or folder to share")
    create.add_argument("--expires-in", help="the link stops working after this long: e.g. 30m, 12h, 7d (default: never)")
    create.add_argument("--password", action="store_true", help="ask for a password the link will need")
    create.set_defaults(run=_create)
    ls = share.add_parser("ls", help="your live links")
    add_json_flag(ls)
    ls.set_defaults(run=_ls)
    revoke = share.add_parser("revoke", help="turn a link off")
    revoke.add_argument("link_id", help="its id, as `cumulo share ls` shows it")
    revoke.set_defaults(run=_revoke)
    get = share.add_parser("get", help="open a link and download what it shares (no login needed)")
    get.add_argument("link", help="the link, or its token (put -- before a token that begins with -)")
    _download_options(get)
    get.add_argument("--password", action="store_true", help="the link has a password: ask for it")
    get.set_defaults(run=_get)
    user = share.add_parser("user", help="share read-only with another cumulo user")
    user.add_argument("path", help="the file or folder to share")
    user.add_argument("recipient", help="their e-mail address or phone number")
    user.set_defaults(run=_user)
    inbox = share.add_parser("inbox", help="what others share with you")
    add_json_flag(inbox)
    inbox.set_defaults(run=_inbox)
    fetch = share.add_parser("fetch", help="download something shared with you")
    fetch.add_argument("share_id", help="its id, as `cumulo share inbox` shows it")
    _download_options(fetch)
    fetch.set_defaults(run=_fetch)
