"""Group commit: calls that each write a little wait together for one transaction. Every
caller is answered only after the transaction holding its write committed, so an
acknowledged write is durable as before; the database sees one commit per group instead of
one per call. Up to `concurrency` groups are written at once, each on its own connection
(1 by default: groups that lock the same rows gain nothing from running side by side).

The window a group collects in adapts to the load: a call that comes alone is written at once;
while calls keep coming (the last group had several, or another group is being written), a
group waits `window` seconds (a millisecond or two) for more before it is written, so that busy
times make fewer, larger groups: a group's cost is mostly its own (round trips, statement set-up),
not its calls'."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        apply: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_group: int = 500,
        concurrency: int = 1,
        window: float = 0.001,
        size: Callable[[T], int] | None = None,
        spread_at: int = 0,
    ) -> None:
        """`apply` writes a group in one transaction and answers each item in order, with a
        result or the exception for that item alone; if it raises, every item gets it.

        `size` and `spread_at`: writers beyond the first start, and keep going, only while the
        calls waiting add up to `spread_at` (by `size`: rows, say): large writes gain from
        running side by side, small ones from being gathered into one group."""
        self._apply = apply
        self._max_group = max_group
        self._concurrency = concurrency
        self._window = window
        self._size = size or (lambda item: 1)
        self._spread_at = spread_at
        self._queued = 0  # the waiting calls' size
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writers = 0  # tasks draining the queue
        self._writing = 0  # of them, those inside a write

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._queued += self._size(item)
        if self._writers == 0 or (self._writers < self._concurrency and self._queued >= self._spread_at):
            self._writers += 1
            # In a context of its own: the writer serves many calls, and must carry no one
            # call's log fields or trace into the others' writes and events.
            asyncio.get_running_loop().create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        """Writes groups while calls wait: those that arrive during a write form the next group."""
        try:
            await self._write_while_waiting()
        except asyncio.CancelledError:  # shutting down: the last writer lets no call wait for ever
            if self._writers == 1:
                waiting, self._waiting, self._queued = self._waiting, [], 0
                for _, future in waiting:
                    future.cancel()
            raise
        finally:
            self._writers -= 1

    async def _write_while_waiting(self) -> None:
        last = 0  # calls in this writer's last group
        while self._waiting:
            large = self._spread_at and self._queued >= self._spread_at  # a group's worth already
            if self._window and (self._writing or last > 1) and not large and len(self._waiting) < self._max_group:
                await asyncio.sleep(self._window)  # another group is being written: gather more
                if not self._waiting:  # another writer took them meanwhile
                    break
            group, self._waiting = self._waiting[: self._max_group], self._waiting[self._max_group :]
            self._queued -= sum(self._size(item) for item, _ in group)
            last = len(group)
            self._writing += 1
            try:
                results = await self._apply([item for item, _ in group])
            except BaseException as exc:  # the whole group failed: each caller hears why
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            finally:
                self._writing -= 1
            for (_, future), result in zip(group, results):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            if self._writers > 1 and self._queued < self._spread_at:
                break  # the others keep up: an extra writer only while large writes queue
