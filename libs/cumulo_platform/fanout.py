"""Live notices between replicas: a NATS core subject `<subject>.<key>` that every replica
subscribes to once, handed to the streams of that key the replica serves (a user's Watch,
a device's command stream). At most once, by design: a stream that reconnects reads the
state from the database first, so a lost notice only delays."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

from nats.aio.msg import Msg

from cumulo_platform.clock import Clock
from cumulo_platform.errors import Unauthenticated, Unavailable
from cumulo_platform.events import Nats
from cumulo_platform.logging import get_logger
from cumulo_platform.tokens import Principal

log = get_logger(__name__)

QUEUE_LIMIT = 1000
HEARTBEAT = b""  # what `notices` yields after a quiet interval


class Fanout:
    def __init__(self, nats: Nats, subject: str) -> None:
        self.nats = nats
        self.subject = subject
        self._listeners: dict[str, set[asyncio.Queue[bytes | None]]] = {}
        self._ready = asyncio.Event()
        self._closing = False

    async def run(self) -> None:
        """Subscribes once (nats-py resubscribes after a reconnect), retrying until NATS is there."""
        while True:
            try:
                connection = await self.nats.connection()
                subscription = await connection.subscribe(f"{self.subject}.*", cb=self._on_message)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS not there yet: streams answer UNAVAILABLE meanwhile
                log.warning("fanout_subscribe_failed", subject=self.subject, error=type(exc).__name__)
                await asyncio.sleep(1)
        self._ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            self._ready.clear()
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        for queue in self._listeners.get(msg.subject.rsplit(".", 1)[-1], ()):
            if queue.qsize() < QUEUE_LIMIT:  # a stuck stream loses notices, not memory
                queue.put_nowait(msg.data)

    async def publish(self, key: str, payload: bytes = b"") -> None:
        """After the change committed; best effort (logged, never raised)."""
        try:
            connection = await self.nats.connection()
            await connection.publish(f"{self.subject}.{key}", payload)
        except Exception as exc:
            log.warning("fanout_publish_failed", subject=self.subject, error=type(exc).__name__)

    async def wait_ready(self, timeout: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise Unavailable("live notices are not available right now; try again", reason="NOTICES_UNAVAILABLE") from None

    def close(self) -> None:
        """The service is stopping: every stream gets None and ends (its client reconnects
        to another replica) instead of holding the drain until its grace runs out."""
        self._closing = True
        for listeners in self._listeners.values():
            for queue in listeners:
                queue.put_nowait(None)

    @contextlib.contextmanager
    def listen(self, key: str) -> Iterator[asyncio.Queue[bytes | None]]:
        if self._closing:
            raise Unavailable("this server is stopping; try again", reason="SERVER_STOPPING")
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._listeners.setdefault(key, set()).add(queue)
        try:
            yield queue
        finally:
            listeners = self._listeners.get(key)
            if listeners is not None:
                listeners.discard(queue)
                if not listeners:
                    del self._listeners[key]

    async def notices(self, key: str, *, principal: Principal, clock: Clock, heartbeat: float) -> AsyncIterator[bytes]:
        """What a long-lived stream of `key` waits for: each notice's payload as it comes, and
        HEARTBEAT after `heartbeat` quiet seconds. The stream lives as long as the access token
        it was opened with (a revoked or deleted account's client must come back with a fresh
        one: UNAUTHENTICATED TOKEN_EXPIRED), and ends at once when the service stops
        (UNAVAILABLE SERVER_STOPPING). Yields HEARTBEAT first, once listening."""
        await self.wait_ready()

        def left() -> float:
            return principal.expires_at - clock.now().timestamp()

        with self.listen(key) as queue:
            yield HEARTBEAT
            while True:
                try:
                    payload = await asyncio.wait_for(queue.get(), timeout=max(min(heartbeat, left()), 0.0))
                except TimeoutError:
                    payload = HEARTBEAT
                if left() <= 0:
                    raise Unauthenticated("the access token expired; open the stream again with a fresh one", reason="TOKEN_EXPIRED")
                if payload is None:
                    raise Unavailable("this server is stopping; open the stream again", reason="SERVER_STOPPING")
                yield payload
