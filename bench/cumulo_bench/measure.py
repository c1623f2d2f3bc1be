"""Closed-loop load: N callers in flight for a fixed time; throughput and latency percentiles."""

from __future__ import annotations

import asyncio
import dataclasses
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
