"""`cumulo report ...` (anyone: complaints; owners: their cases and counter-notices) and
`cumulo-admin moderation ...` (moderators, signed in with `cumulo login` as an account that has
the moderator role; `cumulo-admin auth roles` grants it)."""

from __future__ import annotations

import argparse
import pathlib
from typing import TYPE_CHECKING, Any

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_sdk.cli_common import add_json_flag, fail, show_rows, show_table
from cumulo_sdk.console import parse_span, plural, read_password, when
from cumulo_sdk.moderation import DECISIONS, read_digests
from cumulo_sdk.tables import Column

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

KINDS = {v: k.removeprefix("CASE_KIND_").lower() for k, v in pb.CaseKind.items()}
CATEGORIES = {v: k.removeprefix("CATEGORY_").lower() for k, v in pb.Category.items()}
STATES = {v: k.removeprefix("CASE_STATE_").lower() for k, v in pb.CaseState.items()}
DECIDED = {v: k.removeprefix("DECISION_").lower() for k, v in pb.Decision.items()}
COUNTER = {v: k.removeprefix("COUNTER_NOTICE_STATE_").lower().replace("_", " ") for k, v in pb.CounterNoticeState.items()}
STATE_VALUES = {"open": pb.CASE_STATE_OPEN, "claimed": pb.CASE_STATE_CLAIMED, "decided": pb.CASE_STATE_DECIDED}


CASE_COLUMNS = [Column("CASE"), Column("KIND"), Column("CATEGORY"), Column("STATE"), Column("TARGET"), Column("OUTCOME")]


def case_cells(case: pb.CaseSummary) -> list[str]:
    outcome = ""
    if case.decision:
        outcome = f"→ {DECIDED[case.decision]}"
        if case.suspended_until.ByteSize():
            outcome += f" until {when(case.suspended_until)}"
    if case.counter_notice not in (pb.COUNTER_NOTICE_STATE_UNSPECIFIED, pb.COUNTER_NOTICE_STATE_NONE):
        restore = f", restore at {when(case.restore_at)}" if case.restore_at.ByteSize() else ""
        outcome += f"{'  ' if outcome else ''}[counter-notice: {COUNTER[case.counter_notice]}{restore}]"
    target = case.node_id or case.account_id
    return [case.case_id, KINDS[case.kind], CATEGORIES[case.category], STATES[case.state], target, outcome]


def print_case(case: pb.CaseSummary) -> None:
    """One case, alone (a table of one row needs no header)."""
    print("  ".join(cell for cell in case_cells(case) if cell))


# --- cumulo report ---------------------------------------------------------------------------


async def _report(client: Cumulo, args: argparse.Namespace) -> int:
    signed_in = client.store.tokens is not None
    if not signed_in and not args.contact:
        fail("without logging in, give --contact (an e-mail address or phone number)")
        return 2
    claim = None
    if args.category == "copyright":
        claim = pb.CopyrightClaim(
            rights_holder=args.rights_holder or "", rights_holder_contact=args.rights_holder_contact or "", work=args.work or "",
            location=args.location or args.target, signature=args.signature or "", good_faith_statement=args.good_faith,
            accuracy_statement=args.accurate,
        )
    filed = await client.complaints.report(
        args.kind, args.target, category=args.category, description=args.description, contact_address=args.contact or "",
        copyright=claim, signed_in=signed_in,
    )
    print(f"complaint {filed.complaint_id} filed (case {filed.case_id})")
    print(f"  receipt: {filed.receipt}  (keep it: it proves the complaint is yours)")
    return 0


async def _cases(client: Cumulo, args: argparse.Namespace) -> int:
    return show_table(
        args, "cases", await client.complaints.my_cases(), CASE_COLUMNS, case_cells, empty="no decisions about your content or account"
    )


