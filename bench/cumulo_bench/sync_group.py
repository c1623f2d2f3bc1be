"""Group `sync`:

- `fetch_changes_scaling_ratio`: FetchChanges of the last 100 changes of a zone of 1,000,000
  records over the same call on a zone of 10,000 (through the gateway; median latency of
  each). A pull must cost the changes it returns, not the zone's size.
- `sync_push_ratio`: records/s pushed through the gateway (400-record pushes, 4 in flight,
  each to its own zone) beside asyncpg inserting the same rows (`executemany`, 400 rows a
  call, 4 connections) into a table shaped like the records table, in the same run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
import uuid

import asyncpg

from cumulo.sync.v1 import sync_pb2
from cumulo_bench.measure import closed_loop, median
from cumulo_bench.report import Figure
from cumulo_bench.stack import BenchStack
from cumulo_devstack.testing import PASSWORD
from cumulo_sdk import Cumulo
from cumulo_sync.domain.rules import change_token

SMALL, LARGE = 10_000, 1_000_000
CHANGES = 100
PUSH_BATCH = 400
IN_FLIGHT = 4
SECONDS = 8.0
PAYLOAD = 200


async def _seed_zone(conn: asyncpg.Connection, account: uuid.UUID, name: str, count: int) -> uuid.UUID:
    zone_id = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    await conn.execute(
        "INSERT INTO sync.zones (zone_id, account_id, name, last_seq, record_count, bytes, created_at, modified_at)"
        " VALUES ($1, $2, $3, $4, $4, $5, $6, $6)",
        zone_id, account, name, count, count * PAYLOAD, now,
    )
    payload = os.urandom(PAYLOAD)
    step = 100_000
    for start in range(0, count, step):
        rows = [
            (account, zone_id, f"r{i:08}", "contact", payload, i + 1, False, now, "bench") for i in range(start, min(start + step, count))
        ]
        await conn.copy_records_to_table(
            "records", schema_name="sync", records=rows,
            columns=["account_id", "zone_id", "record_id", "record_type", "payload", "seq", "deleted", "modified_at", "modified_by"],
        )
    return zone_id


async def _fetch_latency(client: Cumulo, zone: str, token: str) -> float:
    latencies = []
    for _ in range(20):  # warm-up
        await client.sync.fetch(zone, token, CHANGES)
    for _ in range(300):
        started = time.perf_counter()
        page = await client.sync.fetch(zone, token, CHANGES)
        latencies.append((time.perf_counter() - started) * 1000)
        assert len(page.records) == CHANGES and not page.more_coming
    return median(latencies)


async def _raw_insert_rate(dsn: str) -> float:
    conns = [await asyncpg.connect(dsn) for _ in range(IN_FLIGHT)]
    await conns[0].execute("CREATE TABLE IF NOT EXISTS public.bench_records (LIKE sync.records INCLUDING ALL)")
    payload = os.urandom(PAYLOAD)
    now = dt.datetime.now(dt.UTC)
    done = 0
    stop_at = time.perf_counter() + SECONDS

    async def writer(conn: asyncpg.Connection, n: int) -> None:
        nonlocal done
        account, zone = uuid.uuid4(), uuid.uuid4()
        seq = 0
        while time.perf_counter() < stop_at:
            rows = [(account, zone, f"w{n}-{seq + i}", "contact", payload, seq + i + 1, False, now, "bench") for i in range(PUSH_BATCH)]
            await conn.executemany(
                "INSERT INTO public.bench_records"
                " (account_id, zone_id, record_id, record_type, payload, seq, deleted, modified_at, modified_by)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                rows,
            )
            seq += PUSH_BATCH
            done += PUSH_BATCH

    started = time.perf_counter()
    await asyncio.gather(*(writer(c, n) for n, c in enumerate(conns)))
    elapsed = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    return done / elapsed


async def _push_rate(client: Cumulo) -> float:
    payload = os.urandom(PAYLOAD)
    counters = {"next": 0}
    run = uuid.uuid4().hex[:8]

    async def push() -> None:
        counters["next"] += 1
        n = counters["next"]
        zone = f"bench-{n % IN_FLIGHT}"
        saves = [sync_pb2.RecordSave(record_id=f"{run}-{n}-{i}", record_type="contact", payload=payload) for i in range(PUSH_BATCH)]
        response = await client.sync.push(zone, saves)
        assert response.results[-1].status == sync_pb2.PUSH_STATUS_SAVED

    result = await closed_loop(push, in_flight=IN_FLIGHT, seconds=SECONDS, warmup=1.0)
    return result.rate * PUSH_BATCH


async def run(stack: BenchStack) -> list[Figure]:
    backends = stack.start_services()
    gateway = stack.start_gateway(backends)
    dsn = stack.asyncpg_dsn("sync")
    async with Cumulo(gateway, transport=stack.transport(gateway)) as client:
        email = f"bench-sync-{dt.datetime.now().timestamp():.0f}@example.com"
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
        account = uuid.UUID((await client.login(email, PASSWORD, device_name="bench")).account_id)

        print(f"  seeding zones of {SMALL:,} and {LARGE:,} records ...", file=sys.stderr, flush=True)
        conn = await asyncpg.connect(dsn)
        try:
            small = await _seed_zone(conn, account, "small", SMALL)
            large = await _seed_zone(conn, account, "large", LARGE)
            await conn.execute("ANALYZE sync.records")
        finally:
            await conn.close()

        print(f"  FetchChanges of the last {CHANGES} changes, each zone ...", file=sys.stderr, flush=True)
        small_ms = await _fetch_latency(client, "small", change_token(small, SMALL - CHANGES))
        large_ms = await _fetch_latency(client, "large", change_token(large, LARGE - CHANGES))

        print(f"  pushes of {PUSH_BATCH} records through the gateway, then raw asyncpg inserts ...", file=sys.stderr, flush=True)
        pushed = await _push_rate(client)
    raw = await _raw_insert_rate(dsn)

    return [
        Figure("fetch_changes_scaling_ratio", large_ms, "ms", small_ms, f"the same FetchChanges on a zone of {SMALL:,}",
               target=1.5, lower_is_better=True,
               note=f"median of 300 FetchChanges({CHANGES}) through the gateway on a zone of {LARGE:,} records"),
        Figure("sync_push_ratio", pushed, "records/s", raw, f"asyncpg executemany, {PUSH_BATCH} rows a call, {IN_FLIGHT} connections",
               target=0.4, note=f"{PUSH_BATCH}-record pushes ({PAYLOAD} B payloads), {IN_FLIGHT} in flight, gateway -> sync -> PostgreSQL"),
    ]
