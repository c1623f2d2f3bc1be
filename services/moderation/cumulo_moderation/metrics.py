"""Moderation's own Prometheus gauges (cumulo_platform.metrics): cases not decided, by age."""

from __future__ import annotations

import sqlalchemy as sa

from cumulo_moderation.adapters.tables import SCHEMA
from cumulo_platform.metrics import Metrics


def register(metrics: Metrics) -> None:
    metrics.sql_gauge(
        "cumulo_moderation_open_cases", "cases not decided yet, by age", ["age"],
        sa.text(
            f"SELECT CASE WHEN created_at > now() - interval '1 day' THEN 'under_1d' "
            f"WHEN created_at > now() - interval '7 days' THEN '1d_to_7d' ELSE 'over_7d' END AS age, count(*) "
            f"FROM {SCHEMA}.cases WHERE state <> 'decided' GROUP BY age"
        ),
    )
