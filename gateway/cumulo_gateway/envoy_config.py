"""Render Envoy's configuration from routes.PUBLIC_SERVICES.

Per public service: a route that requires the client-id header and forwards to its backend
over HTTP/2 (unary and streaming alike, no route timeout), and a route that answers a call
without client id itself: gRPC PERMISSION_DENIED with reason CLIENT_NOT_AUTHORIZED, as the
services answer. Everything else,
internal services included, gets 404, i.e. gRPC UNIMPLEMENTED. Envoy sets x-request-id and
appends the real client address to x-forwarded-for, which services use for throttling.

Besides gRPC, the public unary methods answer grpc-web (browsers) and JSON over HTTP (their
google.api.http rules, e.g. GET /v1/account): the JSON transcoder turns such a request into
the gRPC call, whose path the routes above then match like any other, client id and limits
included.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import pathlib
import urllib.parse
from typing import Any

from google.protobuf import json_format

from cumulo_gateway.console import MAX_FILE_BYTES as CONSOLE_MAX_FILE_BYTES
from cumulo_gateway.console import Console, console_routes
from cumulo_gateway.methods import (
    EXPENSIVE_ANONYMOUS,
    LONG_LIVED,
    LONG_STREAM_IDLE,
    TRANSFER_IDLE,
    UNARY_TIMEOUT,
    Method,
    public_methods,
)
from cumulo_gateway.routes import CLIENT_ID_HEADER, PUBLIC_SERVICES
from cumulo_platform.errors import STATUS_DETAILS_KEY, CumuloError, PermissionDenied, ResourceExhausted
from cumulo_platform.registry import SERVICES
from cumulo_platform.settings import DEFAULT_GRPC_MAX_RECEIVE_BYTES
from cumulo_platform.tracing import TRACES_OFF, TraceSettings

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"
EDGE_TRACKED_ADDRESSES = 100_000  # addresses with a bucket of their own (least recently used go)
# HTTP/2 flow control: what one stream may have in flight (so a client that stops reading
# pins at most this much in Envoy, and the backend stops sending), and a whole connection.
STREAM_WINDOW = 1024 * 1024
# What a client may send on one stream before the gateway has passed it on: room for two of
# the SDK's 2 MiB upload messages, so that an upload is not held to one window per round trip.
CLIENT_STREAM_WINDOW = 4 * 1024 * 1024
CONNECTION_WINDOW = 64 * 1024 * 1024
CONNECTION_BUFFER = 1024 * 1024
MAX_STREAMS_PER_CLIENT_CONNECTION = 128
DEFAULT_MAX_HEAP = 512 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class UpstreamIdentity:
    """The gateway's identity of the internal CA (PEM files, cumulo_platform.identity's
    layout): it is what the services see calling, and the CA it checks they are who the
    cluster names (each backend's certificate must carry the backend's name)."""

    ca: str
    cert_chain: str
    private_key: str

    @classmethod
    def in_folder(cls, folder: str | pathlib.Path) -> UpstreamIdentity:
        from cumulo_platform.identity import CA_FILE, CERT_FILE, KEY_FILE

        home = pathlib.Path(folder)
        return cls(str(home / CA_FILE), str(home / CERT_FILE), str(home / KEY_FILE))


def _upstream_tls(name: str, identity: UpstreamIdentity) -> dict[str, Any]:
    """Mutual TLS to the backend `name`: the gateway's certificate, and the backend's checked."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": name,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "tls_certificates": [
                    {"certificate_chain": {"filename": identity.cert_chain}, "private_key": {"filename": identity.private_key}}
                ],
                "validation_context": {
                    "trusted_ca": {"filename": identity.ca},
                    "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": name}}],
                },
            },
        },
    }


