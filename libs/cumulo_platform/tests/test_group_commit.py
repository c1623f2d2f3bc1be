"""Group commit's contract, on its own: every caller gets its own answer, a group's failure
reaches each of its callers, at most `concurrency` groups are written at once, and busy times
make groups of several calls."""

from __future__ import annotations

import asyncio

import pytest

from cumulo_platform.group_commit import GroupCommit


class Writer:
    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.active = 0
        self.most_active = 0
        self.release = asyncio.Event()

    async def apply(self, items: list[int]) -> list[int | BaseException]:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            self.groups.append(items)
            await self.release.wait()
            return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]
        finally:
            self.active -= 1


async def test_each_caller_gets_its_own_answer_or_error() -> None:
    writer = Writer()
    writer.release.set()
    commit: GroupCommit[int, int] = GroupCommit(writer.apply)
    results = await asyncio.gather(*(commit.submit(i) for i in range(10)), return_exceptions=True)
    for i, result in enumerate(results):
        if i % 2:
            assert isinstance(result, ValueError) and str(result) == f"odd {i}"
        else:
            assert result == i * 10
    assert sorted(i for group in writer.groups for i in group) == list(range(10))


async def test_a_failed_group_fails_each_of_its_callers_and_the_next_group_is_written() -> None:
    calls = 0

    async def apply(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return list(items)

    commit: GroupCommit[int, int] = GroupCommit(apply)
    with pytest.raises(RuntimeError, match="database gone"):
        await commit.submit(1)
    assert await commit.submit(2) == 2


@pytest.mark.parametrize("concurrency", [1, 2, 3])
async def test_no_more_groups_at_once_than_allowed_and_busy_times_make_larger_groups(concurrency: int) -> None:
    writer = Writer()
    commit: GroupCommit[int, int] = GroupCommit(writer.apply, concurrency=concurrency)
    calls: list[asyncio.Future[int]] = []
    while writer.active < concurrency:  # a writer per call while the others are busy writing
        assert len(calls) < 50, "the writers did not start"
        calls.append(asyncio.ensure_future(commit.submit(len(calls) * 2)))
        await asyncio.sleep(0.01)
    calls += [asyncio.ensure_future(commit.submit(100 + i * 2)) for i in range(50)]  # queued behind them
    await asyncio.sleep(0.01)
    writer.release.set()
    results = await asyncio.gather(*calls)
    first = len(calls) - 50
    assert sorted(results) == sorted([i * 20 for i in range(first)] + [(100 + i * 2) * 10 for i in range(50)])
    assert writer.most_active == concurrency
    assert len(writer.groups) < len(calls)  # never one group per call under load
    assert max(len(group) for group in writer.groups) > 1


async def test_a_second_writer_only_while_large_writes_queue() -> None:
    writer = Writer()
    commit: GroupCommit[int, int] = GroupCommit(writer.apply, concurrency=2, size=lambda item: item, spread_at=100)
    small = [asyncio.ensure_future(commit.submit(2)) for _ in range(20)]  # 40 rows queued in all
    await asyncio.sleep(0.02)
    assert writer.most_active == 1  # small writes gather behind the one writer
    large = [asyncio.ensure_future(commit.submit(60)), asyncio.ensure_future(commit.submit(80))]  # 140 more rows
    for _ in range(500):  # a second writer takes the large ones side by side
        if writer.active == 2:
            break
        await asyncio.sleep(0.01)
    assert writer.active == 2, "no second writer for the large writes"
    writer.release.set()
    assert await asyncio.gather(*small, *large) == [20] * 20 + [600, 800]
    assert writer.most_active == 2


async def test_a_writer_stopped_at_shutdown_leaves_no_call_waiting_for_ever() -> None:
    writer = Writer()
    commit: GroupCommit[int, int] = GroupCommit(writer.apply)
    writing = asyncio.ensure_future(commit.submit(2))
    for _ in range(500):
        if writer.active:
            break
        await asyncio.sleep(0.01)
    assert writer.active == 1, "the first call was not being written"
    queued = asyncio.ensure_future(commit.submit(4))
    await asyncio.sleep(0)
    (drain,) = [task for task in asyncio.all_tasks() if "GroupCommit._drain" in repr(task.get_coro())]
    drain.cancel()
    for call in (writing, queued):
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(call, 5)
    writer.release.set()
    assert await commit.submit(6) == 60  # the next call finds a writer again
