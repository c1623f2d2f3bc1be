"""The event envelopes JetStream holds on a subject, read by a throw-away consumer."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import nats
import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing.channels import identity
from cumulo_platform.bus_access import connect_options
from cumulo_platform.events import STREAM_NAME
from cumulo_platform.identity import OPERATOR


@dataclasses.dataclass
class Delivered:
    """One message of the stream: the envelope, the bytes it came in, its headers."""

    subject: str
    envelope: events_pb2.Envelope
    data: bytes
    headers: dict[str, str]


async def nats_connect(nats_url: str, as_: str = OPERATOR, **options: Any) -> NatsClient:
    """A NATS connection of the test's, as the session's identity `as_` (the operator, who
    may read every stream and publish every event, unless another is named)."""
    return await nats.connect(nats_url, **connect_options(identity(as_)), **options)


async def read_stream(
    nats_url: str,
    subject: str,
    where: Callable[[events_pb2.Envelope], bool] = lambda envelope: True,
    *,
    at_least: int = 1,
    timeout: float = 20.0,
    what: str | None = None,
    skip_undecodable: bool = True,
) -> list[Delivered]:
    """Every message the stream holds on `subject` (wildcards allowed: `event_filter(type)` is
    every producer's events of a type) whose envelope passes
    `where`, read by a throw-away consumer; read again until at least `at_least` are there,
    failing after `timeout` seconds.

    A message that is not an envelope (another test's deliberately broken one) is skipped,
    or fails the read if `skip_undecodable` is false."""
    connection = await nats_connect(nats_url, connect_timeout=2, allow_reconnect=False)
    try:
        js = connection.jetstream(timeout=5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found: list[Delivered] = []
            try:
                subscription = await js.pull_subscribe(
                    subject,
                    stream=STREAM_NAME,
                    config=js_api.ConsumerConfig(
                        ack_policy=js_api.AckPolicy.NONE, deliver_policy=js_api.DeliverPolicy.ALL, inactive_threshold=30
                    ),
                )
            except NotFoundError:  # the stream appears with the first published event
                subscription = None
            if subscription is not None:
                pending = (await subscription.consumer_info()).num_pending or 0
                while pending > 0:
                    try:
                        messages = await subscription.fetch(min(pending, 256), timeout=2)
                    except nats.errors.TimeoutError:
                        if loop.time() > deadline:  # never a partial read: it could hide a duplicate
                            raise AssertionError(f"the stream's messages on {subject} unread after {timeout} s") from None
                        continue  # a busy machine: the pending messages are there, ask again
                    pending -= len(messages)
                    for message in messages:
                        try:
                            envelope = events_pb2.Envelope.FromString(message.data)
                        except DecodeError:
                            if skip_undecodable:
                                continue
                            raise
                        if where(envelope):
                            found.append(Delivered(message.subject, envelope, message.data, dict(message.headers or {})))
                await subscription.unsubscribe()
            if len(found) >= at_least:
                return found
            if loop.time() > deadline:
                raise AssertionError(f"{what or 'envelopes on ' + subject}: {len(found)} within {timeout} s, wanted {at_least}")
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