def _cluster(name: str, address: str, identity: UpstreamIdentity | None = None) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    tls = {"transport_socket": _upstream_tls(name, identity)} if identity is not None else {}
    return {
        **tls,
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": CONNECTION_BUFFER,
        # Bounds on what the gateway sends one backend at once; past them a call is refused
        # (UNAVAILABLE) at once instead of queueing without end.
        "circuit_breakers": {
            "thresholds": [
                {"priority": "DEFAULT", "max_connections": 1024, "max_pending_requests": 1024, "max_requests": 4096, "max_retries": 3}
            ]
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "max_concurrent_streams": 1000,
                        # A download whose client stopped reading holds one window, not the
                        # backend's whole answer: the backend waits, and the other streams on
                        # the connection keep flowing.
                        "initial_stream_window_size": STREAM_WINDOW,
                        "initial_connection_window_size": CONNECTION_WINDOW,
                    }
                },
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}]}
            ],
        },
    }


OTLP_CLUSTER = "otlp"
ADMIN_CLUSTER = "envoy_admin"


def _metrics_listener(host: str, port: int) -> dict[str, Any]:
    """Envoy's own Prometheus series for the cluster's scraper: `GET /metrics` on this port is
    the admin's `/stats/prometheus`, and nothing else of the admin (which stays on loopback:
    it can stop Envoy) is reachable."""
    return {
        "name": "metrics",
        "address": {"socket_address": {"address": host, "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "metrics",
                            "route_config": {
                                "name": "metrics",
                                "virtual_hosts": [
                                    {
                                        "name": "metrics",
                                        "domains": ["*"],
                                        "routes": [
                                            {
                                                "match": {"path": "/metrics", "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
                                                "route": {"cluster": ADMIN_CLUSTER, "prefix_rewrite": "/stats/prometheus", "timeout": "10s"},
                                            },
                                            {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
                                        ],
                                    }
                                ],
                            },
                            "http_filters": [
                                {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                            ],
                        },
                    }
                ]
            }
        ],
    }


def _admin_cluster(admin_port: int) -> dict[str, Any]:
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}}]}],
        },
    }
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def _tracing(traces: TraceSettings) -> dict[str, Any]:
    """The edge's span of each request, sent to the collector (OTLP/gRPC): a request with no
    `traceparent` starts a trace (kept at the sampling ratio), one with it continues it, and
    the services' spans go under it."""
    return {
        "random_sampling": {"value": traces.sample_ratio * 100},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "2s"},
                "service_name": "gateway",
            },
        },
    }


def _strip_trace_context() -> dict[str, Any]:
    return {
        "name": "envoy.http.early_header_mutation.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
            "mutations": [{"remove": "traceparent"}, {"remove": "tracestate"}],
        },
    }


