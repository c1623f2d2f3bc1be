"""Write a Grafana dashboard (JSON) per service into deploy/monitoring/dashboards/, from the
service registry and the series cumulo_platform.metrics exposes. `--check` fails if what is
committed differs from what this writes (tests/test_monitoring.py runs it).

    python scripts/dashboards.py [--check]"""

from __future__ import annotations

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "libs"))

from cumulo_platform.registry import SERVICES  # noqa: E402

OUT = ROOT / "deploy" / "monitoring" / "dashboards"
# Each service's own gauges (its metrics.py), one panel each: (series, legend).
OWN: dict[str, list[tuple[str, str]]] = {
    "lifecycle": [
        ("cumulo_lifecycle_accounts", "{{state}}"),
        ("cumulo_lifecycle_transitions_due", "due now"),
        ("cumulo_lifecycle_notices", "{{kind}} {{status}}"),
        ("cumulo_lifecycle_purges_in_flight", "in flight"),
        ("cumulo_lifecycle_purges_stuck", "stuck"),
    ],
    "blob": [
        ("cumulo_blob_uploads_open", "open"),
        ("cumulo_blob_uploads_in_flight", "streams now"),
        ("cumulo_blob_downloads_in_flight", "streams now"),
        ("cumulo_blob_exports", "{{state}}"),
    ],
    "locator": [("cumulo_locator_commands", "{{state}}")],
    "moderation": [("cumulo_moderation_open_cases", "{{age}}")],
}

# Each service's own counters shown as a rate: (title, series, legend).
RATES: dict[str, list[tuple[str, str, str]]] = {
    "blob": [
        ("Bytes received from clients", "cumulo_blob_received_bytes_total", "in"),
        ("Bytes sent to clients through blob", "cumulo_blob_sent_bytes_total", "out"),
    ],
}


def _panel(index: int, title: str, targets: list[tuple[str, str]], unit: str = "short") -> dict:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend} for i, (expr, legend) in enumerate(targets)],
    }


def dashboard(name: str) -> dict:
    job = f'job=~".*{name}.*"'
    panels = [
        ("Calls per second by method", [(f"sum by (method) (rate(cumulo_rpc_total{{{job}}}[5m]))", "{{method}}")], "reqps"),
        ("Failed calls per second by code", [(f'sum by (code) (rate(cumulo_rpc_total{{{job},code!="OK"}}[5m]))', "{{code}}")], "reqps"),
        (
            "Call duration p50 / p99",
            [
                (f"histogram_quantile(0.5, sum by (le) (rate(cumulo_rpc_duration_seconds_bucket{{{job}}}[5m])))", "p50"),
                (f"histogram_quantile(0.99, sum by (le) (rate(cumulo_rpc_duration_seconds_bucket{{{job}}}[5m])))", "p99"),
            ],
            "s",
        ),
        (
            "Outbox",
            [(f"cumulo_outbox_depth{{{job}}}", "events waiting"), (f"cumulo_outbox_oldest_age_seconds{{{job}}}", "oldest (s)")],
            "short",
        ),
        ("Consumers: messages waiting", [(f"cumulo_consumer_pending{{{job}}}", "{{consumer}}")], "short"),
        (
            "Database pool",
            [(f"cumulo_db_pool_in_use{{{job}}}", "in use"), (f"cumulo_db_pool_overflow{{{job}}}", "overflow")],
            "short",
        ),
        *[(series, [(f"{series}{{{job}}}", legend)], "short") for series, legend in OWN.get(name, [])],
        *[(title, [(f"sum(rate({series}{{{job}}}[5m]))", legend)], "Bps") for title, series, legend in RATES.get(name, [])],
    ]
    return {
        "uid": f"cumulo-{name}",
        "title": f"cumulo / {name}",
        "tags": ["cumulo"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": [_panel(i, title, targets, unit) for i, (title, targets, unit) in enumerate(panels)],
    }


def rendered() -> dict[str, str]:
    return {f"{name}.json": json.dumps(dashboard(name), indent=2, sort_keys=True) + "\n" for name in SERVICES}


def main(argv: list[str]) -> int:
    wanted = rendered()
    if "--check" in argv:
        found = {p.name: p.read_text() for p in OUT.glob("*.json")} if OUT.exists() else {}
        if found != wanted:
            stale = sorted(set(found) ^ set(wanted) | {n for n in wanted if found.get(n) != wanted[n]})
            print(f"dashboards out of date: {', '.join(stale)}; run `python scripts/dashboards.py`", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
