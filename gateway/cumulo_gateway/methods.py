"""The public methods the gateway routes, read from the generated descriptors of the public
services in the registry, and how the edge treats each kind:

- transfers (a file up or down, a backup): streams that move data while both sides read; one
  that moves nothing for TRANSFER_IDLE ends, so a client that stops reading holds nothing;
- long-lived streams (sync's Watch, a device's ReceiveCommands): quiet for long stretches by
  design, bounded by LONG_STREAM_IDLE;
- unary calls: answered within UNARY_TIMEOUT, or the edge gives up on them;
- anonymous calls that cost the service a password hash or a lookup a stranger could use to
  enumerate (EXPENSIVE_ANONYMOUS): a token bucket per client address at the edge, besides the
  services' own per-address limits."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator

from cumulo_platform.registry import public_routes

UNARY_TIMEOUT = "60s"
TRANSFER_IDLE = "60s"
LONG_STREAM_IDLE = "3600s"
LONG_LIVED = frozenset({"cumulo.sync.v1.SyncService/Watch", "cumulo.locator.v1.DeviceAgentService/ReceiveCommands"})
EXPENSIVE_ANONYMOUS = frozenset(
    {
        "cumulo.auth.v1.AuthService/Register",
        "cumulo.auth.v1.AuthService/CheckNewPassword",
        "cumulo.auth.v1.AuthService/Login",
        "cumulo.blob.v1.ShareLinkService/OpenShareLink",
        "cumulo.blob.v1.ShareLinkService/GetSharedDownloadUrl",
        "cumulo.moderation.v1.ComplaintService/FileComplaint",
        "cumulo.lifecycle.v1.LifecycleService/ReactivateWithLink",
        "cumulo.lifecycle.v1.LifecycleService/InspectReactivationLink",
    }
)


@dataclasses.dataclass(frozen=True)
class Method:
    service: str  # full gRPC service name
    name: str
    backend: str  # the cumulo service that serves it
    client_streaming: bool
    server_streaming: bool

    @property
    def key(self) -> str:
        return f"{self.service}/{self.name}"

    @property
    def path(self) -> str:
        return f"/{self.key}"

    @property
    def streaming(self) -> bool:
        return self.client_streaming or self.server_streaming


def _descriptor_module(service: str) -> object:
    package = service.rsplit(".", 1)[0]  # cumulo.<name>.v1 -> cumulo/<name>/v1/<name>_pb2
    return importlib.import_module(f"{package}.{package.split('.')[1]}_pb2")


def public_methods() -> Iterator[Method]:
    for service, backend in sorted(public_routes().items()):
        module = _descriptor_module(service)
        descriptor = module.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]]  # type: ignore[attr-defined]
        for method in descriptor.methods:
            yield Method(service, method.name, backend, method.client_streaming, method.server_streaming)