def _otlp_cluster(traces: TraceSettings) -> dict[str, Any]:
    parsed = urllib.parse.urlsplit(traces.endpoint)
    host, port = parsed.hostname or "", parsed.port or 4317
    tls = (
        {
            "transport_socket": {
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "sni": host,
                    "common_tls_context": {"validation_context": {"trusted_ca": {"filename": SYSTEM_CA}}},
                },
            }
        }
        if parsed.scheme == "https"
        else {}
    )
    return {
        **tls,
        "name": OTLP_CLUSTER,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": OTLP_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}],
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


def _to(method_or_prefix: dict[str, Any], backend: str, **route: Any) -> dict[str, Any]:
    """A route to `backend` for calls that carry the client-id header."""
    return {
        "match": {**method_or_prefix, "headers": [{"name": CLIENT_ID_HEADER, "present_match": True}]},
        "route": {"cluster": backend, **route},
    }


@dataclasses.dataclass(frozen=True)
class EdgeLimits:
    """The edge's bucket per client address for each expensive anonymous method: a burst, then
    so many a second (the services keep their own, finer limits behind it). `trusted_hops`:
    proxies of ours in front of Envoy (a TLS-passthrough balancer that adds x-forwarded-for):
    the client address is that many entries from the right of the header they wrote."""

    burst: int = 20
    per_second: int = 5
    trusted_hops: int = 0
    # Browser origins other than the gateway's own that may call the API (grpc-web): a web
    # console served from another host. The console the gateway serves itself is same-origin.
    cors_origins: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ObjectStore:
    """Where signed download URLs go: the object store (host:port, plain HTTP inside) and the
    bucket of user content. Only GET and HEAD of a URL that carries a signature are forwarded,
    with the Host header the URL was signed for kept as it came."""

    address: str
    bucket: str = "cumulo-blobs"


OBJECT_STORE_CLUSTER = "object_store"


def _object_store_route(store: ObjectStore) -> dict[str, Any]:
    return {
        "match": {
            "prefix": f"/{store.bucket}/",
            "headers": [{"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}],
            "query_parameters": [{"name": "X-Amz-Signature", "present_match": True}],
        },
        # No overall deadline (a big file takes its time), but one without progress ends.
        "route": {"cluster": OBJECT_STORE_CLUSTER, "timeout": "0s", "idle_timeout": TRANSFER_IDLE},
        # Never traced: the edge's span would carry the signed URL (its credential) as a tag.
        "tracing": {"client_sampling": {"numerator": 0}, "random_sampling": {"numerator": 0}, "overall_sampling": {"numerator": 0}},
    }


def _object_store_cluster(store: ObjectStore) -> dict[str, Any]:
    """The object store speaks plain HTTP/1.1: a cluster as the services', without HTTP/2."""
    cluster = _cluster(OBJECT_STORE_CLUSTER, store.address)
    del cluster["typed_extension_protocol_options"]
    return cluster


_EDGE_REFUSAL = ResourceExhausted(
    "too many requests of this kind from your address; try again shortly", reason="EDGE_RATE_LIMITED", retry_after=dt.timedelta(seconds=1)
)


def _per_address_limit(method: Method, limits: EdgeLimits) -> dict[str, Any]:
    """A token bucket per client address (Envoy's view of it: the peer, or what the trusted
    hops say) for one expensive anonymous method; past it RESOURCE_EXHAUSTED EDGE_RATE_LIMITED
    at once, never reaching the service."""
    status = base64.b64encode(_EDGE_REFUSAL.to_status().SerializeToString()).decode()
    bucket = {"max_tokens": limits.burst, "tokens_per_fill": limits.per_second, "fill_interval": "1s"}
    always = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "cumulo_edge_limits"}
    return {
        LOCAL_RATE_LIMIT: {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": f"edge_limit_{method.name}",
            # Without a descriptor match (no address): one bucket for the method, generous.
            "token_bucket": {"max_tokens": limits.burst * 50, "tokens_per_fill": limits.per_second * 50, "fill_interval": "1s"},
            "filter_enabled": always,
            "filter_enforced": always,
            "rate_limited_as_resource_exhausted": True,
            "max_dynamic_descriptors": EDGE_TRACKED_ADDRESSES,
            "rate_limits": [{"actions": [{"remote_address": {}}]}],
            "descriptors": [{"entries": [{"key": "remote_address"}], "token_bucket": bucket}],
            "response_headers_to_add": [
                {"header": {"key": STATUS_DETAILS_KEY, "value": status}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            ],
        }
    }


JSON_TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
# `make protos` writes it: the public protos with their imports and google.rpc's error details.
DESCRIPTOR_SET = pathlib.Path(__file__).resolve().parents[2] / "gen" / "descriptors" / "cumulo_public.pb"
# The largest JSON body the transcoder holds, either way: what a gRPC message may be.
JSON_BODY_LIMIT = DEFAULT_GRPC_MAX_RECEIVE_BYTES


# What Envoy answers itself to a JSON request (HTTP status: gRPC code), as JSON google.rpc.Status
# with Envoy's words for the message: the transcoder's refusals (a body that is not JSON, an
# unknown field or query parameter, a body too big), no such path, a backend down or too slow.
_JSON_LOCAL_REPLIES = {400: 3, 404: 5, 413: 8, 500: 13, 502: 14, 503: 14, 504: 4}


def _json_local_replies() -> dict[str, Any]:
    """Envoy's own answers to JSON callers as JSON google.rpc.Status, like the services' errors
    (gRPC callers get theirs as gRPC status already, and the transcoder converts those of the
    routes' gRPC refusals). A JSON request is one the transcoder rewrote (it keeps the original
    path) or one that is not gRPC at all. The edge's per-address limit answers with the same
    status as it gives gRPC callers: RESOURCE_EXHAUSTED, EDGE_RATE_LIMITED, retry after 1 s."""
    json_request = {
        "or_filter": {
            "filters": [
                {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True}}},
                {
                    "header_filter": {
                        "header": {
                            "name": "content-type",
                            "string_match": {"prefix": "application/grpc"},
                            "invert_match": True,
                            "treat_missing_header_as_empty": True,
                        }
                    }
                },
            ]
        }
    }

    def status_is(code: int) -> dict[str, Any]:
        return {"status_code_filter": {"comparison": {"op": "EQ", "value": {"default_value": code, "runtime_key": f"cumulo_json_{code}"}}}}

    edge_refusal = json_format.MessageToJson(_EDGE_REFUSAL.to_status(), preserving_proto_field_name=True, indent=None)
    mappers = [
        {
            "filter": {"and_filter": {"filters": [status_is(429), json_request]}},
            "body_format_override": {"text_format_source": {"inline_string": edge_refusal.replace("%", "%%")}, "content_type": "application/json"},
        }
    ]
    mappers += [
        {
            "filter": {"and_filter": {"filters": [status_is(http_status), json_request]}},
            "body_format_override": {"json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"}, "content_type": "application/json"},
        }
        for http_status, code in _JSON_LOCAL_REPLIES.items()
    ]
    return {"mappers": mappers}


