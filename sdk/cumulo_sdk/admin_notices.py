"""`cumulo-admin notices`: what the operator tells every account, through the lifecycle's
notice path (each account by its verified contacts, in its language), queued in batches.

    cumulo-admin notices terms VERSION --from WHEN [--message-en T] [--message-zh T]
    cumulo-admin notices maintenance NAME --from WHEN --until WHEN [--message-en T] [--message-zh T]
    cumulo-admin notices show ID                  how many accounts are queued so far

WHEN is an ISO 8601 time ("2027-01-01T00:00+08:00"; without an offset, this machine's zone).
Announcing the same terms version or maintenance name again answers the first announcement."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any

from google.protobuf.timestamp_pb2 import Timestamp

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo_sdk.cli_common import add_json_flag, show
from cumulo_sdk.console import when

if TYPE_CHECKING:
    from cumulo_sdk.admin import Admin


def _when(text: str) -> Timestamp:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time (e.g. 2027-01-01T00:00+08:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    stamp = Timestamp()
    stamp.FromDatetime(parsed.astimezone(dt.UTC))
    return stamp


def _print(announcement: pb.Announcement) -> None:
    kind = pb.AnnouncementKind.Name(announcement.kind).removeprefix("ANNOUNCEMENT_KIND_").lower()
    print(f"announcement {announcement.announcement_id}")
    print(f"kind         {kind} {announcement.reference}")
    print(f"from         {when(announcement.starts_at)}")
    if announcement.ends_at.seconds:
        print(f"until        {when(announcement.ends_at)}")
    queued = f"all {announcement.accounts_queued} accounts, {when(announcement.queued_at)}" if announcement.queued_at.seconds else (
        f"{announcement.accounts_queued} accounts so far"
    )
    print(f"queued       {queued}")


async def _announce(admin: Admin, args: argparse.Namespace) -> int:
    kind = pb.ANNOUNCEMENT_KIND_TERMS if args.notices_command == "terms" else pb.ANNOUNCEMENT_KIND_MAINTENANCE
    request = pb.AnnounceRequest(
        kind=kind, reference=args.reference, starts_at=args.starts_at, message_en=args.message_en or "",
        message_zh=args.message_zh or "", actor=admin.actor(),
    )
    if getattr(args, "ends_at", None) is not None:
        request.ends_at.CopyFrom(args.ends_at)
    response = await admin.lifecycle.Announce(request, timeout=30)
    return show(args, response, lambda: _print(response.announcement))


async def _show(admin: Admin, args: argparse.Namespace) -> int:
    response = await admin.lifecycle.GetAnnouncement(pb.GetAnnouncementRequest(announcement_id=args.announcement_id), timeout=10)
    return show(args, response, lambda: _print(response.announcement))


def add_admin_commands(services: Any) -> None:
    notices = services.add_parser("notices", help="tell every account: new terms of service, maintenance").add_subparsers(
        dest="notices_command", required=True, metavar="COMMAND"
    )
    terms = notices.add_parser("terms", help="a new version of the terms of service, from a date (the next sign-in after it asks for acceptance)")
    terms.add_argument("reference", metavar="VERSION", help="the version, as auth ships it (CUMULO_AUTH_TERMS_VERSION)")
    terms.add_argument("--from", dest="starts_at", type=_when, required=True, help="when it applies (ISO 8601)")
    maintenance = notices.add_parser("maintenance", help="a maintenance window (shown on the console and sent to every account)")
    maintenance.add_argument("reference", metavar="NAME", help="names the window, e.g. 2027-01-db")
    maintenance.add_argument("--from", dest="starts_at", type=_when, required=True, help="when it begins (ISO 8601)")
    maintenance.add_argument("--until", dest="ends_at", type=_when, required=True, help="when it ends (ISO 8601)")
    for parser in (terms, maintenance):
        parser.add_argument("--message-en", help="a few words of your own, in English")
        parser.add_argument("--message-zh", help="the same in Chinese")
        add_json_flag(parser)
        parser.set_defaults(run=_announce)
    shown = notices.add_parser("show", help="an announcement, and how many accounts are queued so far")
    shown.add_argument("announcement_id", help="its id, as `notices terms` or `notices maintenance` printed it")
    add_json_flag(shown)
    shown.set_defaults(run=_show)
