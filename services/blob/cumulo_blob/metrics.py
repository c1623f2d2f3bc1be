"""Blob's own Prometheus gauges (cumulo_platform.metrics): uploads open, take-outs by state."""

from __future__ import annotations

import sqlalchemy as sa

from cumulo_blob.adapters.tables import SCHEMA
from cumulo_platform.metrics import Metrics


def register(metrics: Metrics) -> None:
    metrics.sql_gauge(
        "cumulo_blob_uploads_open", "resumable uploads begun and not completed", [],
        sa.text(f"SELECT count(*) FROM {SCHEMA}.uploads WHERE state = 'open'"),
    )
    metrics.sql_gauge(
        "cumulo_blob_exports", "take-outs by state", ["state"], sa.text(f"SELECT state, count(*) FROM {SCHEMA}.exports GROUP BY state"),
    )
