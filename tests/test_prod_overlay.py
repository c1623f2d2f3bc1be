"""The production overlay (deploy/k8s/overlays/prod), checked offline: its CloudNativePG objects
against the operator's API schema, every pod against Pod Security "restricted", and what
production needs of each Deployment (requests and limits, probes, a disruption budget, an
autoscaler, spreading, a grace period that covers the drain), the migrations' place in a
release, the database's roles and the NATS cluster's users matching the services'.
(kubernetes-validate --strict on the built-in kinds is tests/test_deploy.py's; that the
processes start from these manifests is tests/test_manifests_start.py's.)"""

from __future__ import annotations

import copy
import json
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from cumulo_devstack.testing.manifests import of_kind, render
from cumulo_platform.bus_access import consumers, permissions, users
from cumulo_platform.migrations import role_statements, service_role
from cumulo_platform.registry import SERVICES
from cumulo_platform.runtime import JOB_STOP_TIMEOUT
from cumulo_platform.settings import Env, PlatformSettings

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROD = ROOT / "deploy" / "k8s" / "overlays" / "prod"
SCHEMAS = ROOT / "deploy" / "k8s" / "schemas"
BIN = pathlib.Path(sys.executable).parent
# The kinds of the operators' custom resources the overlay may declare: each has a validator
# in deploy/k8s/schemas (validate.mjs).
OPERATOR_KINDS = {("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "ScheduledBackup")}
# The Secrets the cluster's operators make (listed in the overlay's kustomization.yaml), never
# in the repository: the manifests may name them without rendering them.
EXTERNAL_SECRETS = {
    "cumulo-secrets", "cumulo-db-backup-s3", "gateway-tls",
    *(f"cumulo-db-{name}" for name in SERVICES),
    *(f"cumulo-identity-{name}" for name in [*SERVICES, "gateway", "operator"]),
    *(f"cumulo-secrets-{name}" for name in ("auth", "moderation")),
}
# After the drain: the background jobs' stop (JOB_STOP_TIMEOUT), then the last outbox flush
# and NATS flush, which settings.py budgets at 5 s.
CLEANUPS = 5.0
POD_KINDS = {"Deployment", "Job", "CronJob"}


@pytest.fixture(scope="module")
def prod() -> list[dict[str, Any]]:
    return render(PROD)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key, [])


def config(objects: list[dict[str, Any]]) -> dict[str, str]:
    [configmap] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("cumulo-config")]
    return dict(configmap["data"])


# --- the operators' custom resources ------------------------------------------------------------


