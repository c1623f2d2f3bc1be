"""The `cumulo` command.

    cumulo signup --email you@example.com --birth-date 1990-05-17 --accept-terms
    cumulo login you@example.com
    cumulo whoami | sessions | logout

Passwords come from a prompt, or from the first line of standard input when it is not a
terminal; never from a flag. The session's refresh token lives in a 0600 file
($CUMULO_HOME/credentials.json, default ~/.config/cumulo) and access tokens are refreshed
silently. --gateway or CUMULO_GATEWAY chooses the endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import pathlib
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cumulo.auth.v1 import auth_pb2
from cumulo.blob.v1 import blob_pb2
from cumulo.lifecycle.v1 import lifecycle_pb2
from cumulo_sdk.cli_devices import add_commands as add_device_commands
from cumulo_sdk.cli_moderation import add_commands as add_report_commands
from cumulo_sdk.cli_sync import add_commands as add_sync_commands
from cumulo_sdk.client import DEFAULT_CLIENT_ID, DEFAULT_GATEWAY, Cumulo, TokenStore
from cumulo_sdk.console import ProgressBar, home, human_size, parse_span, read_password
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.files import IntegrityError


def _status(account: auth_pb2.Account) -> str:
    return auth_pb2.AccountStatus.Name(account.status).removeprefix("ACCOUNT_STATUS_").lower()


async def _signup(client: Cumulo, args: argparse.Namespace) -> int:
    try:
        born = dt.date.fromisoformat(args.birth_date)
    except ValueError:
        print("cumulo: --birth-date must be YYYY-MM-DD", file=sys.stderr)
        return 2
    version = await client.terms_version()
    if not args.accept_terms:
        print(f"cumulo: read the terms of service (version {version}) and pass --accept-terms", file=sys.stderr)
        return 2
    password = read_password("Choose a password: ", confirm=True)
    account = await client.register(
        email=args.email or "", phone=args.phone or "", password=password, birth_date=born, terms_version=version,
        locale=args.locale or "",
    )
    print(f"account {account.account_id} created for {account.email or account.phone} (terms {version})")
    return 0


async def _login(client: Cumulo, args: argparse.Namespace) -> int:
    password = read_password("Password: ")
    account = await client.login(args.login, password, device_name=args.device_name or platform.node())
    print(f"logged in as {account.email or account.phone}")
    return 0


async def _whoami(client: Cumulo, args: argparse.Namespace) -> int:
    response = await client.whoami()
    account = response.account
    print(f"account   {account.account_id}")
    if account.email:
        print(f"email     {account.email}")
    if account.phone:
        print(f"phone     {account.phone}")
    print(f"status    {_status(account)}")
    print(f"minor     {'yes' if account.minor else 'no'}")
    print(f"terms     {account.accepted_terms_version} (current {response.current_terms_version})")
    return 0


def _when(stamp: Any) -> str:
    return stamp.ToDatetime(tzinfo=dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if stamp.seconds else "-"


def print_lifecycle_account(account: lifecycle_pb2.Account) -> None:
    print(f"state        {lifecycle_pb2.AccountState.Name(account.state).removeprefix('ACCOUNT_STATE_').lower()}")
    print(f"last use     {_when(account.last_access_at)}")
    if account.state == lifecycle_pb2.ACCOUNT_STATE_ACTIVE:
        print(f"freezes on   {_when(account.freeze_at)} if unused until then")
    if account.state == lifecycle_pb2.ACCOUNT_STATE_FROZEN:
        print(f"frozen at    {_when(account.frozen_at)}")
        print(f"deleted at   {_when(account.delete_at)} unless used before (any use, or `cumulo account reactivate`)")
    if account.held:
        print(f"legal hold   {account.hold_reason}")
    if account.deleted_at.seconds:
        print(f"deleted at   {_when(account.deleted_at)} ({account.deletion_reason})")


async def _account_state(client: Cumulo, args: argparse.Namespace) -> int:
    print_lifecycle_account(await client.account_state())
    return 0


async def _account_reactivate(client: Cumulo, args: argparse.Namespace) -> int:
    if args.link_token:
        await client.reactivate_with_link(args.link_token)
        print("the account is active again")
        return 0
    print_lifecycle_account(await client.reactivate())
    return 0


async def _sessions(client: Cumulo, args: argparse.Namespace) -> int:
    for session in await client.sessions():
        marker = "*" if session.current else " "
        last = session.last_used_at.ToDatetime().strftime("%Y-%m-%d %H:%M")
        print(f"{marker} {session.session_id}  {session.client_id:<12} {session.device_name or '-':<20} last used {last} UTC")
    return 0


async def _revoke(client: Cumulo, args: argparse.Namespace) -> int:
    await client.revoke_session(args.session_id)
    print(f"session {args.session_id} revoked")
    return 0


async def _logout(client: Cumulo, args: argparse.Namespace) -> int:
    if client.store.tokens is None:
        print("not logged in")
        return 0
    await client.logout()
    print("logged out")
    return 0


def _print_node(node: blob_pb2.Node) -> None:
    kind = "d" if node.kind == blob_pb2.NODE_KIND_FOLDER else "-"
    when = node.modified_at.ToDatetime().strftime("%Y-%m-%d %H:%M")
    size = "" if kind == "d" else human_size(node.size)
    flag = " [blocked]" if node.blocked else ""
    print(f"{kind} {size:>10}  {when}  {node.name}{'/' if kind == 'd' else ''}{flag}  {node.node_id}")


async def _files_ls(client: Cumulo, args: argparse.Namespace) -> int:
    folder = await client.files.resolve(args.path)
    if folder is not None and folder.kind == blob_pb2.NODE_KIND_FILE:
        _print_node(folder)
        return 0
    for node in await client.files.ls(folder.node_id if folder else ""):
        _print_node(node)
    return 0


async def _files_mkdir(client: Cumulo, args: argparse.Namespace) -> int:
    await client.files.makedirs(args.path)
    print(f"created {args.path}")
    return 0


async def _files_put(client: Cumulo, args: argparse.Namespace) -> int:
    local = pathlib.Path(args.local)
    if not local.is_file():
        print(f"cumulo: {local}: no such file", file=sys.stderr)
        return 2
    folder_id = await client.files.makedirs(args.folder)
    node = await client.files.upload(local, parent_id=folder_id, progress=ProgressBar(local.name))
    print(f"uploaded {node.name} ({human_size(node.size)}, sha256 {node.sha256})")
    return 0


async def _files_get(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.remote)
    if node is None or node.kind != blob_pb2.NODE_KIND_FILE:
        print(f"cumulo: {args.remote}: not a file", file=sys.stderr)
        return 2
    dest = pathlib.Path(args.local or node.name)
    if dest.is_dir():
        dest = dest / node.name
    await client.files.download(node.node_id, dest, progress=ProgressBar(node.name))
    print(f"downloaded {node.name} to {dest} (sha256 verified)")
    return 0


async def _files_mv(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.source)
    if node is None:
        print("cumulo: the root folder cannot move", file=sys.stderr)
        return 2
    target = await client.files.resolve(args.target) if args.target.strip("/") else None
    if target is not None and target.kind == blob_pb2.NODE_KIND_FOLDER:
        moved = await client.files.move(node.node_id, target.node_id)
    elif args.target.strip("/") and "/" not in args.target.strip("/") and target is None:
        moved = await client.files.rename(node.node_id, args.target.strip("/"))
    else:
        moved = await client.files.move(node.node_id, "")
    print(f"moved to {moved.name}")
    return 0


async def _files_rm(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.path)
    if node is None:
        print("cumulo: the root folder cannot be deleted", file=sys.stderr)
        return 2
    await client.files.delete(node.node_id)
    print(f"moved {node.name} to the trash")
    return 0


async def _trash_ls(client: Cumulo, args: argparse.Namespace) -> int:
    for node in await client.files.trash():
        _print_node(node)
    return 0


async def _trash_restore(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.restore(args.node_id)
    print(f"restored {node.name}")
    return 0


async def _trash_empty(client: Cumulo, args: argparse.Namespace) -> int:
    print(f"deleted {await client.files.empty_trash()} items for good")
    return 0


async def _share_create(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.path)
    if node is None:
        print("cumulo: the root folder cannot be shared", file=sys.stderr)
        return 2
    password = read_password("Link password (empty for none): ") if args.password else ""
    expires = time.time() + parse_span(args.expires_in, "--expires-in") if args.expires_in else None
    link = await client.files.share(node.node_id, expires_at=expires, password=password)
    print(f"link {link.link_id} to {link.name}")
    print(f"  anyone with it: cumulo share get {link.token}")
    return 0


async def _share_ls(client: Cumulo, args: argparse.Namespace) -> int:
    for link in await client.files.links():
        expires = link.expires_at.ToDatetime().strftime("%Y-%m-%d %H:%M") if link.HasField("expires_at") else "never"
        lock = " (password)" if link.password_protected else ""
        print(f"{link.link_id}  {link.name}{lock}  expires {expires}")
    return 0


async def _share_revoke(client: Cumulo, args: argparse.Namespace) -> int:
    await client.files.revoke_link(args.link_id)
    print(f"link {args.link_id} revoked")
    return 0


async def _save_shared(
    opened: Any, name: str | None, dest: str | None, download: Callable[[str, pathlib.Path, ProgressBar], Awaitable[Any]]
) -> int:
    """A shared file (or a named file of a shared folder) to disk; a folder alone is listed."""
    target = opened.root
    if name:
        target = next((c for c in opened.children if c.name == name), None)
        if target is None:
            print(f"cumulo: {name}: not in this shared folder", file=sys.stderr)
            return 2
    elif target.kind == blob_pb2.NODE_KIND_FOLDER:
        print(f"{target.name}/ (shared folder)")
        for child in opened.children:
            _print_node(child)
        return 0
    path = pathlib.Path(dest or target.name)
    await download("" if target is opened.root else target.node_id, path, ProgressBar(target.name))
    print(f"downloaded {target.name} to {path} (sha256 verified)")
    return 0


async def _share_get(client: Cumulo, args: argparse.Namespace) -> int:
    token = args.link.rsplit("/", 1)[-1]
    password = read_password("Link password: ") if args.password else ""
    opened = await client.files.open_link(token, password)
    return await _save_shared(
        opened, args.name, args.dest,
        lambda node_id, path, bar: client.files.download_link(token, path, password=password, node_id=node_id, progress=bar),
    )


async def _share_user(client: Cumulo, args: argparse.Namespace) -> int:
    node = await client.files.resolve(args.path)
    if node is None:
        print("cumulo: the root folder cannot be shared", file=sys.stderr)
        return 2
    share = await client.files.share_with(node.node_id, args.recipient)
    print(f"shared {share.name} with {share.recipient} (share {share.share_id}, read-only)")
    return 0


async def _share_inbox(client: Cumulo, args: argparse.Namespace) -> int:
    for share in await client.files.shared_with_me():
        print(f"{share.share_id}  {share.name}")
    return 0


async def _share_fetch(client: Cumulo, args: argparse.Namespace) -> int:
    opened = await client.files.open_shared(args.share_id)
    return await _save_shared(
        opened, args.name, args.dest,
        lambda node_id, path, bar: client.files.download_shared(args.share_id, path, node_id=node_id, progress=bar),
    )


async def _usage(client: Cumulo, args: argparse.Namespace) -> int:
    usage = await client.files.usage()
    print(f"used {human_size(usage.used)} of {human_size(usage.quota)}" + (f" ({human_size(usage.reserved)} reserved for uploads)" if usage.reserved else ""))
    return 0


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cumulo", description="cumulo personal cloud")
    parser.add_argument("--gateway", default=environ.get("CUMULO_GATEWAY", DEFAULT_GATEWAY), help="host:port of the gateway")
    parser.add_argument("--client-id", default=environ.get("CUMULO_CLIENT_ID", DEFAULT_CLIENT_ID), help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    signup = commands.add_parser("signup", help="create an account (adults; a guardian creates a minor's)")
    signup.add_argument("--email")
    signup.add_argument("--phone", help="E.164, e.g. +8613800138000")
    signup.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
    signup.add_argument("--accept-terms", action="store_true", help="you accept the current terms of service")
    signup.add_argument("--locale", choices=["zh-CN", "en"], help="the language of notices (default zh-CN)")
    signup.set_defaults(run=_signup)
    login = commands.add_parser("login", help="log in; the session is kept in a 0600 file")
    login.add_argument("login", help="e-mail address or phone number")
    login.add_argument("--device-name")
    login.set_defaults(run=_login)
    commands.add_parser("whoami", help="show the logged-in account").set_defaults(run=_whoami)
    commands.add_parser("sessions", help="list the account's sessions").set_defaults(run=_sessions)
    revoke = commands.add_parser("revoke-session", help="end one of the account's sessions")
    revoke.add_argument("session_id")
    revoke.set_defaults(run=_revoke)
    commands.add_parser("logout", help="end this session").set_defaults(run=_logout)
    account = commands.add_parser("account", help="your account's state: active, frozen, deleted").add_subparsers(
        dest="account_command", required=True
    )
    account.add_parser("state", help="state, freeze date, deletion date (asking does not reactivate)").set_defaults(
        run=_account_state
    )
    reactivate = account.add_parser("reactivate", help="bring a frozen account back")
    reactivate.add_argument("--link-token", help="the token from a notice's link (no login needed)")
    reactivate.set_defaults(run=_account_reactivate)

    files = commands.add_parser("files", help="your files and folders").add_subparsers(dest="files_command", required=True)
    ls = files.add_parser("ls", help="list a folder (default: the root)")
    ls.add_argument("path", nargs="?", default="/")
    ls.set_defaults(run=_files_ls)
    mkdir = files.add_parser("mkdir", help="create a folder (and its parents)")
    mkdir.add_argument("path")
    mkdir.set_defaults(run=_files_mkdir)
    put = files.add_parser("put", help="upload a file; run again to resume an interrupted upload")
    put.add_argument("local")
    put.add_argument("folder", nargs="?", default="/")
    put.set_defaults(run=_files_put)
    get = files.add_parser("get", help="download a file, checking its SHA-256")
    get.add_argument("remote")
    get.add_argument("local", nargs="?")
    get.set_defaults(run=_files_get)
    mv = files.add_parser("mv", help="move into a folder, or rename")
    mv.add_argument("source")
    mv.add_argument("target")
    mv.set_defaults(run=_files_mv)
    rm = files.add_parser("rm", help="move to the trash")
    rm.add_argument("path")
    rm.set_defaults(run=_files_rm)
    trash = commands.add_parser("trash", help="deleted items").add_subparsers(dest="trash_command", required=True)
    trash.add_parser("ls", help="list the trash").set_defaults(run=_trash_ls)
    restore = trash.add_parser("restore", help="bring an item back")
    restore.add_argument("node_id")
    restore.set_defaults(run=_trash_restore)
    trash.add_parser("empty", help="delete everything in the trash for good").set_defaults(run=_trash_empty)
    commands.add_parser("usage", help="storage used and quota").set_defaults(run=_usage)
    share = commands.add_parser("share", help="links to your files").add_subparsers(dest="share_command", required=True)
    create = share.add_parser("create", help="make a link anyone with it can open")
    create.add_argument("path")
    create.add_argument("--expires-in", help="e.g. 30m, 12h, 7d")
    create.add_argument("--password", action="store_true", help="ask for a link password")
    create.set_defaults(run=_share_create)
    share.add_parser("ls", help="your live links").set_defaults(run=_share_ls)
    revoke_link = share.add_parser("revoke", help="turn a link off")
    revoke_link.add_argument("link_id")
    revoke_link.set_defaults(run=_share_revoke)
    get_link = share.add_parser("get", help="open a link and download it (no login needed)")
    get_link.add_argument("link")
    get_link.add_argument("dest", nargs="?")
    get_link.add_argument("--name", help="a file in a shared folder")
    get_link.add_argument("--password", action="store_true", help="the link has a password")
    get_link.set_defaults(run=_share_get)
    with_user = share.add_parser("user", help="share read-only with another cumulo user")
    with_user.add_argument("path")
    with_user.add_argument("recipient", help="their e-mail address or phone number")
    with_user.set_defaults(run=_share_user)
    share.add_parser("inbox", help="what others share with you").set_defaults(run=_share_inbox)
    fetch = share.add_parser("fetch", help="download something shared with you")
    fetch.add_argument("share_id")
    fetch.add_argument("dest", nargs="?")
    fetch.add_argument("--name", help="a file in a shared folder")
    fetch.set_defaults(run=_share_fetch)
    add_sync_commands(commands)
    add_device_commands(commands)
    add_report_commands(commands)
    parser.set_defaults(environ=environ)
    return parser


async def _main(args: argparse.Namespace) -> int:
    store = TokenStore(home(args.environ) / "credentials.json")
    async with Cumulo(args.gateway, client_id=args.client_id, store=store, pending_uploads=home(args.environ) / "uploads.json") as client:
        try:
            return await args.run(client, args)
        except IntegrityError as err:
            print(f"cumulo: {err}", file=sys.stderr)
            return 1
        except CumuloRpcError as err:
            print(f"cumulo: {err}", file=sys.stderr)
            if err.retry_after_seconds:
                print(f"cumulo: try again in {int(err.retry_after_seconds)} s", file=sys.stderr)
            return 1


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """`environ`, the process's environment by default, is where the CUMULO_* settings are read
    (the tests run commands in-process, each with its own)."""
    args = build_parser(os.environ if environ is None else environ).parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