def _json_transcoder() -> dict[str, Any]:
    """JSON over HTTP for the public services' unary methods, by their google.api.http rules.
    The descriptor set is embedded, so that the config stands alone (a Kubernetes ConfigMap).
    Only the public services are in it and in `services`: a path of no public method passes
    the filter untouched and meets the routes' 404. Answers print every field (zeros and
    empty strings too) under its proto name (`node_id`, as in the URL templates); a gRPC
    error becomes its google.rpc.Status as JSON (code, message, details: reason, field), with
    the HTTP status of its code. Unknown query parameters, and a body that contradicts the
    path (`/v1/files/A:rename` with `{"node_id": "B"}`), are refused with 400."""
    try:
        descriptor = DESCRIPTOR_SET.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{DESCRIPTOR_SET} is missing: run `make protos`") from None
    return {
        "name": JSON_TRANSCODER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor_bin": base64.b64encode(descriptor).decode(),
            "services": sorted(PUBLIC_SERVICES),
            "print_options": {"always_print_primitive_fields": True, "preserve_proto_field_names": True},
            "convert_grpc_status": True,
            "request_validation_options": {"reject_unknown_query_parameters": True, "reject_binding_body_field_collisions": True},
            "max_request_body_size": JSON_BODY_LIMIT,
            "max_response_body_size": JSON_BODY_LIMIT,
        },
    }


CORS_FILTER = "envoy.filters.http.cors"
JSON_PREFIX = "/v1/"  # every google.api.http path of protos/


def _cors(origins: tuple[str, ...]) -> dict[str, Any]:
    """What browsers of the allowed origins may send and read: the gRPC and grpc-web headers,
    the client id and the token; the status, its details and the request id back."""
    return {
        CORS_FILTER: {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
            "allow_origin_string_match": [{"exact": origin} for origin in origins],
            "allow_methods": "POST, GET, OPTIONS",
            "allow_headers": "content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization, " + CLIENT_ID_HEADER,
            "expose_headers": f"grpc-status, grpc-message, {STATUS_DETAILS_KEY}, x-request-id",
            "max_age": "600",
            "allow_credentials": False,
            # A preflight from an origin not allowed is answered here, without CORS headers:
            # it never reaches a service.
            "forward_not_matching_preflights": False,
        }
    }