async def _counter_notice(client: Cumulo, args: argparse.Namespace) -> int:
    if not args.consent:
        fail("a counter-notice needs --consent (to the courts' jurisdiction, under penalty of perjury)")
        return 2
    case = await client.complaints.counter_notice(args.case_id, statement=args.statement, name=args.name, contact=args.contact)
    print(f"counter-notice filed; unless the complainant reports legal action, the content is restored at {when(case.restore_at)}")
    return 0


async def _legal_action(client: Cumulo, args: argparse.Namespace) -> int:
    receipt = args.environ.get("CUMULO_RECEIPT") or read_password("Receipt of the complaint: ")
    await client.complaints.legal_action(args.complaint_id, receipt, args.description)
    print("legal action recorded: the content stays down")
    return 0


def add_commands(commands: Any) -> None:
    report = commands.add_parser("report", help="report content or an account; your cases; counter-notices").add_subparsers(
        dest="report_command", required=True, metavar="COMMAND"
    )
    for kind, what, help in (
        ("link", "a share link (as shared, or its token)", "report a share link"),
        ("file", "a file's node id", "report a file shared with you"),
        ("account", "an account id, e-mail or phone", "report an account"),
    ):
        parser = report.add_parser(kind, help=help)
        parser.add_argument("target", help=what)
        parser.add_argument(
            "--category", required=True, choices=["illegal", "harmful", "privacy", "spam", "copyright", "other"],
            help="what is wrong with it (copyright: give the notice's details below)",
        )
        parser.add_argument("--description", required=True, help="what you found, in your words")
        parser.add_argument("--contact", help="where you can be reached (needed when not logged in)")
        notice = parser.add_argument_group("copyright notice (--category copyright)")
        notice.add_argument("--rights-holder", help="the rights holder's name")
        notice.add_argument("--rights-holder-contact", help="the rights holder's address, phone or e-mail")
        notice.add_argument("--work", help="the copyrighted work")
        notice.add_argument("--location", help="where the material is (default: the target)")
        notice.add_argument("--signature", help="your full name as signature")
        notice.add_argument("--good-faith", action="store_true", help="you believe in good faith the use is not authorised")
        notice.add_argument("--accurate", action="store_true", help="the notice is accurate and you may act for the rights holder")
        parser.set_defaults(run=_report, kind=kind)
    cases = report.add_parser("cases", help="decisions about your content and account")
    add_json_flag(cases)
    cases.set_defaults(run=_cases)
    counter = report.add_parser("counter-notice", help="dispute a copyright takedown of your content")
    counter.add_argument("case_id", help="the case, as `cumulo report cases` shows it")
    counter.add_argument("--statement", required=True, help="why the material was removed by mistake")
    counter.add_argument("--name", required=True, help="your full name")
    counter.add_argument("--contact", required=True, help="your address, phone or e-mail")
    counter.add_argument("--consent", action="store_true", help="you consent to the courts' jurisdiction and state this under penalty of perjury")
    counter.set_defaults(run=_counter_notice)
    legal = report.add_parser(
        "legal-action", help="as complainant: you have taken legal action (keeps the content down); the receipt is asked for, or CUMULO_RECEIPT"
    )
    legal.add_argument("complaint_id", help="your complaint's id, as filing it printed")
    legal.add_argument("--description", required=True, help="the legal action: court, case number, date")
    legal.set_defaults(run=_legal_action)


# --- cumulo-admin moderation -----------------------------------------------------------------


async def _queue(client: Cumulo, args: argparse.Namespace) -> int:
    cases = [case async for case in client.moderation.queue(STATE_VALUES.get(args.state or "", pb.CASE_STATE_UNSPECIFIED))]
    return show_table(args, "cases", cases, CASE_COLUMNS, case_cells, empty="the queue is empty")


async def _show(client: Cumulo, args: argparse.Namespace) -> int:
    shown = await client.moderation.case(args.case_id)
    print_case(shown.case)
    for complaint in shown.complaints:
        who = f"user {complaint.reporter_account_id}" if complaint.reporter_account_id else "anonymous"
        print(f"  complaint {complaint.complaint_id} {when(complaint.created_at)} by {who} <{complaint.contact_address or '-'}>")
        print(f"    {complaint.description}")
        if complaint.HasField("copyright"):
            c = complaint.copyright
            print(f"    rights holder {c.rights_holder} ({c.rights_holder_contact}); work: {c.work}; signed {c.signature}")
    for entry in shown.audit:
        print(f"  {when(entry.at)}  {entry.action:<24} {entry.actor}  {entry.reason}")
    return 0


