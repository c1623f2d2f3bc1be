"""Group `lifecycle`:

- `access_ingest_ratio`: access.recorded events published to JetStream and applied by the
  lifecycle process (acknowledged after its commit), beside nats-py publishing the same number
  of messages and pulling + acking them from a durable consumer; both timed from the first
  publish to the last ack, in one run against the same NATS server.
- `sweep_scaling_ratio`: a sweep freezing 10,000 due accounts among 1,000,000, over the same
  sweep among 100,000 (the sweep must cost what is due, not what exists).
- `notice_fanout_per_s`: a terms-change announcement queued as notices for those 1,000,000
  accounts by the lifecycle's batched fan-out, beside one raw `INSERT … SELECT` of the same rows
  into a table like `notices` (same columns and indexes), in the same run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
import uuid

import nats
import sqlalchemy as sa
from nats.js import api as js_api

from cumulo.events.v1 import events_pb2
from cumulo_bench.report import Figure
from cumulo_bench.stack import BenchStack
from cumulo_devstack.testing import nats_connect
from cumulo_lifecycle import bootstrap as lifecycle_bootstrap
from cumulo_lifecycle.adapters.tables import accounts
from cumulo_lifecycle.announcements import Announcements
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.sweeper import Sweeper
from cumulo_platform.clock import SystemClock
from cumulo_platform.db import Database, create_engine, make_envelope
from cumulo_platform.event_types import SUBJECT_PREFIX, event_subject
from cumulo_platform.events import STREAM_NAME, ensure_streams
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.legal_holds import LegalHolds

EVENTS = 20_000
ACCOUNTS = 10_000
DUE = 10_000
SMALL, LARGE = 100_000, 1_000_000
RAW_SUBJECT = SUBJECT_PREFIX + "bench.raw"


async def _publish_all(js, subject: str, payloads: list[bytes]) -> None:
    window = 500
    for start in range(0, len(payloads), window):
        await asyncio.gather(*(js.publish(subject, p) for p in payloads[start : start + window]))


async def _raw_rate(nats_url: str, count: int, payload_size: int) -> float:
    nc = await nats_connect(nats_url)
    js = nc.jetstream()
    durable = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await js.add_consumer(
        STREAM_NAME,
        js_api.ConsumerConfig(durable_name=durable, ack_policy=js_api.AckPolicy.EXPLICIT, filter_subject=RAW_SUBJECT,
                              deliver_policy=js_api.DeliverPolicy.NEW),
    )
    subscription = await js.pull_subscribe_bind(durable=durable, stream=STREAM_NAME)
    payloads = [uuid.uuid4().bytes * (payload_size // 16 + 1) for _ in range(count)]
    started = time.perf_counter()
    publishing = asyncio.create_task(_publish_all(js, RAW_SUBJECT, payloads))
    acked = 0
    while acked < count:
        try:
            batch = await subscription.fetch(1000, timeout=1)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        for msg in batch:
            await msg.ack()
        acked += len(batch)
    await publishing
    elapsed = time.perf_counter() - started
    await nc.close()
    return count / elapsed


def _access_payloads(account_ids: list[str], count: int, base: dt.datetime) -> list[bytes]:
    payloads = []
    for i in range(count):
        account_id = account_ids[i % len(account_ids)]
        at = base + dt.timedelta(milliseconds=i)
        payloads.append(
            make_envelope(
                "access.recorded",
                events_pb2.AccessRecorded(account_id=account_id, accessed_at=timestamp(at), service="bench"),
                account_id=account_id,
                producer="sync",  # a service's, as the lifecycle takes access events from services only
                occurred_at=at,
            ).SerializeToString()
        )
    return payloads


async def _ingest_rate(stack: BenchStack, count: int) -> float:
    """Events through the lifecycle process: from the first publish to the consumer having
    acknowledged all of them (the lifecycle acks a batch after committing it)."""
    nc = await nats_connect(stack.infra.nats.url)
    js = nc.jetstream()
    subject = event_subject("sync", "access.recorded")
    account_ids = [str(uuid.uuid4()) for _ in range(ACCOUNTS)]

    async def drained() -> None:
        while True:
            info = await js.consumer_info(STREAM_NAME, "lifecycle-access")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.01)

    # Warm-up: the accounts exist (as after their creation); the measured events update them.
    await _publish_all(js, subject, _access_payloads(account_ids, ACCOUNTS, dt.datetime.now(dt.UTC)))
    await drained()
    payloads = _access_payloads(account_ids, count, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))
    started = time.perf_counter()
    await _publish_all(js, subject, payloads)
    await drained()
    elapsed = time.perf_counter() - started
    await nc.close()
    return count / elapsed


async def _fill(db: Database, total: int, due: int, *, already: int) -> None:
    """Accounts up to `total`: the new ones not due for months, but `due` of them due now."""
    now = dt.datetime.now(dt.UTC)
    past = now - dt.timedelta(days=400)
    records = []
    for i in range(total - already):
        is_due = i < due
        last = past if is_due else now - dt.timedelta(days=i % 300)
        freeze_at = last + dt.timedelta(days=365)
        records.append(
            (uuid.uuid4(), "active", 0, last, last, freeze_at, 2, now - dt.timedelta(seconds=1) if is_due else freeze_at,
             f"user{i}@example.com", "en", now)
        )
    columns = ["account_id", "state", "version", "created_at", "last_access_at", "freeze_at", "reminders_done",
               "next_due_at", "email", "locale", "updated_at"]
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # asyncpg's own connection: it has COPY
        assert driver is not None
        for start in range(0, len(records), 100_000):
            await driver.copy_records_to_table(
                "accounts", schema_name="lifecycle", records=records[start : start + 100_000], columns=columns
            )
        await conn.execute(sa.text("ANALYZE lifecycle.accounts"))
        await conn.commit()


async def _sweep_seconds(sweeper: Sweeper) -> tuple[float, int]:
    started = time.perf_counter()
    _, done = await sweeper.sweep()
    return time.perf_counter() - started, done


async def run(stack: BenchStack) -> list[Figure]:
    stack.start_services()
    nc = await nats_connect(stack.infra.nats.url)
    await ensure_streams(nc.jetstream())
    await nc.close()

    print(f"  raw JetStream publish + pull + ack of {EVENTS} messages ...", file=sys.stderr, flush=True)
    raw = max([await _raw_rate(stack.infra.nats.url, EVENTS, 150) for _ in range(2)])
    print(f"  {EVENTS} access events through the lifecycle ...", file=sys.stderr, flush=True)
    ingest = max([await _ingest_rate(stack, EVENTS) for _ in range(2)])

    print("  sweeps: 10,000 due among 100,000, then among 1,000,000 accounts ...", file=sys.stderr, flush=True)
    environ = stack.infra.service_environ(CUMULO_LIFECYCLE_SWEEP_BATCH="500")
    settings = LifecycleSettings.from_env(environ)
    await asyncio.to_thread(lifecycle_bootstrap.migrate, settings)
    db = Database(create_engine(settings.platform.database_url), schema="lifecycle", producer="bench", clock=SystemClock())

    async def no_contacts(account_id: str) -> None:
        return None

    sweeper = lifecycle_bootstrap.compose(db, settings, SystemClock(), holds=LegalHolds(db), contacts=no_contacts).sweeper
    try:
        await _fill(db, SMALL, DUE, already=0)
        small_seconds, small_done = await _sweep_seconds(sweeper)
        await _fill(db, LARGE, DUE, already=SMALL)
        large_seconds, large_done = await _sweep_seconds(sweeper)
        async with db.read() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(accounts))).scalar_one()
        print("  a terms-change notice for 1,000,000 accounts: raw INSERT ... SELECT, then the fan-out ...", file=sys.stderr, flush=True)
        raw_rate, raw_rows = await _raw_fanout(db)
        fanout_rate, queued = await _fanout(db, settings)
    finally:
        await db.dispose()
    assert small_done == DUE and large_done == DUE and total == LARGE, (small_done, large_done, total)
    assert queued == raw_rows == LARGE, (queued, raw_rows)

    return [
        Figure("access_ingest_ratio", ingest, "events/s", raw, "nats-py publish + pull + ack, same count", target=0.8,
               note=f"{EVENTS} access.recorded events over {ACCOUNTS} accounts, published -> applied (acked after commit)"),
        Figure("sweep_scaling_ratio", large_seconds, "s", small_seconds, "the same sweep among 100,000 accounts",
               target=1.5, lower_is_better=True,
               note=f"{DUE} freezes (transition, notice, event each) among {LARGE:,} accounts; "
                    f"{DUE / small_seconds:.0f}/s among {SMALL:,}"),
        Figure("notice_fanout_per_s", fanout_rate, "accounts/s", raw_rate, "one INSERT ... SELECT of the same rows", target=0.3,
               note=f"a terms-change notice queued for {LARGE:,} accounts (one e-mail notice each, in its language), "
                    "5,000 accounts per transaction, the cursor kept"),
    ]


async def _raw_fanout(db: Database) -> tuple[float, int]:
    """The building block: every row at once, into a table like `notices` (same columns,
    constraints and indexes), with the same values the fan-out writes."""
    async with db.unit_of_work() as uow:
        await uow.execute(sa.text("DROP TABLE IF EXISTS lifecycle.bench_notices"))
        await uow.execute(sa.text("CREATE TABLE lifecycle.bench_notices (LIKE lifecycle.notices INCLUDING ALL)"))
        await uow.commit()
    started = time.perf_counter()
    async with db.unit_of_work() as uow:
        result = await uow.execute(sa.text(
            """
            INSERT INTO lifecycle.bench_notices
                (notice_id, account_id, kind, cycle, channel, destination, locale, subject, body, status, attempts,
                 next_attempt_at, last_error, created_at)
            SELECT gen_random_uuid(), account_id, 'terms_changed', 'terms:raw', 'email', email, locale,
                   'cumulo''s terms of service change', repeat('x', 400), 'pending', 0, now(), '', now()
            FROM lifecycle.accounts WHERE state IN ('active', 'frozen') AND email IS NOT NULL
            """
        ))
        await uow.commit()
    seconds = time.perf_counter() - started
    async with db.unit_of_work() as uow:
        await uow.execute(sa.text("DROP TABLE lifecycle.bench_notices"))
        await uow.commit()
    return result.rowcount / seconds, int(result.rowcount)


async def _fanout(db: Database, settings: LifecycleSettings) -> tuple[float, int]:
    announcements = Announcements(db, settings, SystemClock())
    await announcements.announce(
        "terms", "bench", starts_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30), ends_at=None, message_en="", message_zh="", actor="bench",
    )
    started = time.perf_counter()
    queued = await announcements.fan_out()
    return queued / (time.perf_counter() - started), queued
