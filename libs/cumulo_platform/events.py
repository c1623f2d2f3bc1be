"""Events over NATS JetStream: the connection and the streams. The outbox relay is in
`outbox`, the durable consumer in `consumer`, dead letters in `dead_letters`, and the event
types with their messages in `event_types`.

Every client connects with its identity of the internal CA (TLS; the server maps the
certificate to its user and what it may publish, `cumulo_platform.bus_access`). Two streams:
CUMULO_EVENTS holds every event (`cumulo.events.<producer>.<type>`, 7 days); the
dead-letter stream CUMULO_DEAD_LETTERS holds the events a consumer gave up on
(`cumulo.dead.<consumer>`, 30 days) until an operator replays or drops them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable

from nats.aio.client import Client as NatsConnection
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BadRequestError, NotFoundError

from cumulo_platform.bus_access import DEAD_LETTERS, STREAM, connect_options
from cumulo_platform.event_types import SUBJECT_PREFIX
from cumulo_platform.identity import Identity
from cumulo_platform.logging import get_logger
from cumulo_platform.tracing import Tracing

STREAM_NAME = STREAM
DEAD_LETTER_STREAM = "CUMULO_DEAD_LETTERS"
DEAD_LETTER_PREFIX = DEAD_LETTERS
# JetStream de-duplicates by Nats-Msg-Id within this window; the relay retries well inside it.
DUPLICATE_WINDOW = dt.timedelta(minutes=30)

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class Redelivery:
    """How a consumer retries an event whose handler fails: after 1, 2, 4 ... seconds (at most
    `max_delay`), `max_attempts` times in all; then the event goes to the dead-letter stream,
    so one malformed event cannot spin for ever."""

    max_attempts: int = 8
    first_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(self.first_delay * 2 ** (attempt - 1), self.max_delay)


class Nats:
    """A lazily (re)connecting NATS client: services keep serving while NATS is away."""

    def __init__(self, url: str, *, identity: Identity, redelivery: Redelivery | None = None, stream_replicas: int = 1) -> None:
        self.url = url
        self.identity = identity
        self.name = identity.name
        self.redelivery = redelivery or Redelivery()
        self.stream_replicas = stream_replicas  # CUMULO_NATS_STREAM_REPLICAS: see stream_configs
        # Told the durable's name of each event one of this client's consumers parks (metrics).
        self.on_dead_letter: Callable[[str], None] | None = None
        # The service's tracer (cumulo_platform.tracing), None where tracing is off: the relay
        # and the consumers on this client continue events' traces with it.
        self.tracing: Tracing | None = None
        self._connection: NatsConnection | None = None
        self._lock = asyncio.Lock()
        self._stream_ready = False

    async def connection(self) -> NatsConnection:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                connection = NatsConnection()
                try:
                    # Once connected, the client reconnects forever; the first connect must
                    # give up instead, so callers can retry (and not hold transactions open).
                    await asyncio.wait_for(
                        connection.connect(
                            self.url,
                            **connect_options(self.identity),
                            connect_timeout=2,
                            allow_reconnect=True,
                            max_reconnect_attempts=-1,
                            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds; nats-py annotates int but sleeps a float
                            drain_timeout=5,
                            error_cb=self._on_error,
                            disconnected_cb=self._on_disconnected,
                            reconnected_cb=self._on_reconnected,
                        ),
                        timeout=5,
                    )
                except BaseException:
                    await connection.close()
                    raise
                self._connection = connection
            return self._connection

    async def jetstream(self) -> JetStreamContext:
        connection = await self.connection()
        js = connection.jetstream(timeout=5)
        if not self._stream_ready:
            await ensure_streams(js, self.stream_replicas)
            self._stream_ready = True
        return js

    async def close(self) -> None:
        """At the end of the process, once its jobs have stopped: what was published goes out
        (flush), then the connection closes. Not drain(): with the consumers' pull
        subscriptions it waits its whole timeout for their leftover status messages, which
        made every stop 5 s longer; an unacknowledged message is redelivered anyway."""
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed:
            return
        try:
            await connection.flush(timeout=2)
        except Exception as exc:  # NATS away: nothing more can go out
            log.info("nats_flush_failed", error=type(exc).__name__)
        await connection.close()

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats_error", error=type(exc).__name__)

    async def _on_disconnected(self) -> None:
        log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        log.info("nats_reconnected")


def stream_configs(replicas: int = 1) -> list[js_api.StreamConfig]:
    """The two streams as every service makes sure they are: kept `replicas` times in a
    JetStream cluster (CUMULO_NATS_STREAM_REPLICAS: 1 on a single server, 3 on the production
    overlay's three-node cluster). A service's idea of a stream wins over what it finds
    (update_stream), so every service must say the same count: one left at 1 would scale a
    replicated stream down."""
    return [
        js_api.StreamConfig(
            name=name,
            subjects=[subjects],
            storage=js_api.StorageType.FILE,
            retention=js_api.RetentionPolicy.LIMITS,
            duplicate_window=DUPLICATE_WINDOW.total_seconds(),
            max_age=kept.total_seconds(),
            num_replicas=replicas,
        )
        for name, subjects, kept in (
            (STREAM_NAME, SUBJECT_PREFIX + ">", dt.timedelta(days=7)),
            (DEAD_LETTER_STREAM, DEAD_LETTER_PREFIX + ">", dt.timedelta(days=30)),
        )
    ]


async def ensure_streams(js: JetStreamContext, replicas: int = 1, *, update: bool = True) -> None:
    """Creates the streams that are missing; with `update` (the services), brings existing
    ones to this configuration too. `update=False` (an operator's tool) leaves them as they are."""
    for config in stream_configs(replicas):
        if not update and await _exists(js, str(config.name)):
            continue
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


async def _exists(js: JetStreamContext, stream: str) -> bool:
    try:
        await js.stream_info(stream)
    except NotFoundError:
        return False
    return True
