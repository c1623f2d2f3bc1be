"""Every cumulo service, once: its name, the module that runs it, its gRPC port and the public
gRPC services the gateway routes to it. Settings, `make run`, the gateway and the tests read
this table; adding a service is one line here (and its own folder)."""

from __future__ import annotations

import dataclasses

HEALTH_PORT_OFFSET = 100
METRICS_PORT_OFFSET = 200


@dataclasses.dataclass(frozen=True)
class ServiceInfo:
    name: str  # the service's short name: settings CUMULO_<NAME>_*, its schema, its NATS producer
    module: str  # `python -m <module>` runs it
    port: int  # its gRPC port, in `make run` and in Kubernetes
    folder: str  # where it lives in the repository
    public: tuple[str, ...] = ()  # full names of the gRPC services the gateway routes to it

    @property
    def health_port(self) -> int:
        """Its plaintext health-only port (Kubernetes' probes): the gRPC port + 100."""
        return self.port + HEALTH_PORT_OFFSET

    @property
    def metrics_port(self) -> int:
        """Its Prometheus `/metrics` port in `make run` and in Kubernetes: the gRPC port + 200."""
        return self.port + METRICS_PORT_OFFSET

    @property
    def default_target(self) -> str:
        return f"127.0.0.1:{self.port}"


# In start order: `make run` starts them so; the ones before are there for the ones after.
SERVICES: dict[str, ServiceInfo] = {
    info.name: info
    for info in (
        ServiceInfo("auth", "cumulo_auth", 7101, "services/auth", ("cumulo.auth.v1.AuthService",)),
        ServiceInfo("blob", "cumulo_blob", 7102, "services/blob", ("cumulo.blob.v1.BlobService", "cumulo.blob.v1.ShareLinkService", "cumulo.takeout.v1.TakeoutService")),
        ServiceInfo("lifecycle", "cumulo_lifecycle", 7103, "services/lifecycle", ("cumulo.lifecycle.v1.LifecycleService",)),
        ServiceInfo("sync", "cumulo_sync", 7104, "services/sync", ("cumulo.sync.v1.SyncService", "cumulo.sync.v1.BackupService")),
        ServiceInfo(
            "locator",
            "cumulo_locator",
            7105,
            "services/device-locator",
            ("cumulo.locator.v1.DeviceLocatorService", "cumulo.locator.v1.DeviceAgentService"),
        ),
        ServiceInfo(
            "moderation",
            "cumulo_moderation",
            7106,
            "services/moderation",
            ("cumulo.moderation.v1.ComplaintService", "cumulo.moderation.v1.ModerationService"),
        ),
    )
}


def service(name: str) -> ServiceInfo:
    try:
        return SERVICES[name]
    except KeyError:
        raise KeyError(f"no cumulo service is called {name!r}; known: {', '.join(SERVICES)}") from None


def public_routes() -> dict[str, str]:
    """Full public gRPC service name -> the cumulo service that serves it."""
    return {public: info.name for info in SERVICES.values() for public in info.public}
