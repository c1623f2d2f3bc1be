"""The Kubernetes manifests build with kustomize, validate against Kubernetes' schema, and carry
the gateway config rendered from the one list of public services."""

import pathlib
import shutil
import subprocess
import sys

import pytest

from cumulo_gateway.envoy_config import render_kubernetes
from cumulo_platform.registry import SERVICES

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())


def test_gateway_config_in_the_manifests_is_fresh():
    committed = (K8S / "base" / "gateway-envoy.json").read_text().strip()
    assert committed == render_kubernetes().strip(), "run `make k8s-gateway`"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_builds_and_validates(overlay, tmp_path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(built.stdout)
    assert "kind: Deployment" in built.stdout and "kind: NetworkPolicy" in built.stdout
    validator = pathlib.Path(sys.executable).parent / "kubernetes-validate"
    checked = subprocess.run(
        [str(validator), "--strict", "-k", "1.32.0", str(manifest)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_its_manifest(name):
    backend = SERVICES[name]
    file = f"{pathlib.PurePath(backend.folder).name}.yaml"  # named like the service's folder
    manifest = (K8S / "base" / file).read_text()
    assert f'command: ["python", "-m", "{backend.module}"]' in manifest
    assert f'command: ["python", "-m", "{backend.module}", "migrate"]' in manifest
    assert f"containerPort: {backend.port}" in manifest
    assert f"- {file}" in (K8S / "base" / "kustomization.yaml").read_text()
    assert (ROOT / backend.folder / backend.module).is_dir()
