"""Render Envoy's configuration from routes.PUBLIC_SERVICES.

Per public service: a route that requires the client-id header and forwards to its backend
over HTTP/2 (unary and streaming alike, no route timeout), and a route that answers a call
without client id itself: gRPC PERMISSION_DENIED with reason CLIENT_NOT_AUTHORIZED, as the
services answer. Everything else,
internal services included, gets 404, i.e. gRPC UNIMPLEMENTED. Envoy sets x-request-id and
appends the real client address to x-forwarded-for, which services use for throttling.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Any

from cumulo_gateway.routes import CLIENT_ID_HEADER, PUBLIC_SERVICES
from cumulo_platform.errors import STATUS_DETAILS_KEY, CumuloError, PermissionDenied
from cumulo_platform.registry import SERVICES


def _cluster(name: str, address: str) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    return {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": 1000}},
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}]}
            ],
        },
    }


def _grpc_refusal(error: CumuloError) -> dict[str, Any]:
    """A gRPC answer Envoy gives by itself: trailers-only (HTTP 200, the status in headers),
    with the same google.rpc details the services send, so clients read the same reason."""
    status = error.to_status()
    details = base64.b64encode(status.SerializeToString()).decode()
    headers = {
        "content-type": "application/grpc",
        "grpc-status": str(error.code.value[0]),
        "grpc-message": urllib.parse.quote(error.message, safe=" /:,.-_"),
        STATUS_DETAILS_KEY: details,
    }
    return {
        "direct_response": {"status": 200},
        "response_headers_to_add": [{"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"} for k, v in headers.items()],
    }


_NO_CLIENT_ID = _grpc_refusal(
    PermissionDenied(f"metadata {CLIENT_ID_HEADER} must name a registered client app", reason="CLIENT_NOT_AUTHORIZED")
)


def _routes() -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    for service, backend in sorted(PUBLIC_SERVICES.items()):
        prefix = f"/{service}/"
        routes.append(
            {
                "match": {
                    "prefix": prefix,
                    "headers": [{"name": CLIENT_ID_HEADER, "present_match": True}],
                },
                "route": {"cluster": backend, "timeout": "0s", "idle_timeout": "3600s"},
            }
        )
        routes.append({"match": {"prefix": prefix}, **_NO_CLIENT_ID})
    routes.append(
        {"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": {"inline_string": "no such public service"}}}
    )
    return routes


def render(*, listen_host: str, listen_port: int, admin_port: int, backends: dict[str, str]) -> dict[str, Any]:
    needed = sorted(set(PUBLIC_SERVICES.values()))
    missing = [b for b in needed if b not in backends]
    if missing:
        raise ValueError(f"no address for backend(s) {', '.join(missing)}")
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "public",
                    "address": {"socket_address": {"address": listen_host, "port_value": listen_port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "public",
                                        "codec_type": "AUTO",
                                        "use_remote_address": True,
                                        "generate_request_id": True,
                                        "stream_idle_timeout": "3600s",
                                        "http2_protocol_options": {"max_concurrent_streams": 1000},
                                        "route_config": {
                                            "name": "public",
                                            "virtual_hosts": [{"name": "cumulo", "domains": ["*"], "routes": _routes()}],
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [_cluster(name, backends[name]) for name in needed],
        },
    }


def render_json(**kwargs: Any) -> str:
    return json.dumps(render(**kwargs), indent=2)


def render_kubernetes() -> str:
    """The config in deploy/k8s/base: every backend is its Kubernetes Service, same port."""
    backends = {name: f"{name}:{backend.port}" for name, backend in SERVICES.items()}
    return render_json(listen_host="0.0.0.0", listen_port=8080, admin_port=9901, backends=backends)