def operator_check(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """deploy/k8s/schemas/validate.mjs on `objects`: per object, its errors (none: valid)."""
    if not (SCHEMAS / "node_modules" / "@kubernetes-models" / "cloudnative-pg").is_dir():
        pytest.fail("the validators are not installed: `make test` installs them (npm ci in deploy/k8s/schemas)")
    checked = subprocess.run(
        [str(BIN / "node"), "validate.mjs"], input=json.dumps(objects), capture_output=True, text=True, timeout=120, cwd=SCHEMAS,
    )
    assert checked.returncode == 0, checked.stderr
    results: list[dict[str, Any]] = json.loads(checked.stdout)
    return results


def test_every_custom_resource_is_one_an_operators_schema_checks_and_they_pass(prod):
    builtin_groups = {"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}
    custom = [o for o in prod if o["apiVersion"] not in builtin_groups]
    assert {(o["apiVersion"], o["kind"]) for o in custom} == OPERATOR_KINDS
    assert [(r["kind"], r["name"], r["errors"]) for r in operator_check(custom)] == [(o["kind"], o["metadata"]["name"], []) for o in custom]


def _misspelled(cluster: dict[str, Any]) -> None:
    cluster["spec"]["instance"] = cluster["spec"].pop("instances")


def _mistyped(cluster: dict[str, Any]) -> None:
    cluster["spec"]["instances"] = "3"


def _nested_misspelling(cluster: dict[str, Any]) -> None:
    store = cluster["spec"]["backup"]["barmanObjectStore"]
    store["destinationPth"] = store.pop("destinationPath")


def _bad_enum(cluster: dict[str, Any]) -> None:
    cluster["spec"]["primaryUpdateStrategy"] = "whenever"


@pytest.mark.parametrize("spoil", [_misspelled, _mistyped, _nested_misspelling, _bad_enum], ids=lambda f: f.__name__.strip("_"))
def test_the_schema_check_refuses_a_spoiled_cluster(prod, spoil):
    """The check is not a formality: a misspelled field (which the generated validators alone
    would let through), a wrong type, a wrong value all fail it."""
    cluster = copy.deepcopy(of_kind(prod, "Cluster")["cumulo-db"])
    spoil(cluster)
    [result] = operator_check([cluster])
    assert result["errors"], spoil.__name__


def test_a_scheduled_backup_without_its_schedule_is_refused(prod):
    backup = copy.deepcopy(of_kind(prod, "ScheduledBackup")["cumulo-db-nightly"])
    del backup["spec"]["schedule"]
    [result] = operator_check([backup])
    assert any("schedule" in error for error in result["errors"])


# --- Pod Security "restricted" ----------------------------------------------------------------

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec the Pod Security Standards' "restricted" profile (baseline's rules
    included) refuses, plus a writable root filesystem, which cumulo's production refuses too."""
    found: list[str] = []
    pod = spec.get("securityContext", {})
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            found.append(f"pod: {host}")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: {', '.join(sorted(kinds - ALLOWED_VOLUMES))}")
    for sysctl in pod.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"pod: sysctl {sysctl['name']}")
    if pod.get("seLinuxOptions", {}).keys() & {"user", "role"}:
        found.append("pod: seLinuxOptions user/role")
    if pod.get("runAsUser") == 0:
        found.append("pod: runAsUser 0")
    if pod.get("appArmorProfile", {}).get("type", "RuntimeDefault") not in {"RuntimeDefault", "Localhost"}:
        found.append("pod: appArmorProfile")
    pod_seccomp = pod.get("seccompProfile", {}).get("type")
    if pod_seccomp not in {None, "RuntimeDefault", "Localhost"}:
        found.append(f"pod: seccompProfile {pod_seccomp}")
    for container in containers(spec):
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            found.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser") == 0:
            found.append(f"{name}: runAsUser 0")
        seccomp = context.get("seccompProfile", {}).get("type", pod_seccomp)
        if seccomp not in {"RuntimeDefault", "Localhost"}:
            found.append(f"{name}: seccompProfile {seccomp}")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: capabilities add {sorted(set(capabilities['add']) - {'NET_BIND_SERVICE'})}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount")
        if context.get("seLinuxOptions", {}).keys() & {"user", "role"}:
            found.append(f"{name}: seLinuxOptions user/role")
        if context.get("appArmorProfile", {}).get("type", "RuntimeDefault") not in {"RuntimeDefault", "Localhost"}:
            found.append(f"{name}: appArmorProfile")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{name}: hostPort")
        if context.get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: root filesystem is writable")
    return found


def test_every_pod_satisfies_pod_security_restricted(prod):
    workloads = [o for o in prod if o["kind"] in POD_KINDS]
    assert {o["kind"] for o in workloads} >= {"Deployment", "Job"}
    assert {f"{o['kind']}/{o['metadata']['name']}": restricted_violations(pod_spec(o)) for o in workloads} == {
        f"{o['kind']}/{o['metadata']['name']}": [] for o in workloads
    }


