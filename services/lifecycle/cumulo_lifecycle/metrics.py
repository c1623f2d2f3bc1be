"""The lifecycle's own Prometheus gauges (cumulo_platform.metrics): accounts by state, what is
due, notices by kind and delivery state, purges in flight and stuck."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import Histogram

from cumulo_lifecycle.adapters.tables import SCHEMA
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_platform.metrics import Metrics


def register(metrics: Metrics, settings: LifecycleSettings) -> Histogram:
    """The lifecycle's gauges; answers the histogram its sweeper's rounds are timed into."""
    stuck = int(settings.purge_stuck_after.total_seconds())
    metrics.sql_gauge(
        "cumulo_lifecycle_accounts", "accounts by lifecycle state", ["state"],
        sa.text(f"SELECT state, count(*) FROM {SCHEMA}.accounts GROUP BY state"),
    )
    metrics.sql_gauge(
        "cumulo_lifecycle_transitions_due", "accounts with a reminder, freeze or deletion due now", [],
        sa.text(f"SELECT count(*) FROM {SCHEMA}.accounts WHERE next_due_at <= now()"),
    )
    metrics.sql_gauge(
        "cumulo_lifecycle_notices", "notices by kind and delivery state", ["kind", "status"],
        sa.text(f"SELECT kind, status, count(*) FROM {SCHEMA}.notices GROUP BY kind, status"),
    )
    metrics.sql_gauge(
        "cumulo_lifecycle_purges_in_flight", "deletions under way", [],
        sa.text(f"SELECT count(*) FROM {SCHEMA}.purges WHERE completed_at IS NULL"),
    )
    metrics.sql_gauge(
        "cumulo_lifecycle_purges_stuck", "deletions with a service silent past CUMULO_LIFECYCLE_PURGE_STUCK_AFTER", [],
        sa.text(
            f"SELECT count(DISTINCT p.account_id) FROM {SCHEMA}.purge_participants p WHERE p.completed_at IS NULL "
            f"AND p.requested_at < now() - make_interval(secs => {stuck})"
        ),
    )
    return Histogram(
        "cumulo_lifecycle_sweep_duration_seconds", "one round of the sweeper", buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300),
        registry=metrics.registry,
    )
