"""Group `locator`:

- `location_report_ratio`: single-point ReportLocations per second through the gateway
  (64 devices of one account in flight, each its own device) beside a bare grpc.aio echo
  server's unary rate with as many in flight, in the same run. Target: at least 0.5.
- `location_batch_ratio`: points per second in reports of 100 points through the gateway,
  beside asyncpg inserting the same rows into a table shaped like the history (executemany
  of 100 rows a call, as many connections as calls in flight). Target: at least 0.3.
- `locate_p99_ms`: Locate (the last position, and a LOCATE command queued) through the
  gateway with 100,000 devices stored, 8 in flight; p50 beside it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sys
import time
import uuid

import asyncpg
import grpc
from google.protobuf import timestamp_pb2

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo.locator.v1 import locator_pb2_grpc
from cumulo_bench.echo import METHOD as ECHO_METHOD
from cumulo_bench.measure import Result, best_of, closed_loop
from cumulo_bench.report import Figure
from cumulo_bench.stack import BenchStack
from cumulo_devstack.testing import PASSWORD
from cumulo_sdk import Cumulo

IN_FLIGHT = 64
BATCH_IN_FLIGHT = 4
BATCH = 100
SECONDS = 4.0
RUNS = 3
DEVICES = 100_000
LOCATE_IN_FLIGHT = 8


class Clock:
    """Distinct, increasing measurement times (a point per device and time is stored once)."""

    def __init__(self) -> None:
        self.base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        self.n = 0

    def next(self) -> timestamp_pb2.Timestamp:
        self.n += 1
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(self.base + dt.timedelta(microseconds=self.n * 10))
        return stamp


def _location(clock: Clock) -> pb.Location:
    return pb.Location(
        latitude=31.2 + random.random() / 10, longitude=121.4 + random.random() / 10, accuracy=10, battery=80,
        source=pb.LOCATION_SOURCE_GPS, measured_at=clock.next(),
    )


async def _seed_devices(dsn: str, account: uuid.UUID, count: int) -> list[str]:
    now = dt.datetime.now(dt.UTC)
    rows = [
        (uuid.uuid4(), account if i < 1000 else uuid.uuid4(), f"dev-{i}", f"device {i}", now, now, 70, 31.2, 121.4, 10.0, 0.0, 0.0, "gps", now)
        for i in range(count)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "devices", schema_name="locator", records=rows,
            columns=["device_key", "account_id", "device_id", "name", "registered_at", "last_seen_at", "battery", "latitude",
                     "longitude", "accuracy", "altitude", "speed", "source", "measured_at"],
        )
        await conn.execute("ANALYZE locator.devices")
    finally:
        await conn.close()
    return [f"dev-{i}" for i in range(1000)]  # the bench account's own


async def _raw_batch_rate(dsn: str) -> float:
    conns = [await asyncpg.connect(dsn) for _ in range(BATCH_IN_FLIGHT)]
    await conns[0].execute("CREATE TABLE IF NOT EXISTS public.bench_locations (LIKE locator.locations INCLUDING ALL)")
    clock = Clock()
    done = 0
    stop_at = time.perf_counter() + SECONDS

    async def writer(conn: asyncpg.Connection) -> None:
        nonlocal done
        account, key = uuid.uuid4(), uuid.uuid4()
        while time.perf_counter() < stop_at:
            now = dt.datetime.now(dt.UTC)
            rows = [
                (account, key, clock.next().ToDatetime(dt.UTC), 31.2, 121.4, 10.0, 0.0, 0.0, 80, "gps", now) for _ in range(BATCH)
            ]
            await conn.executemany(
                "INSERT INTO public.bench_locations (account_id, device_key, measured_at, latitude, longitude, accuracy, altitude,"
                " speed, battery, source, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                rows,
            )
            done += BATCH

    started = time.perf_counter()
    await asyncio.gather(*(writer(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    return done / elapsed


async def run(stack: BenchStack) -> list[Figure]:
    backends = stack.start_services()
    gateway = stack.start_gateway(backends)
    echo = stack.start_echo()
    dsn = stack.asyncpg_dsn("locator")
    async with Cumulo(gateway, transport=stack.transport(gateway)) as client:
        email = f"bench-locator-{dt.datetime.now().timestamp():.0f}@example.com"
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
        account = uuid.UUID((await client.login(email, PASSWORD, device_name="bench")).account_id)
        print(f"  seeding {DEVICES:,} devices ...", file=sys.stderr, flush=True)
        mine = await _seed_devices(dsn, account, DEVICES)
        metadata = client.metadata(await client.access_token())

    clock = Clock()
    async with stack.transport(gateway).channel(gateway) as channel, grpc.aio.insecure_channel(echo) as echo_channel:
        agent = locator_pb2_grpc.DeviceAgentServiceStub(channel)
        owner = locator_pb2_grpc.DeviceLocatorServiceStub(channel)
        echo_method = echo_channel.unary_unary(ECHO_METHOD)
        single = pb.ReportLocationsRequest(device_id=mine[0], locations=[_location(clock)]).SerializeToString()
        turn = {"n": 0}

        async def report_one() -> None:
            turn["n"] += 1
            request = pb.ReportLocationsRequest(device_id=mine[turn["n"] % IN_FLIGHT], locations=[_location(clock)])
            await agent.ReportLocations(request, metadata=metadata, timeout=10)

        async def report_batch() -> None:
            turn["n"] += 1
            request = pb.ReportLocationsRequest(
                device_id=mine[100 + turn["n"] % 100], locations=[_location(clock) for _ in range(BATCH)]
            )
            response = await agent.ReportLocations(request, metadata=metadata, timeout=30)
            assert response.stored == BATCH

        async def echo_call() -> None:
            await echo_method(single, timeout=10)

        async def locate() -> None:
            await owner.Locate(pb.LocateRequest(device_id=random.choice(mine)), metadata=metadata, timeout=10)

        print("  bare grpc.aio echo ...", file=sys.stderr, flush=True)
        echo_result: Result = await best_of(RUNS, lambda: closed_loop(echo_call, in_flight=IN_FLIGHT, seconds=SECONDS))
        print("  single-point reports through the gateway ...", file=sys.stderr, flush=True)
        singles: Result = await best_of(RUNS, lambda: closed_loop(report_one, in_flight=IN_FLIGHT, seconds=SECONDS))
        print(f"  {BATCH}-point reports through the gateway ...", file=sys.stderr, flush=True)
        batches: Result = await best_of(RUNS, lambda: closed_loop(report_batch, in_flight=BATCH_IN_FLIGHT, seconds=SECONDS))
        print(f"  Locate among {DEVICES:,} devices ...", file=sys.stderr, flush=True)
        locates: Result = await closed_loop(locate, in_flight=LOCATE_IN_FLIGHT, seconds=SECONDS * 2)
    print("  raw asyncpg batched inserts ...", file=sys.stderr, flush=True)
    raw = await _raw_batch_rate(dsn)

    return [
        Figure("location_report_ratio", singles.rate, "calls/s", echo_result.rate, "bare grpc.aio echo, same in flight",
               target=0.5, note=f"one point a call, {IN_FLIGHT} in flight over {IN_FLIGHT} devices, gateway -> locator -> PostgreSQL (group commit)"),
        Figure("location_batch_ratio", batches.rate * BATCH, "points/s", raw, f"asyncpg executemany, {BATCH} rows a call",
               target=0.3, note=f"{BATCH} points a call, {BATCH_IN_FLIGHT} in flight"),
        Figure("locate_p99_ms", locates.percentile(0.99), "ms", locates.percentile(0.5), "Locate p50",
               note=f"{DEVICES:,} devices stored, {LOCATE_IN_FLIGHT} in flight; {locates.rate:.0f} calls/s"),
    ]