def _routes(limits: EdgeLimits, store: ObjectStore | None = None, console: Console | None = None) -> list[dict[str, Any]]:
    """Per public service: its streaming methods (no overall deadline; an idle limit that fits
    the kind), its expensive anonymous methods (a per-address bucket), then the rest of it
    (unary: a deadline), and a refusal of calls without the client-id header."""
    routes: list[dict[str, Any]] = []
    by_service: dict[str, list[Method]] = {}
    for method in public_methods():
        by_service.setdefault(method.service, []).append(method)
    for service, methods in sorted(by_service.items()):
        backend = methods[0].backend
        for method in methods:
            if method.streaming:
                idle = LONG_STREAM_IDLE if method.key in LONG_LIVED else TRANSFER_IDLE
                routes.append(_to({"path": method.path}, backend, timeout="0s", idle_timeout=idle))
            elif method.key in EXPENSIVE_ANONYMOUS:
                limited = _to({"path": method.path}, backend, timeout=UNARY_TIMEOUT)
                limited["typed_per_filter_config"] = _per_address_limit(method, limits)
                routes.append(limited)
        prefix = f"/{service}/"
        # A browser's CORS preflight carries no client id: the CORS filter answers it here (an
        # origin it does not allow gets no CORS headers).
        preflight = {"prefix": prefix, "headers": [{"name": ":method", "string_match": {"exact": "OPTIONS"}}]}
        routes.append({"match": preflight, "route": {"cluster": backend, "timeout": "5s"}})
        routes.append(_to({"prefix": prefix}, backend, timeout=UNARY_TIMEOUT))
        routes.append({"match": {"prefix": prefix}, **_NO_CLIENT_ID})
    # The JSON paths' preflights (the transcoder knows no OPTIONS binding): the CORS filter
    # answers them on a forwarding route (it passes over direct responses); none is forwarded.
    json_preflight = {"prefix": JSON_PREFIX, "headers": [{"name": ":method", "string_match": {"exact": "OPTIONS"}}]}
    routes.append({"match": json_preflight, "route": {"cluster": by_service[min(by_service)][0].backend, "timeout": "5s"}})
    no_such = {"direct_response": {"status": 404, "body": {"inline_string": "no such public service"}}}
    if store is not None:
        routes.append(_object_store_route(store))
        # Anything else under the bucket (no signature, a write) is nothing: not even a page.
        routes.append({"match": {"prefix": f"/{store.bucket}/"}, **no_such})
    if console is not None:
        # A JSON path the API does not have is not a page of the console.
        routes.append({"match": {"prefix": JSON_PREFIX}, **no_such})
        routes.extend(console_routes(console))
    routes.append({"match": {"prefix": "/"}, **no_such})
    return routes


def _compressor() -> dict[str, Any]:
    """gzip for the console's files and JSON answers when the client accepts it (first in the
    chain, so last on the way out); gRPC and grpc-web bodies are left as they are."""
    return {
        "name": "envoy.filters.http.compressor",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
            "response_direction_config": {
                "common_config": {
                    "min_content_length": 256,
                    "content_type": ["text/html", "text/javascript", "text/css", "application/json", "image/svg+xml"],
                }
            },
            "compressor_library": {
                "name": "gzip",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"},
            },
        },
    }


@dataclasses.dataclass(frozen=True)
class ServerTls:
    """The public listener's certificate chain and key (PEM files): cert-manager's `tls.crt`
    and `tls.key` in Kubernetes, `var/tls/` under `make run`."""

    cert_chain: str
    private_key: str


# Where the gateway's Deployment mounts the Secret with its certificate (cert-manager names).
KUBERNETES_TLS = ServerTls("/etc/cumulo/tls/tls.crt", "/etc/cumulo/tls/tls.key")
# ... and the Secret with its identity of the internal CA (CUMULO_IDENTITY_DIR/gateway).
KUBERNETES_IDENTITY_DIR = "/var/run/cumulo/identity"
KUBERNETES_IDENTITY = UpstreamIdentity.in_folder(f"{KUBERNETES_IDENTITY_DIR}/gateway")


