"""Watch: which zones changed, told to a user's devices within a second. A push announces
its zone on a NATS core subject after it commits; every replica subscribes once and hands
each announcement to the Watch streams of that account it serves."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Iterator

from nats.aio.msg import Msg

from cumulo_platform.errors import Unavailable
from cumulo_platform.events import Nats
from cumulo_platform.logging import get_logger

log = get_logger(__name__)

SUBJECT = "cumulo.sync.changed"
QUEUE_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class Change:
    zone: str
    token: str
    device: str


class Watchers:
    def __init__(self, nats: Nats) -> None:
        self.nats = nats
        self._listeners: dict[str, set[asyncio.Queue[Change | None]]] = {}
        self._ready = asyncio.Event()
        self._closing = False

    async def run(self) -> None:
        """Subscribes once (nats-py resubscribes after a reconnect), retrying until NATS is there."""
        while True:
            try:
                connection = await self.nats.connection()
                subscription = await connection.subscribe(f"{SUBJECT}.*", cb=self._on_message)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS not there yet: Watch answers UNAVAILABLE meanwhile
                log.warning("watch_subscribe_failed", error=type(exc).__name__)
                await asyncio.sleep(1)
        self._ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            self._ready.clear()
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        account = msg.subject.rsplit(".", 1)[-1]
        listeners = self._listeners.get(account)
        if not listeners:
            return
        try:
            body = json.loads(msg.data)
            change = Change(zone=str(body["zone"]), token=str(body["token"]), device=str(body.get("device", "")))
        except (ValueError, KeyError, TypeError):
            log.warning("watch_message_unreadable")
            return
        for queue in listeners:
            if queue.qsize() < QUEUE_LIMIT:  # a stuck stream loses announcements, not memory
                queue.put_nowait(change)

    async def announce(self, account: str, change: Change) -> None:
        """After the push committed; best effort (a device also syncs when it reconnects)."""
        try:
            connection = await self.nats.connection()
            payload = json.dumps({"zone": change.zone, "token": change.token, "device": change.device}).encode()
            await connection.publish(f"{SUBJECT}.{account}", payload)
        except Exception as exc:
            log.warning("watch_announce_failed", error=type(exc).__name__)

    async def wait_ready(self, timeout: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise Unavailable("change notifications are not available right now; try again", reason="WATCH_UNAVAILABLE") from None

    def close(self) -> None:
        """The service is stopping: every stream gets None and ends (its device reconnects
        to another replica) instead of holding the drain until its grace runs out."""
        self._closing = True
        for listeners in self._listeners.values():
            for queue in listeners:
                queue.put_nowait(None)

    @contextlib.contextmanager
    def listen(self, account: str) -> Iterator[asyncio.Queue[Change | None]]:
        if self._closing:
            raise Unavailable("this server is stopping; watch again", reason="SERVER_STOPPING")
        queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._listeners.setdefault(account, set()).add(queue)
        try:
            yield queue
        finally:
            listeners = self._listeners.get(account)
            if listeners is not None:
                listeners.discard(queue)
                if not listeners:
                    del self._listeners[account]