def test_the_namespace_enforces_pod_security_restricted(prod):
    labels = of_kind(prod, "Namespace")["cumulo"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


SPOILS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "root": (lambda s: s["securityContext"].update(runAsUser=0), "pod: runAsUser 0"),
    "non-root unsaid": (lambda s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot is not true"),
    "escalation": (lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
    "capability": (lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "capabilities add"),
    "capabilities kept": (lambda s: s["containers"][0]["securityContext"].pop("capabilities"), "do not drop ALL"),
    "no seccomp": (lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile None"),
    "host path": (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "volume h: hostPath"),
    "host network": (lambda s: s.update(hostNetwork=True), "pod: hostNetwork"),
    "privileged": (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "privileged"),
    "writable root": (lambda s: s["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False), "root filesystem is writable"),
}


@pytest.mark.parametrize("spoil", sorted(SPOILS))
def test_the_restricted_check_finds_each_broken_rule(prod, spoil):
    spec = copy.deepcopy(pod_spec(of_kind(prod, "Deployment")["auth"]))
    change, expected = SPOILS[spoil]
    change(spec)
    assert any(expected in violation for violation in restricted_violations(spec)), restricted_violations(spec)


# --- what each Deployment has -----------------------------------------------------------------

SERVING = [*SERVICES, "gateway"]  # every Deployment but the operator's toolbox, which serves nothing


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return bool(selector.get("matchLabels")) and selector["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", [*SERVING, "toolbox"])
def test_every_container_has_requests_and_limits(prod, name):
    for container in containers(pod_spec(of_kind(prod, "Deployment")[name])):
        resources = container.get("resources", {})
        assert set(resources.get("requests", {})) >= {"cpu", "memory"}, container["name"]
        assert set(resources.get("limits", {})) >= {"cpu", "memory"}, container["name"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_is_probed_over_its_grpc_health_port(prod, name):
    [container] = pod_spec(of_kind(prod, "Deployment")[name])["containers"]
    health = SERVICES[name].health_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == health, probe
    # Ready means the service itself serves (NOT_SERVING while it drains).
    assert container["readinessProbe"]["grpc"]["service"]


def test_the_gateway_is_probed(prod):
    [envoy] = pod_spec(of_kind(prod, "Deployment")["gateway"])["containers"]
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(envoy)


@pytest.mark.parametrize("name", SERVING)
def test_every_deployment_has_a_disruption_budget_an_autoscaler_and_is_spread(prod, name):
    deployment = of_kind(prod, "Deployment")[name]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budgets = [b for b in of_kind(prod, "PodDisruptionBudget").values() if matches(b["spec"]["selector"], labels)]
    assert len(budgets) == 1 and budgets[0]["spec"].get("maxUnavailable", 0) == 1
    [scaler] = [h for h in of_kind(prod, "HorizontalPodAutoscaler").values() if h["spec"]["scaleTargetRef"]["name"] == name]
    assert scaler["spec"]["scaleTargetRef"]["kind"] == "Deployment" and scaler["spec"]["minReplicas"] >= 2
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in scaler["spec"]["metrics"])
    # The autoscaler owns the count: an apply must not reset it.
    assert "replicas" not in deployment["spec"]
    spread = pod_spec(deployment)["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(matches(c["labelSelector"], labels) for c in spread)


def test_the_lifecycle_also_scales_on_its_consumers_backlog(prod):
    """A custom metric that exists: the gauge the services expose, for a consumer the lifecycle
    has, served by the Prometheus Adapter rule kept beside the overlay."""
    scaler = of_kind(prod, "HorizontalPodAutoscaler")["lifecycle"]
    [pods] = [m["pods"] for m in scaler["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods["metric"]["name"] == "cumulo_consumer_pending"
    assert pods["metric"]["selector"]["matchLabels"]["consumer"] in consumers("lifecycle")
    exposed = (ROOT / "libs" / "cumulo_platform" / "metrics.py").read_text()
    assert 'Gauge("cumulo_consumer_pending"' in exposed
    adapter = yaml.safe_load((PROD / "prometheus-adapter-values.yaml").read_text())
    assert [rule["name"]["as"] for rule in adapter["rules"]["custom"]] == ["cumulo_consumer_pending"]


def _seconds_before_sigterm(container: dict[str, Any]) -> float:
    return float(container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0))


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_grace_period_covers_the_services_whole_stop(prod, name):
    """preStop, then the drain the service's own settings allow (CUMULO_DRAIN_GRACE_SECONDS as
    the pod's environment says, accepted by its settings), then its jobs and last flushes: all
    before the kubelet's SIGKILL."""
    spec = pod_spec(of_kind(prod, "Deployment")[name])
    [container] = spec["containers"]
    env = {**config(prod), **{e["name"]: e["value"] for e in container["env"] if "value" in e}, "DATABASE_URL": "postgresql://x/y"}
    drain = PlatformSettings.from_env(name, Env(name, env)).drain_grace_seconds
    assert drain == 20  # the overlay's setting, not the default
    assert spec["terminationGracePeriodSeconds"] > _seconds_before_sigterm(container) + drain + JOB_STOP_TIMEOUT + CLEANUPS


def test_the_gateway_stops_after_the_load_balancer_forgot_it(prod):
    spec = pod_spec(of_kind(prod, "Deployment")["gateway"])
    [envoy] = spec["containers"]
    assert _seconds_before_sigterm(envoy) >= 10
    assert spec["terminationGracePeriodSeconds"] > _seconds_before_sigterm(envoy)


# --- a release's order ------------------------------------------------------------------------


def test_step_one_of_a_release_holds_the_migrations_and_all_they_need_and_no_deployment(prod):
    """kustomization.yaml's release: `-l cumulo.io/release-step=1` first (the migrations run to
    completion), then everything."""
    first = {(o["kind"], o["metadata"]["name"]) for o in prod if o["metadata"].get("labels", {}).get("cumulo.io/release-step") == "1"}
    jobs = of_kind(prod, "Job")
    assert {f"{name}-migrate" for name in SERVICES} == set(jobs)
    assert {("Job", name) for name in jobs} <= first
    assert {("Namespace", "cumulo"), ("Cluster", "cumulo-db")} <= first
    assert not {kind for kind, _ in first} & {"Deployment", "HorizontalPodAutoscaler", "Service"}
    for job in jobs.values():
        spec = pod_spec(job)
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
        [container] = spec["containers"]
        assert container["command"][-1] == "migrate"
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert ("ConfigMap", source["configMapRef"]["name"]) in first
            else:
                assert source["secretRef"]["name"] in EXTERNAL_SECRETS
        named = [v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v]
        named += [e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e]
        assert set(named) <= EXTERNAL_SECRETS
    kustomization = (PROD / "kustomization.yaml").read_text()
    assert "kubectl apply -k deploy/k8s/overlays/prod -l cumulo.io/release-step=1" in kustomization
    assert "kubectl -n cumulo wait --for=condition=complete job -l app.kubernetes.io/component=migration" in kustomization


def test_every_secret_the_manifests_name_is_rendered_or_made_by_the_operators(prod):
    rendered = set(of_kind(prod, "Secret"))
    named: set[str] = set()
    for workload in (o for o in prod if o["kind"] in POD_KINDS):
        spec = pod_spec(workload)
        named |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        for container in containers(spec):
            named |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
            named |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    cluster = of_kind(prod, "Cluster")["cumulo-db"]["spec"]
    named |= {role["passwordSecret"]["name"] for role in cluster["managed"]["roles"]}
    named |= {ref["name"] for ref in cluster["backup"]["barmanObjectStore"]["s3Credentials"].values()}
    assert named - rendered <= EXTERNAL_SECRETS
    kustomization = (PROD / "kustomization.yaml").read_text()
    for family in ("cumulo-secrets ", "cumulo-db-<service>", "cumulo-db-backup-s3", "cumulo-identity-<name>", "cumulo-secrets-<service>", "gateway-tls"):
        assert family in kustomization, family


# --- the data tier ----------------------------------------------------------------------------


def test_postgres_is_a_three_instance_cloudnativepg_cluster_backed_up_to_object_storage(prod):
    cluster = of_kind(prod, "Cluster")["cumulo-db"]["spec"]
    assert cluster["instances"] == 3
    assert cluster["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")
    backup = of_kind(prod, "ScheduledBackup")["cumulo-db-nightly"]["spec"]
    assert backup["cluster"]["name"] == "cumulo-db" and backup["method"] == "barmanObjectStore"


def test_every_service_logs_in_as_its_own_role_which_the_cluster_makes_and_keeps(prod):
    cluster = of_kind(prod, "Cluster")["cumulo-db"]["spec"]
    database = cluster["bootstrap"]["initdb"]["database"]
    assert cluster["bootstrap"]["initdb"]["postInitApplicationSQL"] == [s for name in SERVICES for s in role_statements(name, database)]
    roles = {role["name"]: role["passwordSecret"]["name"] for role in cluster["managed"]["roles"]}
    assert roles == {service_role(name): f"cumulo-db-{name}" for name in SERVICES}
    for workload in [*of_kind(prod, "Deployment").values(), *of_kind(prod, "Job").values()]:
        name = workload["metadata"]["name"].removesuffix("-migrate")
        if name not in SERVICES:
            continue
        [container] = pod_spec(workload)["containers"]
        env = {e["name"]: e for e in container["env"]}
        url = urlsplit(env["DATABASE_URL"]["value"])
        assert (url.hostname, url.port, url.path) == ("cumulo-db-rw", 5432, f"/{database}")
        assert url.username == service_role(name)
        assert url.password == "$(CUMULO_DB_PASSWORD)"
        assert env["CUMULO_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": roles[service_role(name)], "key": "password"}


def test_the_object_store_is_configured_by_secret(prod):
    assert not {key for key in config(prod) if key.startswith("S3_")}
    for name in SERVICES:
        [container] = pod_spec(of_kind(prod, "Deployment")[name])["containers"]
        assert {"secretRef": {"name": "cumulo-secrets"}} in container["envFrom"]


def test_nats_is_a_three_node_jetstream_cluster_keeping_three_copies_of_each_stream(prod):
    values = yaml.safe_load((PROD / "nats-values.yaml").read_text())["config"]
    assert values["cluster"]["enabled"] and values["cluster"]["replicas"] == 3 and values["jetstream"]["enabled"]
    replicas = PlatformSettings.from_env("blob", Env("blob", {**config(prod), "DATABASE_URL": "postgresql://x/y"})).nats_stream_replicas
    assert replicas == values["cluster"]["replicas"]


def test_the_nats_clusters_users_are_cumulos(prod):
    """The same users and permissions as the server `nats-config` describes, TLS with NATS's
    identity, clients' certificates mapped to users."""
    values = yaml.safe_load((PROD / "nats-values.yaml").read_text())
    assert values["config"]["merge"]["authorization"]["users"] == [{"user": user, "permissions": permissions(user)} for user in users()]
    assert values["config"]["nats"]["tls"]["secretName"] == "cumulo-identity-nats"
    assert values["config"]["nats"]["tls"]["merge"]["verify_and_map"] is True
    assert values["tlsCA"]["secretName"] == "cumulo-identity-nats"
    assert config(prod)["NATS_URL"] == "nats://nats:4222"  # the Helm release named nats, in this namespace