async def _claim(client: Cumulo, args: argparse.Namespace) -> int:
    print_case(await client.moderation.claim(args.case_id, take_over=args.take_over))
    return 0


async def _decide(client: Cumulo, args: argparse.Namespace) -> int:
    seconds = 0
    if args.decision == "suspend":
        if not args.duration:
            fail("suspend needs --for, e.g. --for 7d", "cumulo-admin")
            return 2
        seconds = parse_span(args.duration, "--for")
    print_case(
        await client.moderation.decide(args.case_id, args.decision, args.reason, suspend_seconds=seconds, allow_export=args.allow_export)
    )
    return 0


async def _hold(client: Cumulo, args: argparse.Namespace) -> int:
    held = args.moderation_command == "hold"
    await client.moderation.hold(args.account_id, held=held, reason=args.reason)
    print(f"legal hold {'placed on' if held else 'released from'} {args.account_id}")
    return 0


def _print_evidence(evidence: pb.Evidence) -> None:
    print(f"export    {evidence.export_id}")
    print(f"bundle    s3://{evidence.bucket}/{evidence.prefix}  ({plural(evidence.files, 'file')}, {plural(evidence.bytes, 'byte')})")
    print(f"manifest  {evidence.manifest_key}")
    print(f"sha256    {evidence.manifest_sha256}")
    if evidence.signing_key_id:
        print(f"signed    by key {evidence.signing_key_id} (public key sha256 {evidence.signing_key_fingerprint}): {evidence.signature_key}")
    if evidence.lock_mode:
        print(f"locked    {evidence.lock_mode} until {when(evidence.retain_until)}")


async def _export(client: Cumulo, args: argparse.Namespace) -> int:
    _print_evidence(await client.moderation.export(args.account_id, args.reason))
    return 0


async def _verify(client: Cumulo, args: argparse.Namespace) -> int:
    checked = await client.moderation.verify(args.export_id)
    _print_evidence(checked.evidence)
    for problem in checked.problems:
        print(f"PROBLEM   {problem}")
    for check in checked.failed_checks:
        print(f"FAILED    {pb.EvidenceCheck.Name(check).removeprefix('EVIDENCE_CHECK_').lower()}")
    print(f"{'intact' if checked.intact else 'NOT INTACT'}: {plural(checked.parts_checked, 'part')} checked")
    return 0 if checked.intact else 1


async def _audit(client: Cumulo, args: argparse.Namespace) -> int:
    entries = await client.moderation.audit(account_id=args.account or "", case_id=args.case or "", limit=args.limit)
    return show_rows(args, "entries", entries, _print_audit_entry)


def _print_audit_entry(entry: pb.AuditEntry) -> None:
    print(f"{entry.audit_id:>6}  {when(entry.at)}  {entry.action:<24} {entry.actor:<38} {entry.target}  {entry.reason}")


async def _blocklist(client: Cumulo, args: argparse.Namespace) -> int:
    if args.blocklist_command == "ls":
        entries = [entry async for entry in client.moderation.blocklist()]
        return show_rows(args, "entries", entries, lambda entry: print(f"{entry.sha256}  {when(entry.added_at)}  {entry.reason}"))
    if args.blocklist_command == "rm":
        await client.moderation.unblock_hash(args.sha256, args.reason)
        print(f"{args.sha256} removed from the blocklist")
        return 0
    digests = list(args.sha256) + (read_digests(pathlib.Path(args.file)) if args.file else [])
    if not digests:
        fail("give digests, or --file with one per line", "cumulo-admin")
        return 2
    added, listed = await client.moderation.block_hashes(digests, args.reason)
    print(f"{added} added, {listed} already listed")
    return 0


