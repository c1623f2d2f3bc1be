"""The one source of truth for what the gateway exposes: each public gRPC service and the
backend (a cumulo service) that serves it. Internal services are never listed here."""

from __future__ import annotations

import dataclasses

# full gRPC service name -> backend name
PUBLIC_SERVICES: dict[str, str] = {
    "cumulo.auth.v1.AuthService": "auth",
    "cumulo.blob.v1.BlobService": "blob",
    "cumulo.blob.v1.ShareLinkService": "blob",
    "cumulo.lifecycle.v1.LifecycleService": "lifecycle",
    "cumulo.sync.v1.SyncService": "sync",
    "cumulo.sync.v1.BackupService": "sync",
    "cumulo.locator.v1.DeviceLocatorService": "locator",
    "cumulo.locator.v1.DeviceAgentService": "locator",
    "cumulo.moderation.v1.ComplaintService": "moderation",
    "cumulo.moderation.v1.ModerationService": "moderation",
}


@dataclasses.dataclass(frozen=True)
class Backend:
    module: str  # `python -m <module>` runs it
    port: int  # its gRPC port, in `make run` and in Kubernetes


# Every cumulo service, in start order: `make run` starts these, the gateway forwards to them.
BACKENDS: dict[str, Backend] = {
    "auth": Backend(module="cumulo_auth", port=7101),
    "blob": Backend(module="cumulo_blob", port=7102),
    "lifecycle": Backend(module="cumulo_lifecycle", port=7103),
    "sync": Backend(module="cumulo_sync", port=7104),
    "locator": Backend(module="cumulo_locator", port=7105),
    "moderation": Backend(module="cumulo_moderation", port=7106),
}

# backend name -> address as `make run` starts it; CUMULO_GATEWAY_BACKEND_<NAME> overrides.
DEFAULT_BACKENDS: dict[str, str] = {name: f"127.0.0.1:{b.port}" for name, b in BACKENDS.items()}

CLIENT_ID_HEADER = "x-cumulo-client-id"
