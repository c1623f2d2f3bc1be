"""What operators watch is what the services expose: every series the alert rules and the
dashboards in deploy/monitoring name is one the services (/metrics) or the gateway (Envoy's
/stats/prometheus) actually expose after a session; the dashboards are what
scripts/dashboards.py writes; the pod monitors scrape ports the manifests declare."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from cumulo_devstack.servers import free_port
from cumulo_devstack.stack import start_envoy

ROOT = pathlib.Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
# A series name (not a label: a label is followed by = or =~).
SERIES = re.compile(r"\b((?:cumulo|envoy)_[a-z0-9_]+)\b(?!\s*=)")


def families(url: str) -> set[str]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")} | {
        re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def test_the_dashboards_are_what_the_generator_writes() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "dashboards.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


async def test_every_series_the_alerts_and_dashboards_name_is_exposed(people, auth, blob, lifecycle, sync, locator, moderation, gateway_ports,
                                                                       tmp_path) -> None:
    person = await people.new()  # a session through the gateway: Envoy has upstream requests to count
    (tmp_path / "a.txt").write_bytes(b"x")
    await person.client.files.upload(tmp_path / "a.txt")
    exposed: set[str] = set()
    for running in (auth, blob, lifecycle, sync, locator, moderation):
        exposed |= await asyncio.to_thread(families, f"http://127.0.0.1:{running.app.runtime.metrics.port}/metrics")
    exposed |= await asyncio.to_thread(families, f"http://127.0.0.1:{gateway_ports[1]}/stats/prometheus")

    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    assert rules["kind"] == "PrometheusRule"
    named: dict[str, set[str]] = {}
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] and rule["labels"]["severity"] in ("page", "ticket") and rule["annotations"]["summary"], rule
            named[rule["alert"]] = set(SERIES.findall(rule["expr"]))
    for path in (MONITORING / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                named[f"{path.name}: {panel['title']}"] = set(SERIES.findall(target["expr"]))
    missing = {where: sorted(series - exposed) for where, series in named.items() if series - exposed}
    assert not missing, missing
    alerted = {s for series in named.values() for s in series}
    for wanted in ("cumulo_lifecycle_purges_stuck", "cumulo_consumer_pending", "cumulo_outbox_oldest_age_seconds",
                   "envoy_server_days_until_first_cert_expiring", "envoy_cluster_upstream_rq_xx", "cumulo_lifecycle_notices"):
        assert wanted in alerted, wanted


def test_the_pod_monitors_scrape_ports_the_manifests_declare() -> None:
    monitors = list(yaml.safe_load_all((MONITORING / "podmonitor.yaml").read_text()))
    ports = {endpoint["port"] for monitor in monitors for endpoint in monitor["spec"]["podMetricsEndpoints"]}
    declared = set()
    for manifest in (ROOT / "deploy" / "k8s" / "base").glob("*.yaml"):
        declared |= set(re.findall(r"- name: (\w+)\n\s+containerPort:", manifest.read_text()))
    assert ports <= declared, ports - declared


def test_the_gateways_metrics_port_serves_envoys_series_and_nothing_else_of_its_admin(backends, infra, tmp_path) -> None:
    """In Kubernetes Envoy's admin stays on loopback (it can stop Envoy); the pod's "metrics"
    port answers `GET /metrics` with the admin's /stats/prometheus, and refuses the rest."""
    port = free_port()
    envoy = start_envoy(infra.tls, tmp_path, backends, identities=infra.identities, metrics_port=port)
    try:
        assert "envoy_server_live" in families(f"http://127.0.0.1:{port}/metrics")
        for path, method in (("/quitquitquit", "POST"), ("/stats/prometheus", "GET"), ("/config_dump", "GET"), ("/metrics", "POST"), ("/metrics/../quitquitquit", "POST")):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            assert refused.value.code == 404, (path, method)
        assert "envoy_server_live" in families(f"http://127.0.0.1:{port}/metrics")  # still running
    finally:
        envoy.stop()
