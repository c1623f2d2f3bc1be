"""`cumulo-admin events`: the events consumers gave up on (after their bounded retries), read
straight from NATS JetStream's dead-letter stream.

    cumulo-admin events dead-letters [--consumer NAME]   what was parked, oldest first
    cumulo-admin events replay ID                        send it again on its subject, after the fix is deployed
    cumulo-admin events drop ID                          forget it (it stays in the audit of logs)

NATS is found at --nats, NATS_URL or CUMULO_NATS_URL (in Kubernetes, the services' own
setting; next to `make run`, nats://127.0.0.1:4222)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

import nats
from google.protobuf.timestamp_pb2 import Timestamp

from cumulo_platform import dead_letters
from cumulo_platform.bus_access import connect_options
from cumulo_platform.events import ensure_streams
from cumulo_platform.identity import OPERATOR, Identity, IdentityError
from cumulo_platform.settings import Env
from cumulo_sdk.cli_common import add_json_flag, show
from cumulo_sdk.console import when, when_iso


def _failed_at(letter: dead_letters.DeadLetter) -> Timestamp:
    stamp = Timestamp()
    try:
        stamp.FromDatetime(dt.datetime.fromisoformat(letter.failed_at))
    except ValueError:  # not recorded (or unreadable): shown as unknown
        pass
    return stamp


def _letter_json(letter: dead_letters.DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id, "consumer": letter.consumer, "subject": letter.subject, "event_type": letter.event_type or None,
        "event_id": letter.event_id or None, "attempts": letter.attempts, "failed_at": when_iso(_failed_at(letter)),
        "error": letter.error,
    }


def _nats_url(environ: Any) -> str:
    return str(environ.get("NATS_URL") or environ.get("CUMULO_NATS_URL") or "nats://127.0.0.1:4222")


async def _with_jetstream(args: argparse.Namespace, work: Any) -> int:
    url = args.nats or _nats_url(args.environ)
    try:
        operator = Identity.load(args.environ.get("CUMULO_IDENTITY_DIR", ""), OPERATOR)
    except IdentityError as err:
        print(f"cumulo-admin: {err}", file=sys.stderr)
        return 2
    try:
        connection = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False, **connect_options(operator))
    except Exception as exc:
        print(f"cumulo-admin: cannot reach NATS at {url} ({type(exc).__name__}); set --nats or NATS_URL", file=sys.stderr)
        return 1
    try:
        js = connection.jetstream(timeout=5)
        # Made if missing (with the services' replica count, the config map's); never changed:
        # the services keep the streams' configuration, and an operator's tool must not scale
        # a cluster's replicated stream up or down.
        await ensure_streams(js, Env("operator", dict(args.environ)).get("NATS_STREAM_REPLICAS", 1), update=False)
        code: int = await work(js)
        return code
    finally:
        await connection.close()


async def _list(_: Any, args: argparse.Namespace) -> int:
    async def work(js: Any) -> int:
        letters = await dead_letters.listing(js, consumer=args.consumer or "", limit=args.limit)

        def person() -> None:
            if not letters:
                print("no dead letters")
                return
            print(f"{'ID':>6}  {'FAILED AT':25}  {'CONSUMER':24}  {'EVENT TYPE':24}  {'TRIES':>5}  ERROR")
            for letter in letters:
                print(
                    f"{letter.id:>6}  {when(_failed_at(letter)):25}  {letter.consumer:24}  {letter.event_type or '-':24}  "
                    f"{letter.attempts:>5}  {letter.error}"
                )

        return show(args, {"dead_letters": [_letter_json(letter) for letter in letters]}, person)

    return await _with_jetstream(args, work)


def _described(letter: dead_letters.DeadLetter) -> str:
    event = f"{letter.event_type} event {letter.event_id}" if letter.event_type else "an event that could not be decoded"
    return f"dead letter {letter.id} ({event}, parked by {letter.consumer})"


def _replayed(letter: dead_letters.DeadLetter) -> str:
    # A replay is published on the event's subject, not to the consumer that parked it.
    return (
        f"replayed {_described(letter)}: sent again on {letter.subject}; every consumer of it gets it, "
        "those that applied it already skip it"
    )


def _dropped(letter: dead_letters.DeadLetter) -> str:
    return f"dropped {_described(letter)}; it will not be delivered again"


def _acting(call: Any, said: Any) -> Any:
    async def run(_: Any, args: argparse.Namespace) -> int:
        async def work(js: Any) -> int:
            try:
                letter = await call(js, args.id)
            except dead_letters.NoSuchDeadLetter as exc:
                print(f"cumulo-admin: {exc}", file=sys.stderr)
                return 1
            print(said(letter))
            return 0

        return await _with_jetstream(args, work)

    return run


def _dead_letter_id(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("a dead letter's ID is a positive number (see `events dead-letters`)")
    return value


def add_admin_commands(services: Any) -> None:
    events = services.add_parser("events", help="events consumers gave up on: list, replay, drop").add_subparsers(
        dest="events_command", required=True, metavar="COMMAND"
    )
    listing = events.add_parser("dead-letters", help="parked events, oldest first")
    listing.add_argument("--consumer", help="only those of one consumer (e.g. sync-purge)")
    listing.add_argument("--limit", type=_dead_letter_id, default=100, help="at most this many (default: 100)")
    add_json_flag(listing)
    for name, call, said, text in (
        ("replay", dead_letters.replay, _replayed,
         "send a parked event again on its subject, to every consumer of it (once the fix is deployed)"),
        ("drop", dead_letters.drop, _dropped, "forget a parked event"),
    ):
        command = events.add_parser(name, help=text)
        command.add_argument("id", type=_dead_letter_id, help="its ID in `events dead-letters`")
        command.set_defaults(run=_acting(call, said))
    listing.set_defaults(run=_list)
    for sub in (listing, *(events.choices[name] for name in ("replay", "drop"))):
        sub.add_argument("--nats", help="NATS server URL (default: NATS_URL, CUMULO_NATS_URL, nats://127.0.0.1:4222)")
