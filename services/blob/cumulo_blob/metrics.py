"""Blob's own Prometheus series (cumulo_platform.metrics): uploads open and in flight, downloads
in flight, bytes received and sent, take-outs by state."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import Counter, Gauge

from cumulo_blob.adapters.tables import SCHEMA
from cumulo_blob.downloads import Downloads
from cumulo_blob.uploads import Uploads
from cumulo_platform.metrics import Metrics


def register(metrics: Metrics) -> None:
    metrics.sql_gauge(
        "cumulo_blob_uploads_open", "resumable uploads begun and not completed", [],
        sa.text(f"SELECT count(*) FROM {SCHEMA}.uploads WHERE state = 'open'"),
    )
    metrics.sql_gauge(
        "cumulo_blob_exports", "take-outs by state", ["state"], sa.text(f"SELECT state, count(*) FROM {SCHEMA}.exports GROUP BY state"),
    )


def register_streams(metrics: Metrics, uploads: Uploads, downloads: Downloads) -> None:
    """This replica's streams now (read at each scrape) and the bytes through them."""
    Gauge("cumulo_blob_uploads_in_flight", "upload streams being received by this replica", registry=metrics.registry).set_function(
        lambda: uploads.streams.in_use
    )
    Gauge("cumulo_blob_downloads_in_flight", "download streams being sent by this replica", registry=metrics.registry).set_function(
        lambda: downloads.per_address.in_use
    )
    received = Counter("cumulo_blob_received_bytes", "bytes of files received from clients", registry=metrics.registry)
    sent = Counter("cumulo_blob_sent_bytes", "bytes of files sent to clients through blob (not by signed URL)", registry=metrics.registry)
    uploads.on_received = received.inc
    downloads.on_sent = sent.inc
