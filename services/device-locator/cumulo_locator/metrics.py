"""The locator's own Prometheus gauges (cumulo_platform.metrics): commands by state."""

from __future__ import annotations

import sqlalchemy as sa

from cumulo_locator.adapters.tables import SCHEMA
from cumulo_platform.metrics import Metrics


def register(metrics: Metrics) -> None:
    metrics.sql_gauge(
        "cumulo_locator_commands", "device commands by state", ["state"],
        sa.text(f"SELECT state, count(*) FROM {SCHEMA}.commands GROUP BY state"),
    )