def _downstream_tls(tls: ServerTls) -> dict[str, Any]:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                # HTTP/2 for gRPC, HTTP/1.1 for browsers' grpc-web and curl.
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificates": [
                    {"certificate_chain": {"filename": tls.cert_chain}, "private_key": {"filename": tls.private_key}}
                ],
            },
        },
    }


def _overload_manager(max_heap: int) -> dict[str, Any]:
    """Envoy's own memory bounded: past 85% of `max_heap` the streams holding the most buffered
    data are reset first (a slow reader, not everyone), past 90% the heap is given back, past 98%
    new requests are refused; and no more than so many client connections."""
    heap = "envoy.resource_monitors.fixed_heap"
    connections = "envoy.resource_monitors.global_downstream_max_connections"
    return {
        "refresh_interval": "0.25s",
        "resource_monitors": [
            {
                "name": heap,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
                    "max_heap_size_bytes": max_heap,
                },
            },
            {
                "name": connections,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": 50_000,
                },
            },
        ],
        "actions": [
            {
                "name": "envoy.overload_actions.reset_high_memory_stream",
                "triggers": [{"name": heap, "scaled": {"scaling_threshold": 0.85, "saturation_threshold": 0.95}}],
            },
            {"name": "envoy.overload_actions.shrink_heap", "triggers": [{"name": heap, "threshold": {"value": 0.9}}]},
            {"name": "envoy.overload_actions.stop_accepting_requests", "triggers": [{"name": heap, "threshold": {"value": 0.98}}]},
        ],
        # Track the memory of streams buffering 1 MiB or more (what reset_high_memory_stream reads).
        "buffer_factory_config": {"minimum_account_to_track_power_of_two": 20},
    }