def add_admin_commands(services: Any) -> None:
    moderation = services.add_parser(
        "moderation", help="the review queue, decisions, holds, evidence, audit log, blocklist (as a logged-in moderator)"
    ).add_subparsers(dest="moderation_command", required=True, metavar="COMMAND")
    queue = moderation.add_parser("queue", help="cases waiting for review, oldest first")
    queue.add_argument("--state", choices=sorted(STATE_VALUES), help="only cases in this state (default: open and claimed)")
    add_json_flag(queue)
    queue.set_defaults(run=_queue)
    show = moderation.add_parser("show", help="one case: complaints and its audit trail")
    show.add_argument("case_id", help="the case, as the queue shows it")
    show.set_defaults(run=_show)
    claim = moderation.add_parser("claim", help="take a case")
    claim.add_argument("case_id", help="the case, as the queue shows it")
    claim.add_argument("--take-over", action="store_true", help="from another moderator")
    claim.set_defaults(run=_claim)
    decide = moderation.add_parser("decide", help="decide a case; the effect is carried out at once")
    decide.add_argument("case_id", help="the case, as the queue shows it")
    decide.add_argument("decision", choices=list(DECISIONS), help="what is done: " + ", ".join(DECISIONS))
    decide.add_argument("--reason", required=True, help="recorded in the audit log and told to the owner")
    decide.add_argument("--for", dest="duration", help="suspend only: e.g. 7d, 12h")
    decide.add_argument(
        "--allow-export", action="store_true",
        help="terminate only: the owner may sign in to take their data out for the server's window before the deletion "
        "(not where the content is itself unlawful)",
    )
    decide.set_defaults(run=_decide)
    for name, text in (("hold", "legal hold: nothing of the account is deleted"), ("release", "release a legal hold")):
        hold = moderation.add_parser(name, help=text)
        hold.add_argument("account_id", help="an account id, or the e-mail address or phone number of a live account")
        hold.add_argument("--reason", required=True, help="recorded in the audit log (e.g. the authority's request)")
        hold.set_defaults(run=_hold)
    export = moderation.add_parser("export", help="write a held account's evidence bundle to the preservation area")
    export.add_argument("account_id", help="an account id, or the e-mail address or phone number of a live account")
    export.add_argument("--reason", required=True, help="recorded in the audit log and the bundle's manifest")
    export.set_defaults(run=_export)
    verify = moderation.add_parser("verify", help="check a bundle against its recorded manifest hash")
    verify.add_argument("export_id", help="the export's id, as `export` printed it")
    verify.set_defaults(run=_verify)
    audit = moderation.add_parser("audit", help="the audit log, newest first; with --case, that case's steps as they happened")
    audit.add_argument("--account", help="only entries about this account id")
    audit.add_argument("--case", help="only entries of this case")
    audit.add_argument("--limit", type=int, default=50, help="at most this many entries (default: 50)")
    add_json_flag(audit)
    audit.set_defaults(run=_audit)
    blocklist = moderation.add_parser("blocklist", help="SHA-256 digests blocked at upload").add_subparsers(
        dest="blocklist_command", required=True, metavar="COMMAND"
    )
    add = blocklist.add_parser("add", help="add digests, or import a file of them")
    add.add_argument("sha256", nargs="*", help="SHA-256 digests, lower-case hex")
    add.add_argument("--file", help="one digest per line (sha256sum output works)")
    add.add_argument("--reason", required=True, help="recorded in the audit log (e.g. where the list came from)")
    add.set_defaults(run=_blocklist)
    rm = blocklist.add_parser("rm", help="remove a digest")
    rm.add_argument("sha256", help="the digest to remove")
    rm.add_argument("--reason", required=True, help="recorded in the audit log")
    rm.set_defaults(run=_blocklist)
    listing = blocklist.add_parser("ls", help="the blocklist")
    add_json_flag(listing)
    listing.set_defaults(run=_blocklist)
