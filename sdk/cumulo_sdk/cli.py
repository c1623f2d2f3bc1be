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
import getpass
import os
import pathlib
import platform
import sys

from cumulo.auth.v1 import auth_pb2
from cumulo_sdk.client import DEFAULT_CLIENT_ID, DEFAULT_GATEWAY, Cumulo, TokenStore
from cumulo_sdk.errors import CumuloRpcError


def _home() -> pathlib.Path:
    configured = os.environ.get("CUMULO_HOME")
    return pathlib.Path(configured) if configured else pathlib.Path.home() / ".config" / "cumulo"


def _read_password(prompt: str, *, confirm: bool = False) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat the password: ") != password:
        raise SystemExit("the passwords differ")
    return password


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
    password = _read_password("Choose a password: ", confirm=True)
    account = await client.register(
        email=args.email or "", phone=args.phone or "", password=password, birth_date=born, terms_version=version
    )
    print(f"account {account.account_id} created for {account.email or account.phone} (terms {version})")
    return 0


async def _login(client: Cumulo, args: argparse.Namespace) -> int:
    password = _read_password("Password: ")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cumulo", description="cumulo personal cloud")
    parser.add_argument("--gateway", default=os.environ.get("CUMULO_GATEWAY", DEFAULT_GATEWAY), help="host:port of the gateway")
    parser.add_argument("--client-id", default=os.environ.get("CUMULO_CLIENT_ID", DEFAULT_CLIENT_ID), help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    signup = commands.add_parser("signup", help="create an account (adults; a guardian creates a minor's)")
    signup.add_argument("--email")
    signup.add_argument("--phone", help="E.164, e.g. +8613800138000")
    signup.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
    signup.add_argument("--accept-terms", action="store_true", help="you accept the current terms of service")
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
    return parser


async def _main(args: argparse.Namespace) -> int:
    store = TokenStore(_home() / "credentials.json")
    async with Cumulo(args.gateway, client_id=args.client_id, store=store) as client:
        try:
            return await args.run(client, args)
        except CumuloRpcError as err:
            print(f"cumulo: {err}", file=sys.stderr)
            if err.retry_after_seconds:
                print(f"cumulo: try again in {int(err.retry_after_seconds)} s", file=sys.stderr)
            return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
