"""`cumulo-admin`: operators' commands against the services' internal APIs, from the operator's
pod in the cluster (`kubectl -n cumulo exec deploy/toolbox -- cumulo-admin lifecycle report`,
the only pod holding the operator's identity) or next to `make run`. The gateway never routes
these APIs.

    cumulo-admin lifecycle status ACCOUNT          state, dates, transitions and notices
    cumulo-admin lifecycle list [--state frozen]   accounts, paged
    cumulo-admin lifecycle report                  counts per state, what is due in 7/30 days
    cumulo-admin lifecycle hold ACCOUNT --reason R legal hold: nothing is deleted until released
    cumulo-admin lifecycle release ACCOUNT --reason R
    cumulo-admin lifecycle sweep [--dry-run]       what is due now (and do it, without --dry-run)
    cumulo-admin lifecycle purges [--stuck]        deletions in progress
    cumulo-admin auth roles ACCOUNT [ROLE ...] --reason R   set an account's roles (moderator)
    cumulo-admin auth rotate-signing-key            a new token-signing key (the old verify until their tokens expire)
    cumulo-admin moderation queue|show|claim|decide|hold|release|export|verify|audit|blocklist
    cumulo-admin events dead-letters|replay ID|drop ID   events consumers gave up on (NATS)
    cumulo-admin notices terms|maintenance|show      tell every account: new terms, maintenance windows

ACCOUNT is an account id, or an e-mail address / phone number of a live account. The
moderation commands act as the moderator logged in with `cumulo login` (through the gateway,
--gateway or CUMULO_GATEWAY), so that the audit log names a person; they need the operator's
identity only to look an e-mail address or phone number up (an account id needs none).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping

import grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_platform.identity import OPERATOR, Identity, IdentityError
from cumulo_sdk.admin_events import add_admin_commands as add_events_commands
from cumulo_sdk.admin_notices import add_admin_commands as add_notices_commands
from cumulo_sdk.cli_common import add_json_flag, show, show_rows
from cumulo_sdk.cli_moderation import add_admin_commands as add_moderation_commands
from cumulo_sdk.client import DEFAULT_GATEWAY, Cumulo, TokenStore
from cumulo_sdk.console import add_transport_flags, connect_timeout, debugging, failed, home, plural, run, transport, when
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.transport import TransportError

STATES = {"active": pb.ACCOUNT_STATE_ACTIVE, "frozen": pb.ACCOUNT_STATE_FROZEN, "deleting": pb.ACCOUNT_STATE_DELETING, "deleted": pb.ACCOUNT_STATE_DELETED}


def _state(value: pb.AccountState.ValueType) -> str:
    return pb.AccountState.Name(value).removeprefix("ACCOUNT_STATE_").lower()


class Admin:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # The services take calls from identities of the cluster's internal CA only: this one
        # is the operator's (make run: var/identity/operator; Kubernetes: the toolbox pod's).
        identity = Identity.load(args.environ.get("CUMULO_IDENTITY_DIR", ""), OPERATOR)
        self.lifecycle_channel = identity.channel(args.lifecycle, "lifecycle")
        self.auth_channel = identity.channel(args.auth, "auth")
        self.lifecycle = lifecycle_pb2_grpc.LifecycleInternalServiceStub(self.lifecycle_channel)
        self.auth = auth_pb2_grpc.AuthInternalServiceStub(self.auth_channel)

    async def close(self) -> None:
        await self.lifecycle_channel.close()
        await self.auth_channel.close()

    async def account_id(self, account: str) -> str:
        if "@" in account or account.startswith("+"):
            return (await self.auth.FindAccount(auth_pb2.FindAccountRequest(login=account), timeout=10)).account_id
        return account

    def actor(self) -> str:
        named = self.args.actor or self.args.environ.get("CUMULO_ADMIN_ACTOR")
        if named:
            return named
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # a container user without a name
            user = f"uid {os.getuid()}"
        return f"{user} (cumulo-admin)"


def _print_account(account: pb.Account) -> None:
    print(f"account      {account.account_id}")
    print(f"state        {_state(account.state)}")
    print(f"last access  {when(account.last_access_at)}")
    if account.state == pb.ACCOUNT_STATE_ACTIVE:
        print(f"freeze at    {when(account.freeze_at)}")
    if account.frozen_at.seconds:
        print(f"frozen at    {when(account.frozen_at)}")
    if account.delete_at.seconds:
        print(f"delete at    {when(account.delete_at)}")
    print(f"legal hold   {'yes: ' + account.hold_reason if account.held else 'no'}")
    if account.deleted_at.seconds:
        print(f"deleted at   {when(account.deleted_at)} ({account.deletion_reason})")


async def _status(admin: Admin, args: argparse.Namespace) -> int:
    response = await admin.lifecycle.GetAccount(pb.GetAccountRequest(account_id=await admin.account_id(args.account)), timeout=10)
    return show(args, response, lambda: _print_status(response))


def _print_status(response: pb.GetAccountResponse) -> None:
    _print_account(response.account)
    if response.transitions:
        print("\ntransitions")
        for t in response.transitions:
            print(f"  {when(t.at)}  {t.from_state} -> {t.to_state}  {t.reason}")
    if response.notices:
        print("\nnotices")
        for n in response.notices:
            print(f"  {when(n.created_at)}  {n.kind:<18} {n.channel:<6} {n.status} ({plural(n.attempts, 'attempt')}, sent {when(n.sent_at)})")


async def _list(admin: Admin, args: argparse.Namespace) -> int:
    token = ""
    found: list[pb.Account] = []
    while True:
        response = await admin.lifecycle.ListAccounts(
            pb.ListAccountsRequest(state=STATES.get(args.state or "", pb.ACCOUNT_STATE_UNSPECIFIED), page_size=min(args.limit - len(found), 500), page_token=token),
            timeout=30,
        )
        found.extend(response.accounts)
        token = response.next_page_token
        if not token or len(found) >= args.limit:
            break
    return show_rows(args, "accounts", found, _print_listed)


def _print_listed(a: pb.Account) -> None:
    due = a.freeze_at if a.state == pb.ACCOUNT_STATE_ACTIVE else a.delete_at
    print(f"{a.account_id}  {_state(a.state):<8}  last access {when(a.last_access_at)}  next {when(due)}{'  HELD' if a.held else ''}")


async def _report(admin: Admin, args: argparse.Namespace) -> int:
    report = await admin.lifecycle.GetReport(pb.GetReportRequest(), timeout=30)
    return show(args, report, lambda: _print_report(report))


def _print_report(r: pb.GetReportResponse) -> None:
    print(f"active    {r.active}\nfrozen    {r.frozen}\ndeleting  {r.deleting}\ndeleted   {r.deleted}\nheld      {r.held}")
    print(f"freezes due    next 7 days: {r.freezes_next_7_days:<8} next 30 days: {r.freezes_next_30_days}")
    print(f"deletions due  next 7 days: {r.deletions_next_7_days:<8} next 30 days: {r.deletions_next_30_days}")
    print(f"stuck purges   {r.stuck_purges}")


async def _hold(admin: Admin, args: argparse.Namespace) -> int:
    held = args.lifecycle_command == "hold"
    response = await admin.lifecycle.SetLegalHold(
        pb.SetLegalHoldRequest(account_id=await admin.account_id(args.account), held=held, reason=args.reason, actor=admin.actor()),
        timeout=10,
    )
    _print_account(response.account)
    return 0


async def _sweep(admin: Admin, args: argparse.Namespace) -> int:
    response = await admin.lifecycle.Sweep(pb.SweepRequest(dry_run=args.dry_run, limit=args.limit or 0), timeout=120)

    def person() -> None:
        for action in response.actions:
            print(f"{action.account_id}  {action.action:<16} due {when(action.due_at)}")
        verb = "would do" if args.dry_run else "did"
        print(f"{verb} {plural(len(response.actions) if args.dry_run else response.done, 'action')}")

    return show(args, response, person)


async def _purges(admin: Admin, args: argparse.Namespace) -> int:
    response = await admin.lifecycle.ListPurges(pb.ListPurgesRequest(stuck_only=args.stuck), timeout=30)

    def person() -> None:
        for purge in response.purges:
            print(f"{purge.account_id}  {purge.reason}  started {when(purge.started_at)}{'  STUCK' if purge.stuck else ''}")
            for p in purge.participants:
                status = f"done {when(p.completed_at)}, {plural(p.items_deleted, 'item')}" if p.completed_at.seconds else f"waiting (asked {p.attempts}x)"
                print(f"    {p.service:<16} {status}")
        if not response.purges:
            print("no purges in progress" if not args.stuck else "no stuck purges")

    return show(args, response, person)


async def _roles(admin: Admin, args: argparse.Namespace) -> int:
    response = await admin.auth.SetAccountRoles(
        auth_pb2.SetAccountRolesRequest(account_id=await admin.account_id(args.account), roles=args.roles, reason=args.reason, actor=admin.actor()),
        timeout=10,
    )
    print(f"roles: {', '.join(response.roles) or 'none'} (in its tokens from the next login or refresh)")
    return 0


async def _rotate_signing_key(admin: Admin, args: argparse.Namespace) -> int:
    response = await admin.auth.RotateSigningKey(auth_pb2.RotateSigningKeyRequest(), timeout=10)

    def person() -> None:
        print(f"new signing key {response.key.key_id}: every service learns it now; it signs from {when(response.key.signs_from)}")
        for key in response.keys:
            state = f"retired {when(key.retired_at)}" if key.HasField("retired_at") else f"signs from {when(key.signs_from)}"
            print(f"  {key.key_id}  {state}")
        print("older keys verify until the tokens they signed have expired, then retire")

    return show(args, response, person)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


ROLES = ("moderator",)


def _role(text: str) -> str:
    if text not in ROLES:
        raise argparse.ArgumentTypeError(f"unknown role {text!r} (known: {', '.join(ROLES)})")
    return text


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cumulo-admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifecycle", default=environ.get("CUMULO_LIFECYCLE_TARGET", "127.0.0.1:7103"), help="lifecycle's internal address")
    parser.add_argument("--auth", default=environ.get("CUMULO_AUTH_TARGET", "127.0.0.1:7101"), help="auth's internal address")
    parser.add_argument("--actor", help="who is acting, for the audit trail (default: the OS user)")
    services = parser.add_subparsers(dest="service", required=True, metavar="SERVICE")
    lifecycle = services.add_parser("lifecycle", help="account states, holds, sweeps, purges").add_subparsers(
        dest="lifecycle_command", required=True, metavar="COMMAND"
    )
    account_help = "an account id, or the e-mail address or phone number of a live account"
    status = lifecycle.add_parser("status", help="one account: state, dates, transitions, notices")
    status.add_argument("account", help=account_help)
    add_json_flag(status)
    status.set_defaults(run=_status)
    listing = lifecycle.add_parser("list", help="accounts, optionally in one state")
    listing.add_argument("--state", choices=sorted(STATES), help="only accounts in this state")
    listing.add_argument("--limit", type=_positive, default=100, help="at most this many accounts (default: 100)")
    add_json_flag(listing)
    listing.set_defaults(run=_list)
    report = lifecycle.add_parser("report", help="counts per state, transitions due soon, stuck purges")
    add_json_flag(report)
    report.set_defaults(run=_report)
    for name, text in (("hold", "place a legal hold: nothing of the account is deleted"), ("release", "release a legal hold")):
        hold = lifecycle.add_parser(name, help=text)
        hold.add_argument("account", help=account_help)
        hold.add_argument("--reason", required=True, help="recorded with the hold (e.g. the authority's request)")
        hold.set_defaults(run=_hold)
    sweep = lifecycle.add_parser("sweep", help="carry out what is due now")
    sweep.add_argument("--dry-run", action="store_true", help="only show what would happen")
    sweep.add_argument("--limit", type=_positive, help="at most this many actions")
    add_json_flag(sweep)
    sweep.set_defaults(run=_sweep)
    purges = lifecycle.add_parser("purges", help="deletions in progress")
    purges.add_argument("--stuck", action="store_true", help="only those with a silent service")
    add_json_flag(purges)
    purges.set_defaults(run=_purges)
    auth = services.add_parser("auth", help="accounts' roles, token-signing keys").add_subparsers(dest="auth_command", required=True, metavar="COMMAND")
    roles = auth.add_parser("roles", help="set an account's roles (none given: withdraw them all)")
    roles.add_argument("account", help=account_help)
    # Not `choices`: argparse (3.11) refuses an empty list against them, and none is allowed here.
    roles.add_argument("roles", nargs="*", type=_role, metavar="ROLE", help=f"the roles it has from now on: {', '.join(ROLES)}")
    roles.add_argument("--reason", required=True, help="recorded in the audit trail")
    roles.set_defaults(run=_roles)
    rotate = auth.add_parser("rotate-signing-key", help="add a new token-signing key (the old ones verify until their tokens expire)")
    add_json_flag(rotate)
    rotate.set_defaults(run=_rotate_signing_key)
    parser.add_argument("--gateway", default=environ.get("CUMULO_GATEWAY", DEFAULT_GATEWAY), help="the gateway, for moderation commands")
    add_transport_flags(parser, environ)
    add_moderation_commands(services)
    add_events_commands(services)
    add_notices_commands(services)
    parser.set_defaults(environ=environ)
    return parser


async def _looked_up(args: argparse.Namespace) -> int | None:
    """A moderation command's account given as an e-mail address or phone number, replaced by
    its id (asked of auth as the operator); an exit code when that fails. An account id needs
    no identity: a moderator at their own machine, with only their login, passes ids."""
    account = getattr(args, "account_id", None)
    if not account or not ("@" in account or account.startswith("+")):
        return None
    try:
        admin = Admin(args)
    except IdentityError as err:
        print(f"cumulo-admin: {err} (or give the account's id instead of {account})", file=sys.stderr)
        return 2
    try:
        args.account_id = await admin.account_id(account)
    except grpc.aio.AioRpcError as exc:
        return failed("cumulo-admin", *_unreachable(admin, CumuloRpcError.from_rpc_error(exc)))
    finally:
        await admin.close()
    return None


async def _as_moderator(args: argparse.Namespace) -> int:
    """Moderation goes through the gateway as the logged-in moderator."""
    code = await _looked_up(args)
    if code is not None:
        return code
    try:
        client = Cumulo(
            args.gateway, store=TokenStore(home(args.environ) / "credentials.json"),
            connect_timeout=connect_timeout(args.environ), transport=transport(args),
        )
    except TransportError as err:
        return failed("cumulo-admin", err)
    async with client:
        if client.store.tokens is None:
            print("cumulo-admin: log in first as a moderator: cumulo login you@example.com", file=sys.stderr)
            return 2
        try:
            return await args.run(client, args)
        except CumuloRpcError as err:
            return failed("cumulo-admin", err)


def _unreachable(admin: Admin, error: CumuloRpcError) -> tuple[CumuloRpcError, str]:
    """A service's internal address that does not answer, named with where it is set."""
    if error.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or error.reason:
        return error, ""
    not_connected = (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.CONNECTING)
    for name, target, flag, variable, channel in (
        ("lifecycle", admin.args.lifecycle, "--lifecycle", "CUMULO_LIFECYCLE_TARGET", admin.lifecycle_channel),
        ("auth", admin.args.auth, "--auth", "CUMULO_AUTH_TARGET", admin.auth_channel),
    ):
        if channel.get_state() in not_connected:
            unreachable = CumuloRpcError(grpc.StatusCode.UNAVAILABLE, f"cannot reach the {name} service at {target}", reason="SERVICE_UNREACHABLE")
            return unreachable, f"Is `make run` going? Set {flag} or {variable} to its internal address."
    return error, ""


async def _main(args: argparse.Namespace) -> int:
    if args.service == "moderation":
        return await _as_moderator(args)
    try:
        admin = Admin(args)
    except IdentityError as err:
        print(f"cumulo-admin: {err}", file=sys.stderr)
        return 2
    try:
        return await args.run(admin, args)
    except grpc.aio.AioRpcError as exc:
        return failed("cumulo-admin", *_unreachable(admin, CumuloRpcError.from_rpc_error(exc)))
    finally:
        await admin.close()


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """`environ`, the process's environment by default, is where the CUMULO_* settings are read
    (the tests run commands in-process, each with its own)."""
    environ = os.environ if environ is None else environ
    args = build_parser(environ).parse_args(argv)
    return run("cumulo-admin", lambda: _main(args), debug=debugging(environ))


if __name__ == "__main__":
    sys.exit(main())
