"""The one source of truth for what the gateway exposes: each public gRPC service and the
backend (a cumulo service) that serves it. Internal services are never listed here."""

from __future__ import annotations

# full gRPC service name -> backend name
PUBLIC_SERVICES: dict[str, str] = {
    "cumulo.auth.v1.AuthService": "auth",
}

# backend name -> default address (as `make run` starts it); CUMULO_GATEWAY_BACKEND_<NAME> overrides.
DEFAULT_BACKENDS: dict[str, str] = {
    "auth": "127.0.0.1:7101",
}

CLIENT_ID_HEADER = "x-cumulo-client-id"
