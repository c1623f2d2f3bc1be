"""Who may do what on NATS. Every client is one user, authenticated by its certificate of the
cluster's internal CA (the same identity as its gRPC calls, `cumulo_platform.identity`: the
server maps the certificate's DNS name to the user, `verify_and_map`), and each user may only:

- publish events on its own subjects, `cumulo.events.<its name>.<type>` (an event's subject
  names its producer: a service cannot publish another's, the server refuses it), park events
  its own consumers gave up on (`cumulo.dead.<consumer>`), and use its live subjects
  (`cumulo.<name>.>`: sync's changes, the locator's commands);
- read the event stream through its own durable consumers (`consumers(name)`), and create or update
  the two streams (every service makes sure they exist); not delete or purge a stream, nor a
  message;
- receive replies only on its own inbox prefix (`_INBOX.<name>.`), so that no service reads
  another's deliveries.

The operator (`cumulo-admin events`: dead letters, replays) may use the whole JetStream API and
listen to every event.
Consumers check besides that an event's envelope names the producer its subject names, and
that the producer may produce that type (`cumulo_platform.event_types.EVENT_PRODUCERS`).

`server_config` renders the NATS server's configuration (JSON, which nats-server reads as its
own format): what `make run` and the tests start, and what an operator puts in front of the
cluster's NATS."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable
from typing import Any

from cumulo_platform.event_types import SUBJECT_PREFIX, event_subject
from cumulo_platform.identity import CA_FILE, CERT_FILE, KEY_FILE, OPERATOR, Identity
from cumulo_platform.registry import SERVICES

STREAM = "CUMULO_EVENTS"  # the event stream (cumulo_platform.events takes its name from here)
DEAD_LETTERS = "cumulo.dead."  # a consumer's parked events: cumulo.dead.<consumer>
SERVER_IDENTITY = "nats"  # the NATS server's own certificate (DNS name "nats")


# Every durable consumer of the event stream, by the service that owns it (NATS wildcards match
# whole tokens only, so each is named): the platform's three, and each service's own.
_EVERY_SERVICE = ("purge", "legal-holds", "account-states", "revocations")
_OWN: dict[str, tuple[str, ...]] = {
    "lifecycle": ("access", "accounts"),
    "blob": ("accounts",),
    "locator": ("accounts",),
    "moderation": ("uploads", "links"),
}


def consumers(name: str) -> list[str]:
    """The durable consumers the service `name` may read the stream with (`<name>-<what>`)."""
    return [f"{name}-{what}" for what in (*_EVERY_SERVICE, *_OWN.get(name, ()))]


def users() -> list[str]:
    """Everyone who uses NATS: every service and the operator (not the gateway)."""
    return [*SERVICES, OPERATOR]


def inbox_prefix(name: str) -> str:
    return f"_INBOX.{name}"


def connect_options(identity: Identity) -> dict[str, Any]:
    """nats-py's `connect` options for a client with `identity`: TLS with its certificate, the
    server checked to be the cluster's NATS, replies on its own inbox prefix."""
    return {"name": identity.name, "tls": identity.ssl_context(), "tls_hostname": SERVER_IDENTITY, "inbox_prefix": inbox_prefix(identity.name)}


def permissions(name: str) -> dict[str, Any]:
    """What the user `name` may publish and subscribe to."""
    if name == OPERATOR:
        return {
            "publish": {"allow": [f"{SUBJECT_PREFIX}>", f"{DEAD_LETTERS}>", "$JS.>"]},
            "subscribe": {"allow": [f"{inbox_prefix(name)}.>", f"{SUBJECT_PREFIX}>", f"{DEAD_LETTERS}>"]},
        }
    per_consumer = [
        subject
        for durable in consumers(name)
        for subject in (
            f"{DEAD_LETTERS}{durable}",
            f"$JS.API.CONSUMER.*.{STREAM}.{durable}",
            f"$JS.API.CONSUMER.*.{STREAM}.{durable}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{durable}",
            f"$JS.ACK.{STREAM}.{durable}.>",
        )
    ]
    return {
        "publish": {
            "allow": [
                event_subject(name, ">"),
                f"cumulo.{name}.>",
                "$JS.API.INFO",
                "$JS.API.STREAM.INFO.*",
                "$JS.API.STREAM.CREATE.*",
                "$JS.API.STREAM.UPDATE.*",
                *per_consumer,
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(name)}.>", f"cumulo.{name}.>"]},
    }


def server_config(*, host: str, port: int, store_dir: pathlib.Path | str, identity_dir: pathlib.Path | str, users: Iterable[str]) -> str:
    """The NATS server's configuration: JetStream in `store_dir`, TLS with the server's identity
    of `identity_dir`, a client certificate of the internal CA required and mapped to a user
    of `users` (each with `permissions(user)`)."""
    home = pathlib.Path(identity_dir) / SERVER_IDENTITY
    config = {
        "host": host,
        "port": port,
        "jetstream": {"store_dir": str(store_dir)},
        "tls": {
            "cert_file": str(home / CERT_FILE),
            "key_file": str(home / KEY_FILE),
            "ca_file": str(home / CA_FILE),
            "verify_and_map": True,
            "timeout": 5,
        },
        "authorization": {"users": [{"user": user, "permissions": permissions(user)} for user in users]},
    }
    return json.dumps(config, indent=2)
