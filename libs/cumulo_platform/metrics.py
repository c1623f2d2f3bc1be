"""Prometheus metrics of one service (pip `prometheus-client`), on a port of its own
(CUMULO_METRICS_PORT: plain HTTP `/metrics`, never through the gateway; unset: none).

Every service has the same series, each in a registry of its own (tests run several services
in one process):

- `cumulo_rpc_total{method,code}` and `cumulo_rpc_duration_seconds{method}`: every call, as
  the platform's interceptor sees it;
- `cumulo_outbox_depth`, `cumulo_outbox_oldest_age_seconds`: events written and not yet
  published; `cumulo_outbox_publish_errors_total`: the relay's failed publishes;
- `cumulo_consumer_pending{consumer}`, `cumulo_consumer_redelivered{consumer}`: each durable
  consumer's messages waiting and redelivered (JetStream's consumer info);
  `cumulo_events_dead_lettered_total{consumer}`: events parked;
- `cumulo_rpc_refusals_total{method,reason}`: calls refused with a reason of cumulo's (quota,
  rate limits, ...);
- `cumulo_db_pool_in_use`, `cumulo_db_pool_overflow`: the database pool;
- each service's own gauges from its tables (`sql_gauge`: the lifecycle's accounts by state and
  due transitions, notices by kind and state, purges in flight and stuck; blob's open uploads
  and exports by state; the locator's commands by state; moderation's open cases by age),
  refreshed every `SQL_EVERY` rounds: a count over a big table is not free.

The gauges that need a question (the outbox's depth, the consumers' info) are refreshed by a job
every `every` seconds, not at scrape time: a scrape never waits for the database or NATS."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from cumulo_platform.logging import get_logger

log = get_logger(__name__)
# Seconds: gRPC calls from a millisecond (a cached look-up) to a minute (a bulk export).
SQL_EVERY = 6  # the tables' gauges every 6th round (30 s)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.rpcs = Counter("cumulo_rpc", "gRPC calls served, by method and status code", ["method", "code"], registry=r)
        self.rpc_seconds = Histogram("cumulo_rpc_duration_seconds", "gRPC call duration", ["method"], buckets=BUCKETS, registry=r)
        self.outbox_depth = Gauge("cumulo_outbox_depth", "events in the outbox, not yet published", registry=r)
        self.outbox_age = Gauge("cumulo_outbox_oldest_age_seconds", "age of the oldest event not yet published (0: none)", registry=r)
        self.publish_errors = Counter("cumulo_outbox_publish_errors", "outbox events the relay failed to publish", registry=r)
        self.consumer_pending = Gauge("cumulo_consumer_pending", "messages waiting for a durable consumer", ["consumer"], registry=r)
        self.consumer_redelivered = Gauge(
            "cumulo_consumer_redelivered", "messages a durable consumer has been given more than once", ["consumer"], registry=r
        )
        self.refusals = Counter(
            "cumulo_rpc_refusals", "calls refused with a reason of cumulo's (QUOTA_EXCEEDED, LINK_RATE_LIMITED ...)", ["method", "reason"],
            registry=r,
        )
        self.dead_lettered = Counter("cumulo_events_dead_lettered", "events a consumer gave up on (parked)", ["consumer"], registry=r)
        self.pool_in_use = Gauge("cumulo_db_pool_in_use", "database connections checked out", registry=r)
        self.pool_overflow = Gauge("cumulo_db_pool_overflow", "database connections beyond the pool's size", registry=r)
        self._sql: list[tuple[Gauge, Any, int]] = []
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed: dict[str, Any] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def sql_gauge(self, name: str, documentation: str, labels: Sequence[str], statement: Any) -> None:
        """A gauge whose samples a statement answers: one row per sample, the label values
        first, the value last (no labels: one row, one column)."""
        self._sql.append((Gauge(name, documentation, list(labels), registry=self.registry), statement, len(labels)))

    async def _refresh_sql(self, conn: Any) -> None:
        for gauge, statement, labels in self._sql:
            rows = (await conn.execute(statement)).all()
            if not labels:
                gauge.set(rows[0][0] if rows and rows[0][0] is not None else 0)
                continue
            gauge.clear()  # a label value that went away (no notices of a kind left) goes too
            for row in rows:
                gauge.labels(*[str(v) for v in row[:labels]]).set(row[labels])

    def observe(self, method: str, code: str, seconds: float) -> None:
        """One call: on every call's path, so the labelled children are looked up once each."""
        counted = self._counted.get((method, code))
        if counted is None:
            counted = self._counted[(method, code)] = self.rpcs.labels(method, code)
        timed = self._timed.get(method)
        if timed is None:
            timed = self._timed[method] = self.rpc_seconds.labels(method)
        counted.inc()
        timed.observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """`/metrics` on `port` (0: a free one) in a thread of its own; answers the port."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._server.server_port)
        log.info("metrics_serving", port=self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def refresher(
        self, *, engine: Any, outbox: sa.Table, consumers: Callable[[], Awaitable[Sequence[tuple[str, int, int]]]], every: float = 5.0,
    ) -> Callable[[], Awaitable[None]]:
        """The job that keeps the gauges: the outbox (one indexed count), the pool, and the
        consumers' (name, pending, redelivered)."""

        async def refresh() -> None:
            rounds = 0
            while True:
                try:
                    async with engine.connect() as conn:
                        depth, oldest = (
                            await conn.execute(sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).select_from(outbox))
                        ).one()
                        if rounds % SQL_EVERY == 0:
                            await self._refresh_sql(conn)
                    self.outbox_depth.set(depth)
                    self.outbox_age.set((dt.datetime.now(dt.UTC) - oldest).total_seconds() if oldest is not None else 0)
                    pool = engine.pool
                    self.pool_in_use.set(pool.checkedout())
                    self.pool_overflow.set(max(pool.overflow(), 0))
                    for name, pending, redelivered in await consumers():
                        self.consumer_pending.labels(name).set(pending)
                        self.consumer_redelivered.labels(name).set(redelivered)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # an outage: the gauges keep their last values
                    log.warning("metrics_refresh_failed", error=type(exc).__name__)
                rounds += 1
                await asyncio.sleep(every)

        return refresh