def render(
    *,
    listen_host: str,
    listen_port: int,
    admin_port: int,
    backends: dict[str, str],
    tls: ServerTls | None,
    max_heap: int = DEFAULT_MAX_HEAP,
    limits: EdgeLimits = EdgeLimits(),
    object_store: ObjectStore | None = None,
    console: Console | None = None,
    identity: UpstreamIdentity | None = None,
    traces: TraceSettings = TRACES_OFF,
    metrics_port: int | None = None,
) -> dict[str, Any]:
    """`traces`: where the edge's spans go (off unless it names a collector); `metrics_port`:
    where Prometheus scrapes Envoy's series (`/metrics`), None for nowhere but the admin.
    `tls` None only for a listener on loopback (a local experiment): the public port never
    takes a password in clear. `max_heap`: Envoy's memory budget (below its container's limit).
    `identity`: the gateway's identity towards the services (mutual TLS); None only for
    backends of a test's own that speak plaintext — cumulo's services take no call without one."""
    if tls is None and listen_host not in LOOPBACK_HOSTS:
        raise ValueError(f"the gateway listens on {listen_host} without TLS: give it a certificate (CUMULO_GATEWAY_TLS_CERT/_KEY)")
    needed = sorted(set(PUBLIC_SERVICES.values()))
    missing = [b for b in needed if b not in backends]
    if missing:
        raise ValueError(f"no address for backend(s) {', '.join(missing)}")
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "overload_manager": _overload_manager(max_heap),
        "static_resources": {
            "listeners": [
                {
                    "name": "public",
                    "address": {"socket_address": {"address": listen_host, "port_value": listen_port}},
                    "per_connection_buffer_limit_bytes": CONNECTION_BUFFER,
                    "filter_chains": [
                        {
                            **({"transport_socket": _downstream_tls(tls)} if tls else {}),
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "public",
                                        "codec_type": "AUTO",
                                        "use_remote_address": True,
                                        "xff_num_trusted_hops": limits.trusted_hops,
                                        "generate_request_id": True,
                                        # A client's own trace context never enters: the edge
                                        # starts every trace (at the sampling ratio), so nobody
                                        # outside picks trace ids or forces sampling, and
                                        # nothing of theirs rides into events and streams.
                                        "early_header_mutation_extensions": [_strip_trace_context()],
                                        **({"tracing": _tracing(traces)} if traces.enabled else {}),
                                        "local_reply_config": _json_local_replies(),
                                        # Routes set tighter idle limits per kind of call.
                                        "stream_idle_timeout": LONG_STREAM_IDLE,
                                        # A client gets 10 s to send its request's headers (no
                                        # connection held open by a trickle of bytes).
                                        "request_headers_timeout": "10s",
                                        "common_http_protocol_options": {"idle_timeout": "300s", "headers_with_underscores_action": "REJECT_REQUEST"},
                                        "max_request_headers_kb": 32,
                                        "http2_protocol_options": {
                                            "max_concurrent_streams": MAX_STREAMS_PER_CLIENT_CONNECTION,
                                            "initial_stream_window_size": CLIENT_STREAM_WINDOW,
                                            "initial_connection_window_size": CONNECTION_WINDOW,
                                        },
                                        "route_config": {
                                            "name": "public",
                                            "max_direct_response_body_size_bytes": CONSOLE_MAX_FILE_BYTES,
                                            "virtual_hosts": [
                                                {
                                                    "name": "cumulo",
                                                    "domains": ["*"],
                                                    "routes": _routes(limits, object_store, console),
                                                    "typed_per_filter_config": _cors(limits.cors_origins),
                                                }
                                            ],
                                        },
                                        "http_filters": [
                                            _compressor(),
                                            {
                                                "name": CORS_FILTER,
                                                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
                                            },
                                            {
                                                # Browsers: grpc-web (HTTP/1.1 or 2) in, gRPC to the services.
                                                "name": "envoy.filters.http.grpc_web",
                                                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"},
                                            },
                                            # JSON over HTTP in, gRPC to the services; before the
                                            # edge limits, which then see the gRPC method's route.
                                            _json_transcoder(),
                                            {
                                                "name": LOCAL_RATE_LIMIT,
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                                                    "stat_prefix": "edge_limit",
                                                },
                                            },
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
            ] + ([_metrics_listener(listen_host, metrics_port)] if metrics_port is not None else []),
            "clusters": [_cluster(name, backends[name], identity) for name in needed]
            + ([_object_store_cluster(object_store)] if object_store else [])
            + ([_otlp_cluster(traces)] if traces.enabled else [])
            + ([_admin_cluster(admin_port)] if metrics_port is not None else []),
        },
    }


def render_json(**kwargs: Any) -> str:
    return json.dumps(render(**kwargs), indent=2)


# Where the gateway's pod has the built console: its init container copies it from the cumulo
# image (built there by the Dockerfile) and renders this config beside it.
KUBERNETES_CONSOLE = "/etc/cumulo/console"
# The gateway pod's "metrics" port: Envoy's series at /metrics (the admin stays on loopback).
KUBERNETES_METRICS_PORT = 9902


def render_kubernetes(console: Console | None = None, traces: TraceSettings = TRACES_OFF) -> str:
    """The config the gateway's pod runs: every backend is its Kubernetes Service, same port;
    `console`: the image's build, served from where the pod mounts its copy (KUBERNETES_CONSOLE)."""
    backends = {name: f"{name}:{backend.port}" for name, backend in SERVICES.items()}
    # The Deployment's memory limit is 256 MiB: Envoy sheds load well before it.
    return render_json(
        listen_host="0.0.0.0", listen_port=8080, admin_port=9901, backends=backends, tls=KUBERNETES_TLS, max_heap=200 * 2**20,
        console=console, identity=KUBERNETES_IDENTITY, traces=traces, metrics_port=KUBERNETES_METRICS_PORT,
    )
