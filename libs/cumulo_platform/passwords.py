"""Argon2id password hashing, off the event loop (a hash costs tens of milliseconds and
64 MiB), on a small pool of its own so that a burst of sign-ups or logins cannot take the
process's memory or the default executor's threads.

Admission to the pool is bounded and split in two kinds of work:

- *verify* (a login, a password confirmation) may use every worker, and a waiting verify
  always starts before a waiting new hash;
- *new hash* (a registration, a password change) may use at most `workers - 1` workers at
  once, so one worker is always left to verifies however many sign-ups arrive (with a single
  worker they share it, verifies first).

Each kind has its own bounded queue. Work that finds its queue full is refused at once with
RESOURCE_EXHAUSTED (reason PASSWORD_HASHING_BUSY) and a retry delay, instead of waiting behind
a queue that a flood keeps long: a flood of registrations fills only the new-hash queue, and
logins keep their worker and their queue. Why a reserved worker and not only a priority: a
priority alone lets new hashes take every worker while no login waits, and the next login
then waits for a whole hash; with a worker kept free it starts at once.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cumulo_platform.errors import ResourceExhausted

T = TypeVar("T")
Kind = Literal["verify", "new_hash"]

DEFAULT_WORKERS = 2
# Waiting work per kind beyond the running one(s). A hash takes ~0.1 s on a 2-core machine, so
# a full verify queue is a wait of about a second and a half; past that a client is better
# told to come back.
DEFAULT_VERIFY_QUEUE = 32
DEFAULT_NEW_HASH_QUEUE = 8
BUSY_REASON = "PASSWORD_HASHING_BUSY"
_FIRST_ESTIMATE = 0.1  # seconds per hash, until one was measured


class Passwords:
    def __init__(
        self,
        hasher: PasswordHasher | None = None,
        *,
        concurrency: int = DEFAULT_WORKERS,
        verify_queue: int = DEFAULT_VERIFY_QUEUE,
        new_hash_queue: int = DEFAULT_NEW_HASH_QUEUE,
    ) -> None:
        if concurrency < 1 or verify_queue < 0 or new_hash_queue < 0:
            raise ValueError("password hashing needs at least one worker and queues of no negative length")
        self._hasher = hasher or PasswordHasher()  # Argon2id, RFC 9106 low-memory profile
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        self._workers = concurrency
        self._new_hash_workers = max(concurrency - 1, 1)
        self._queue_limit: dict[Kind, int] = {"verify": verify_queue, "new_hash": new_hash_queue}
        self._waiting: dict[Kind, collections.deque[asyncio.Future[None]]] = {
            "verify": collections.deque(),
            "new_hash": collections.deque(),
        }
        self._running: dict[Kind, int] = {"verify": 0, "new_hash": 0}
        self._seconds_per_hash = _FIRST_ESTIMATE
        self._loop: asyncio.AbstractEventLoop | None = None
        # Verified against when the account does not exist, so timing does not tell.
        self._decoy = self._hasher.hash("cumulo-decoy-password")

    async def hash(self, password: str) -> str:
        """A new hash (registration, new password): refused at once when its queue is full."""
        return await self._run("new_hash", lambda: self._hasher.hash(password))

    async def verify(
        self, password_hash: str | None, password: str, *, admitted: Callable[[], Awaitable[None]] | None = None
    ) -> bool:
        """Whether `password` matches (always False without a hash, after as long a check).
        `admitted` runs once a worker is this check's, before the hash: where an attempt is
        counted against a lock-out, a check refused as busy is never counted, and one that
        `admitted` refuses (raises) gives its worker back unchecked."""

        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._decoy, password) and password_hash is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await self._run("verify", check, admitted)

    def waiting(self, kind: Kind) -> int:
        return len(self._waiting[kind])

    def running(self, kind: Kind) -> int:
        return self._running[kind]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- admission ------------------------------------------------------------------------

    async def _run(self, kind: Kind, work: Callable[[], T], admitted: Callable[[], Awaitable[None]] | None = None) -> T:
        self._loop = asyncio.get_running_loop()
        await self._admit(kind)
        if admitted is not None:
            try:
                await admitted()
            except BaseException:
                self._release(kind, None)
                raise
        # The slot is given back when the thread is done, not when the caller stops waiting:
        # a cancelled call's hash still runs to its end, and holds its 64 MiB until then.
        started = time.monotonic()
        try:
            future = self._pool.submit(work)
        except BaseException:
            self._release(kind, None)
            raise
        future.add_done_callback(lambda _: self._release_threadsafe(kind, started))
        return await asyncio.wrap_future(future)

    def _may_start(self, kind: Kind) -> bool:
        if self._running["verify"] + self._running["new_hash"] >= self._workers:
            return False
        if kind == "verify":
            return True
        return self._running["new_hash"] < self._new_hash_workers and not self._waiting["verify"]

    async def _admit(self, kind: Kind) -> None:
        if not self._waiting[kind] and self._may_start(kind):
            self._running[kind] += 1
            return
        waiting = self._waiting[kind]
        if len(waiting) >= self._queue_limit[kind]:
            raise ResourceExhausted(
                "the server is busy checking passwords; try again shortly", reason=BUSY_REASON, retry_after=self._retry_after(kind)
            )
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release(kind, None)  # given a worker just as the caller gave up
            else:
                waiting.remove(turn)
            raise

    def _release_threadsafe(self, kind: Kind, started: float) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._release, kind, time.monotonic() - started)
        except RuntimeError:  # the loop closed meanwhile (shutdown)
            pass

    def _release(self, kind: Kind, seconds: float | None) -> None:
        self._running[kind] -= 1
        if seconds is not None:
            self._seconds_per_hash = 0.8 * self._seconds_per_hash + 0.2 * seconds
        for next_kind in ("verify", "new_hash"):
            waiting = self._waiting[next_kind]
            while waiting and self._may_start(next_kind):
                turn = waiting.popleft()
                if turn.done():  # its caller gave up
                    continue
                self._running[next_kind] += 1
                turn.set_result(None)

    def _retry_after(self, kind: Kind) -> dt.timedelta:
        """About when the queue will have room again: the work ahead, at the measured pace."""
        workers = self._workers if kind == "verify" else self._new_hash_workers
        ahead = len(self._waiting[kind]) + self._running[kind]
        return dt.timedelta(seconds=max(1, math.ceil(ahead * self._seconds_per_hash / workers)))
