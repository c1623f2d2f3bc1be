"""`cumulo-admin events`: the events consumers gave up on (after their bounded retries), read
straight from NATS JetStream's dead-letter stream.

    cumulo-admin events dead-letters [--consumer NAME]   what was parked, oldest first
    cumulo-admin events replay ID                        send it again, after the fix is deployed
    cumulo-admin events drop ID                          forget it (it stays in the audit of logs)

NATS is found at --nats, NATS_URL or CUMULO_NATS_URL (in Kubernetes, the services' own
setting; next to `make run`, nats://127.0.0.1:4222)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import nats

from cumulo_platform import dead_letters
from cumulo_platform.events import ensure_streams


def _nats_url(environ: Any) -> str:
    return str(environ.get("NATS_URL") or environ.get("CUMULO_NATS_URL") or "nats://127.0.0.1:4222")


async def _with_jetstream(args: argparse.Namespace, work: Any) -> int:
    url = args.nats or _nats_url(args.environ)
    try:
        connection = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False)
    except Exception as exc:
        print(f"cumulo-admin: cannot reach NATS at {url} ({type(exc).__name__}); set --nats or NATS_URL", file=sys.stderr)
        return 1
    try:
        js = connection.jetstream(timeout=5)
        await ensure_streams(js)
        code: int = await work(js)
        return code
    finally:
        await connection.close()


async def _list(_: Any, args: argparse.Namespace) -> int:
    async def work(js: Any) -> int:
        letters = await dead_letters.listing(js, consumer=args.consumer or "", limit=args.limit)
        if not letters:
            print("no dead letters")
            return 0
        print(f"{'ID':>6}  {'FAILED AT':25}  {'CONSUMER':24}  {'EVENT TYPE':24}  {'TRIES':>5}  ERROR")
        for letter in letters:
            print(
                f"{letter.id:>6}  {letter.failed_at:25}  {letter.consumer:24}  {letter.event_type or '-':24}  "
                f"{letter.attempts:>5}  {letter.error}"
            )
        return 0

    return await _with_jetstream(args, work)


def _acting(verb: str, call: Any) -> Any:
    async def run(_: Any, args: argparse.Namespace) -> int:
        async def work(js: Any) -> int:
            try:
                letter = await call(js, args.id)
            except dead_letters.NoSuchDeadLetter as exc:
                print(f"cumulo-admin: {exc}", file=sys.stderr)
                return 1
            print(f"{verb} dead letter {letter.id}: {letter.event_type or 'undecodable'} event {letter.event_id or '-'} for {letter.consumer}")
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
        dest="events_command", required=True
    )
    listing = events.add_parser("dead-letters", help="parked events, oldest first")
    listing.add_argument("--consumer", help="only those of one consumer (e.g. sync-purge)")
    listing.add_argument("--limit", type=_dead_letter_id, default=100)
    for name, verb, call, text in (
        ("replay", "replayed", dead_letters.replay, "publish a parked event again (once the fix is deployed)"),
        ("drop", "dropped", dead_letters.drop, "forget a parked event"),
    ):
        command = events.add_parser(name, help=text)
        command.add_argument("id", type=_dead_letter_id, help="its ID in `events dead-letters`")
        command.set_defaults(run=_acting(verb, call))
    listing.set_defaults(run=_list)
    for sub in (listing, *(events.choices[name] for name in ("replay", "drop"))):
        sub.add_argument("--nats", help="NATS server URL (default: NATS_URL, CUMULO_NATS_URL, nats://127.0.0.1:4222)")
