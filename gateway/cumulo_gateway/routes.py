"""What the gateway exposes: each public gRPC service and the cumulo service behind it, read
from the platform's service registry (cumulo_platform.registry). Internal services are never
listed there."""

from __future__ import annotations

from cumulo_platform.registry import SERVICES, public_routes

# full gRPC service name -> the cumulo service that serves it
PUBLIC_SERVICES: dict[str, str] = public_routes()

# service name -> address as `make run` starts it; CUMULO_GATEWAY_BACKEND_<NAME> overrides.
DEFAULT_BACKENDS: dict[str, str] = {name: info.default_target for name, info in SERVICES.items()}

CLIENT_ID_HEADER = "x-cumulo-client-id"
