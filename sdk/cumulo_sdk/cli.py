"""The `cumulo` command.

    cumulo signup --email you@example.com --birth-date 1990-05-17 --accept-terms
    cumulo login you@example.com
    cumulo whoami | sessions | logout
    cumulo reset-password you@example.com [--code CODE]
    cumulo account state | reactivate | guardians | revoke-guardian
    cumulo account contacts | verify email [--code CODE] | set-contact phone +8613800138000
    cumulo account change-password | accept-terms | cancel --delete-everything | two-step enable
    cumulo account create-minor --email … --birth-date … --guardian-consent | minors

Passwords come from a prompt, or from the first line of standard input when it is not a
terminal; never from a flag. The session's refresh token lives in a 0600 file
($CUMULO_HOME/credentials.json, default ~/.config/cumulo) and access tokens are refreshed
silently. --gateway or CUMULO_GATEWAY chooses the endpoint.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from collections.abc import Mapping

import grpc

from cumulo.auth.v1 import auth_pb2
from cumulo.lifecycle.v1 import lifecycle_pb2
from cumulo_sdk.cli_common import add_json_flag, at_terminal, fail, show, show_table
from cumulo_sdk.cli_devices import add_commands as add_device_commands
from cumulo_sdk.cli_files import add_commands as add_file_commands
from cumulo_sdk.cli_moderation import add_commands as add_report_commands
from cumulo_sdk.cli_share import add_commands as add_share_commands
from cumulo_sdk.cli_sync import add_commands as add_sync_commands
from cumulo_sdk.cli_takeout import add_commands as add_takeout_commands
from cumulo_sdk.client import DEFAULT_CLIENT_ID, DEFAULT_GATEWAY, Cumulo, TokenStore
from cumulo_sdk.console import add_transport_flags, connect_timeout, debugging, failed, home, read_password, run, transport, when
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.files import IntegrityError
from cumulo_sdk.tables import Column
from cumulo_sdk.transport import TransportError

# At a terminal a refused password may be chosen again, this many times in all.
PASSWORD_TRIES = 3


def _status(account: auth_pb2.Account) -> str:
    return auth_pb2.AccountStatus.Name(account.status).removeprefix("ACCOUNT_STATUS_").lower()


async def _new_password(client: Cumulo, args: argparse.Namespace) -> str:
    """A password the service's rule accepts, asked for a second time only once it does. The
    service judges (Register judges again); one too old to know the check is not asked."""
    tries = PASSWORD_TRIES if at_terminal() else 1
    for attempt in range(1, tries + 1):
        password = read_password("Choose a password: ")
        request = auth_pb2.CheckNewPasswordRequest(password=password, email=args.email or "", phone=args.phone or "")
        try:
            await client.call(client.auth.CheckNewPassword, request, authenticated=False)
        except CumuloRpcError as err:
            if err.code == grpc.StatusCode.UNIMPLEMENTED:
                pass
            elif err.code != grpc.StatusCode.INVALID_ARGUMENT or attempt == tries:
                raise
            else:
                fail(f"that password cannot be used: it {err.message.removeprefix('password: ')}")
                continue
        if at_terminal() and read_password("Repeat the password: ") != password:
            raise SystemExit("cumulo: the passwords differ; nothing was created, run signup again")
        return password
    raise AssertionError("unreachable")


async def _signup(client: Cumulo, args: argparse.Namespace) -> int:
    try:
        born = dt.date.fromisoformat(args.birth_date)
    except ValueError:
        fail("--birth-date must be YYYY-MM-DD")
        return 2
    version = await client.terms_version()
    if not args.accept_terms:
        fail(f"read the terms of service (version {version}; `cumulo terms` shows them), then pass --accept-terms")
        return 2
    password = await _new_password(client, args)
    account = await client.register(
        email=args.email or "", phone=args.phone or "", password=password, birth_date=born, terms_version=version,
        locale=args.locale or "",
    )
    print(f"account {account.account_id} created for {account.email or account.phone} (terms {version})")
    return 0


async def _terms(client: Cumulo, args: argparse.Namespace) -> int:
    terms = await client.call(client.auth.GetTerms, auth_pb2.GetTermsRequest(), authenticated=False)

    def person() -> int:
        if not terms.text:  # a service older than the text
            fail(f"this service names its terms (version {terms.version}) but does not serve their text; ask its operator")
            return 1
        print(terms.text.rstrip("\n"))
        return 0

    return show(args, terms, person)


async def _login(client: Cumulo, args: argparse.Namespace) -> int:
    password = read_password("Password: ")
    device = args.device_name or platform.node()
    try:
        account = await client.login(args.login, password, device_name=device, second_factor=args.code or "")
    except CumuloRpcError as err:
        if err.reason != "SECOND_FACTOR_REQUIRED" or not at_terminal():
            raise
        code = read_password("Code from your authenticator app (or a recovery code): ").strip()
        account = await client.login(args.login, password, device_name=device, second_factor=code)
    print(f"logged in as {account.email or account.phone}")
    _remind_to_verify(account)
    current = await client.terms_version()
    if account.accepted_terms_version != current:
        fail(f"the terms of service changed (version {current}): read them (`cumulo terms`), then `cumulo account accept-terms`")
    return 0


def _remind_to_verify(account: auth_pb2.Account) -> None:
    """Notices (the warnings before an unused account is deleted among them) go only to
    verified contacts: with none, the person hears it at every sign-in."""
    if not (account.email_verified or account.phone_verified):
        channel = "email" if account.email else "phone"
        fail(f"no contact of this account is verified, so no notice reaches you: run `cumulo account verify {channel}`")


async def _contacts(client: Cumulo, args: argparse.Namespace) -> int:
    account = (await client.whoami()).account

    def person() -> int:
        for name, value, verified in (("email", account.email, account.email_verified), ("phone", account.phone, account.phone_verified)):
            if value:
                print(f"{name:<6} {value}  {'verified' if verified else 'NOT verified: `cumulo account verify ' + name + '`'}")
        return 0

    return show(args, account, person)


async def _verify(client: Cumulo, args: argparse.Namespace) -> int:
    if not args.code:
        sent = await client.send_verification_code(args.channel)
        print(f"a code went to {sent.sent_to}, good until {when(sent.expires_at)}; enter it: cumulo account verify {args.channel} --code CODE")
        return 0
    await client.verify_contact(args.channel, args.code)
    print(f"{args.channel} verified: notices reach it from now on")
    return 0


async def _reset_password(client: Cumulo, args: argparse.Namespace) -> int:
    if not args.code:
        await client.start_password_reset(args.login)
        print(
            f"if {args.login} is a verified contact of an account, a code went there (good for 10 minutes); "
            f"then: cumulo reset-password {args.login} --code CODE"
        )
        return 0
    password = read_password("New password: ")
    if at_terminal() and read_password("Repeat the password: ") != password:
        fail("the passwords differ; nothing was changed")
        return 2
    await client.reset_password(args.login, args.code, password)
    print("password set; every session of the account was signed out: log in again")
    return 0


MINOR_COLUMNS = [Column("ACCOUNT"), Column("LOGIN"), Column("IN YOUR CARE UNTIL")]


async def _two_step(client: Cumulo, args: argparse.Namespace) -> int:
    if args.action == "enable":
        await client.confirm_password(read_password("Password: "))
        begun = await client.two_step_begin()
        print(f"add this to your authenticator app (as a QR code, or the secret typed in):\n  {begun.otpauth_uri}\n  secret: {begun.secret}")
        print("then: cumulo account two-step confirm CODE (the code the app shows)")
        return 0
    if not args.code:
        fail(f"`cumulo account two-step {args.action} CODE`: the code your authenticator app shows" + (", or a recovery code" if args.action == "disable" else ""))
        return 2
    if args.action == "confirm":
        codes = await client.two_step_confirm(args.code)
        print("two-step sign-in is on. Keep these recovery codes somewhere safe: each signs in once without the app.")
        for code in codes:
            print(f"  {code}")
        return 0
    await client.confirm_password(read_password("Password: "))
    await client.two_step_disable(args.code)
    print("two-step sign-in is off")
    return 0


async def _change_password(client: Cumulo, args: argparse.Namespace) -> int:
    current = read_password("Current password: ")
    new = read_password("New password: ")
    if at_terminal() and read_password("Repeat the new password: ") != new:
        fail("the passwords differ; nothing was changed")
        return 2
    await client.change_password(current, new)
    print("password changed; your other sessions were signed out")
    return 0


async def _cancel(client: Cumulo, args: argparse.Namespace) -> int:
    if not args.delete_everything:
        fail(
            "cancelling deletes all of the account's cloud content for good (files, photos, backups, synced data, "
            "device locations); to go on, run it again with --delete-everything"
        )
        return 2
    await client.cancel_account(read_password("Password: "))
    print("the account is cancelled; its content is being deleted and it cannot sign in again")
    return 0


async def _accept_terms(client: Cumulo, args: argparse.Namespace) -> int:
    version = await client.terms_version()
    account = await client.accept_terms(version)
    print(f"terms of service {account.accepted_terms_version} accepted (`cumulo terms` shows them)")
    return 0


TERMS_COLUMNS = [Column("VERSION"), Column("ACCEPTED"), Column("FROM"), Column("BY")]


async def _terms_history(client: Cumulo, args: argparse.Namespace) -> int:
    rows = await client.terms_acceptances()
    return show_table(args, "acceptances", rows, TERMS_COLUMNS, lambda a: [a.version, when(a.accepted_at), a.client_id or "-", a.accepted_by or "you"])


async def _create_minor(client: Cumulo, args: argparse.Namespace) -> int:
    try:
        born = dt.date.fromisoformat(args.birth_date)
    except ValueError:
        fail("--birth-date must be YYYY-MM-DD")
        return 2
    if not args.guardian_consent:
        fail("you create a minor's account as their parent or guardian: pass --guardian-consent")
        return 2
    password = read_password("The minor's password: ")
    account = await client.create_minor(email=args.email or "", phone=args.phone or "", password=password, birth_date=born)
    print(f"account {account.account_id} created for {account.email or account.phone}, in your care until they are 18")
    return 0


async def _minors(client: Cumulo, args: argparse.Namespace) -> int:
    minors = await client.minors()
    return show_table(
        args, "minors", minors, MINOR_COLUMNS, lambda m: [m.account_id, m.login, when(m.until)], empty="no minor is in your care"
    )


async def _set_minor_password(client: Cumulo, args: argparse.Namespace) -> int:
    await client.confirm_password(read_password("Your password: "))
    password = read_password("The minor's new password: ")
    await client.set_minor_password(args.minor_account_id, password)
    print("the minor's password is set; every session of theirs was signed out")
    return 0


async def _set_contact(client: Cumulo, args: argparse.Namespace) -> int:
    await client.confirm_password(read_password("Password: "))
    account = await client.update_contacts(**{args.channel: args.value})
    value = getattr(account, args.channel)
    if value:
        print(f"{args.channel} is now {value}, not yet verified: run `cumulo account verify {args.channel}`")
    else:
        print(f"{args.channel} removed")
    return 0


async def _whoami(client: Cumulo, args: argparse.Namespace) -> int:
    response = await client.whoami()
    return show(args, response, lambda: _print_whoami(response))


def _print_whoami(response: auth_pb2.GetAccountResponse) -> None:
    account = response.account
    print(f"account   {account.account_id}")
    if account.email:
        print(f"email     {account.email}")
    if account.phone:
        print(f"phone     {account.phone}")
    print(f"status    {_status(account)}")
    print(f"minor     {'yes' if account.minor else 'no'}")
    print(f"terms     {account.accepted_terms_version} (current {response.current_terms_version})")


def print_lifecycle_account(account: lifecycle_pb2.Account) -> None:
    print(f"state        {lifecycle_pb2.AccountState.Name(account.state).removeprefix('ACCOUNT_STATE_').lower()}")
    print(f"last use     {when(account.last_access_at)}")
    if account.state == lifecycle_pb2.ACCOUNT_STATE_ACTIVE:
        print(f"freezes on   {when(account.freeze_at)} if unused until then")
    if account.state == lifecycle_pb2.ACCOUNT_STATE_FROZEN:
        print(f"frozen at    {when(account.frozen_at)}")
        print(f"deleted at   {when(account.delete_at)} unless used before (any use, or `cumulo account reactivate`)")
    if account.held:
        print(f"legal hold   {account.hold_reason}")
    if account.deleted_at.seconds:
        print(f"deleted at   {when(account.deleted_at)} ({account.deletion_reason})")


async def _account_state(client: Cumulo, args: argparse.Namespace) -> int:
    account = await client.account_state()
    return show(args, account, lambda: print_lifecycle_account(account))


async def _account_reactivate(client: Cumulo, args: argparse.Namespace) -> int:
    if args.link_token:
        await client.reactivate_with_link(args.link_token)
        print("the account is active again")
        return 0
    print_lifecycle_account(await client.reactivate())
    return 0


SESSION_COLUMNS = [Column(""), Column("SESSION"), Column("APP"), Column("DEVICE"), Column("LAST USED")]


async def _sessions(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(args, "sessions", await client.sessions(), SESSION_COLUMNS, _session_cells)


def _session_cells(session: auth_pb2.Session) -> list[str]:
    marker = "*" if session.current else ""
    return [marker, session.session_id, session.client_id, session.device_name or "-", when(session.last_used_at)]


async def _revoke(client: Cumulo, args: argparse.Namespace) -> int:
    await client.revoke_session(args.session_id)
    print(f"session {args.session_id} revoked")
    return 0


GUARDIAN_COLUMNS = [Column("GUARDIAN"), Column("LOGIN"), Column("SINCE"), Column("UNTIL"), Column("ACCESS")]


async def _guardians(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(args, "guardians", await client.guardians(), GUARDIAN_COLUMNS, _guardian_cells)


def _guardian_cells(guardian: auth_pb2.Guardian) -> list[str]:
    access = "yes" if guardian.active else f"revoked {when(guardian.revoked_at)}" if guardian.HasField("revoked_at") else "ended"
    return [guardian.guardian_account_id, guardian.login or "-", when(guardian.since), when(guardian.until), access]


async def _revoke_guardian(client: Cumulo, args: argparse.Namespace) -> int:
    guardian = await client.revoke_guardian(args.guardian_account_id)
    return show(args, guardian, lambda: print(f"guardian {guardian.guardian_account_id} has no access to this account any more"))


async def _logout(client: Cumulo, args: argparse.Namespace) -> int:
    if client.store.tokens is None:
        print("not logged in")
        return 0
    await client.logout()
    print("logged out")
    return 0


def _account_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    signup = commands.add_parser("signup", help="create an account (adults; a guardian creates a minor's)")
    signup.add_argument("--email", help="your e-mail address (give it, a phone number, or both)")
    signup.add_argument("--phone", help="your phone number, E.164, e.g. +8613800138000")
    signup.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
    signup.add_argument("--accept-terms", action="store_true", help="you accept the current terms of service (`cumulo terms`)")
    signup.add_argument("--locale", choices=["zh-CN", "en"], help="the language of notices (default zh-CN)")
    signup.set_defaults(run=_signup)
    terms = commands.add_parser("terms", help="show the current terms of service (no login needed)")
    add_json_flag(terms)
    terms.set_defaults(run=_terms)
    login = commands.add_parser("login", help="log in; the session is kept in a 0600 file")
    login.add_argument("login", help="e-mail address or phone number")
    login.add_argument("--device-name", help="how `cumulo sessions` names this session (default: this machine's host name)")
    login.add_argument("--code", help="with two-step sign-in on: the code your authenticator app shows, or a recovery code")
    login.set_defaults(run=_login)
    whoami = commands.add_parser("whoami", help="show the logged-in account")
    add_json_flag(whoami)
    whoami.set_defaults(run=_whoami)
    sessions = commands.add_parser("sessions", help="list the account's sessions (* marks this one)")
    add_json_flag(sessions)
    sessions.set_defaults(run=_sessions)
    revoke = commands.add_parser("revoke-session", help="end one of the account's sessions")
    revoke.add_argument("session_id", help="its id, as `cumulo sessions` shows it")
    revoke.set_defaults(run=_revoke)
    commands.add_parser("logout", help="end this session").set_defaults(run=_logout)
    reset = commands.add_parser("reset-password", help="a forgotten password: a code to a verified contact, then a new password (no login needed)")
    reset.add_argument("login", help="the account's verified e-mail address or phone number")
    reset.add_argument("--code", help="the code that was sent; the new password is then asked for")
    reset.set_defaults(run=_reset_password)
    account = commands.add_parser("account", help="your account's state: active, frozen, deleted").add_subparsers(
        dest="account_command", required=True, metavar="COMMAND"
    )
    state = account.add_parser("state", help="state, freeze date, deletion date (asking does not reactivate)")
    add_json_flag(state)
    state.set_defaults(run=_account_state)
    guardians = account.add_parser("guardians", help="who has had a guardian's access to this account, since and until when")
    add_json_flag(guardians)
    guardians.set_defaults(run=_guardians)
    revoke_guardian = account.add_parser("revoke-guardian", help="end a guardian's access now (adults; it ends at 18 by itself)")
    revoke_guardian.add_argument("guardian_account_id", help="the guardian's account id, as `cumulo account guardians` shows it")
    add_json_flag(revoke_guardian)
    revoke_guardian.set_defaults(run=_revoke_guardian)
    contacts = account.add_parser("contacts", help="the account's e-mail address and phone number, and whether each is verified")
    add_json_flag(contacts)
    contacts.set_defaults(run=_contacts)
    verify = account.add_parser("verify", help="prove a contact yours: sends a code to it; then again with --code")
    verify.add_argument("channel", choices=["email", "phone"], help="which contact: email or phone")
    verify.add_argument("--code", help="the code that was sent")
    verify.set_defaults(run=_verify)
    set_contact = account.add_parser("set-contact", help="change or remove (\"\") the e-mail address or phone number (asks the password)")
    set_contact.add_argument("channel", choices=["email", "phone"], help="which contact: email or phone")
    set_contact.add_argument("value", help="the new address or number; \"\" removes it")
    set_contact.set_defaults(run=_set_contact)
    two_step = account.add_parser("two-step", help="two-step sign-in: enable (then confirm CODE), or disable CODE")
    two_step.add_argument("action", choices=["enable", "confirm", "disable"], help="what to do")
    two_step.add_argument("code", nargs="?", help="for confirm and disable: the code your authenticator app shows (disable: or a recovery code)")
    two_step.set_defaults(run=_two_step)
    change = account.add_parser("change-password", help="a new password (asks the current one, then the new, a line each); other sessions end")
    change.set_defaults(run=_change_password)
    cancel = account.add_parser("cancel", help="cancel the account: all of its cloud content is deleted (asks the password)")
    cancel.add_argument("--delete-everything", action="store_true", help="you understand that the account's content is deleted for good")
    cancel.set_defaults(run=_cancel)
    terms_history = account.add_parser("terms-history", help="every version of the terms of service you accepted, when, from which app")
    add_json_flag(terms_history)
    terms_history.set_defaults(run=_terms_history)
    accept = account.add_parser("accept-terms", help="accept the current terms of service (`cumulo terms` shows them)")
    accept.set_defaults(run=_accept_terms)
    create_minor = account.add_parser("create-minor", help="create the account of a minor in your care (asks their password)")
    create_minor.add_argument("--email", help="the minor's e-mail address (give it, a phone number, or both)")
    create_minor.add_argument("--phone", help="the minor's phone number, E.164")
    create_minor.add_argument("--birth-date", required=True, help="the minor's, YYYY-MM-DD")
    create_minor.add_argument("--guardian-consent", action="store_true", help="you are their parent or guardian and consent")
    create_minor.set_defaults(run=_create_minor)
    minors = account.add_parser("minors", help="the minors in your care (accounts you created for them), until when")
    add_json_flag(minors)
    minors.set_defaults(run=_minors)
    minor_password = account.add_parser(
        "set-minor-password", help="a new password for a minor in your care (asks yours, then theirs, a line each)"
    )
    minor_password.add_argument("minor_account_id", help="the minor's account id, as `cumulo account minors` shows it")
    minor_password.set_defaults(run=_set_minor_password)
    reactivate = account.add_parser("reactivate", help="bring a frozen account back")
    reactivate.add_argument("--link-token", help="the token from a notice's link (no login needed)")
    reactivate.set_defaults(run=_account_reactivate)


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cumulo", description="cumulo personal cloud")
    parser.add_argument("--gateway", default=environ.get("CUMULO_GATEWAY", DEFAULT_GATEWAY), help="host:port of the gateway (default: CUMULO_GATEWAY, or 127.0.0.1:8080)")
    add_transport_flags(parser, environ)
    parser.add_argument("--client-id", default=environ.get("CUMULO_CLIENT_ID", DEFAULT_CLIENT_ID), help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _account_commands(commands)
    add_file_commands(commands)
    add_share_commands(commands)
    add_sync_commands(commands)
    add_device_commands(commands)
    add_takeout_commands(commands)
    add_report_commands(commands)
    parser.set_defaults(environ=environ)
    return parser


async def _main(args: argparse.Namespace) -> int:
    store = TokenStore(home(args.environ) / "credentials.json")
    try:
        client = Cumulo(
            args.gateway, client_id=args.client_id, store=store, pending_uploads=home(args.environ) / "uploads.json",
            connect_timeout=connect_timeout(args.environ), transport=transport(args),
        )
    except TransportError as err:
        return failed("cumulo", err)
    async with client:
        try:
            return await args.run(client, args)
        except (IntegrityError, CumuloRpcError) as err:
            return failed("cumulo", err)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """`environ`, the process's environment by default, is where the CUMULO_* settings are read
    (the tests run commands in-process, each with its own)."""
    environ = os.environ if environ is None else environ
    args = build_parser(environ).parse_args(argv)
    return run("cumulo", lambda: _main(args), debug=debugging(environ))


if __name__ == "__main__":
    sys.exit(main())
