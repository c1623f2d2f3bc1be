"""Closed-loop load: N callers in flight for a fixed time; throughput and latency percentiles."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import time
from collections.abc import Awaitable, Callable


@dataclasses.dataclass
class Result:
    calls: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


async def closed_loop(call: Callable[[], Awaitable[object]], *, in_flight: int, seconds: float, warmup: float = 0.5) -> Result:
    stop_at = time.perf_counter() + warmup + seconds
    measure_from = time.perf_counter() + warmup
    latencies: list[float] = []

    async def caller() -> None:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            await call()
            ended = time.perf_counter()
            if started >= measure_from:
                latencies.append((ended - started) * 1000)

    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return Result(len(latencies), seconds, latencies)


async def best_of(runs: int, make: Callable[[], Awaitable[Result]]) -> Result:
    """The median run by rate: one noisy neighbour should not decide the figure."""
    results = [await make() for _ in range(runs)]
    return sorted(results, key=lambda r: r.rate)[len(results) // 2]


def median(values: list[float]) -> float:
    return statistics.median(values)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def cpu_us_per_call(pid: int, call: Callable[[], Awaitable[object]], *, in_flight: int, seconds: float) -> float:
    """The CPU microseconds the server process `pid` spends per call under a closed-loop load
    (every call counted, including those still in flight when the clock started)."""
    done = 0

    async def counted() -> None:
        nonlocal done
        await call()
        done += 1

    await closed_loop(call, in_flight=in_flight, seconds=0.5, warmup=0)  # warm the server up first
    before = process_cpu_seconds(pid)
    await closed_loop(counted, in_flight=in_flight, seconds=seconds, warmup=0)
    used = process_cpu_seconds(pid) - before
    return used / max(done, 1) * 1e6
