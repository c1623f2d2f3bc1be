"""A job's loop honours its cancellation even when asyncio.wait_for swallowed it (Python 3.11,
CPython gh-86296): otherwise a service's stop, or a test's, waits for ever."""

from __future__ import annotations

import asyncio

from cumulo_platform.runtime import raise_if_cancelled


async def _job(guarded: bool, released: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not released.is_set():
        answer = loop.create_future()
        loop.call_soon(answer.set_result, None)  # the result arrives together with the cancel
        try:
            await asyncio.wait_for(answer, 1)
        except TimeoutError:
            pass
        if guarded:
            raise_if_cancelled()


async def _stuck_after_cancel(guarded: bool, times: int = 50) -> int:
    stuck = 0
    released = asyncio.Event()  # lets a stuck loop end by itself once counted
    for _ in range(times):
        task = asyncio.create_task(_job(guarded, released))
        await asyncio.sleep(0)
        task.cancel()
        _, pending = await asyncio.wait({task}, timeout=0.2)
        stuck += len(pending)
    released.set()
    await asyncio.sleep(0.1)
    return stuck


async def test_a_swallowed_cancellation_is_honoured_by_a_guarded_loop():
    assert await _stuck_after_cancel(guarded=True) == 0


async def test_without_the_guard_the_loop_runs_on():
    """The premise: on this Python a plain loop does get stuck (if a later Python stops
    swallowing, this test says the guard can go)."""
    assert await _stuck_after_cancel(guarded=False, times=5) > 0
