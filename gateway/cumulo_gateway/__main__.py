"""`python -m cumulo_gateway render` prints Envoy's config; `python -m cumulo_gateway run`
renders it and runs Envoy. `render-k8s --console DIR --out FILE` is what the gateway's pod runs
before Envoy starts (the upstream Envoy image): its config, serving the console built in DIR.

Settings: CUMULO_GATEWAY_HOST, _PORT, _ADMIN_PORT, CUMULO_GATEWAY_BACKEND_<NAME>=host:port per
backend (defaulting to `make run`'s), and the public certificate: CUMULO_GATEWAY_TLS_CERT (a PEM
chain) and CUMULO_GATEWAY_TLS_KEY (without them the gateway only listens on loopback); the edge's
limits: CUMULO_GATEWAY_EDGE_BURST, _EDGE_PER_SECOND (per client address, for expensive anonymous
calls), _TRUSTED_HOPS (proxies in front that write x-forwarded-for), _MAX_HEAP_MIB, and
_CORS_ORIGINS (comma-separated browser origins besides the gateway's own), _OBJECT_STORE (host:port
of S3, for signed download URLs) and _OBJECT_STORE_BUCKET; _CONSOLE_DIR: the built web console
to serve (web/dist; none: the API alone); _MAP_TILES: a tile server's https URL template
({z}/{x}/{y}) for the devices page's map (none: the track on a plain grid). CUMULO_IDENTITY_DIR:
the folder of identities of the internal CA (the gateway's is <dir>/gateway/), with which it
calls the services."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile

from cumulo_gateway.console import Console
from cumulo_gateway.envoy_config import (
    DEFAULT_MAX_HEAP,
    KUBERNETES_CONSOLE,
    EdgeLimits,
    ObjectStore,
    ServerTls,
    UpstreamIdentity,
    render_json,
    render_kubernetes,
)
from cumulo_gateway.routes import DEFAULT_BACKENDS
from cumulo_platform.settings import Env, trace_settings


def backends_from_env(env: Env) -> dict[str, str]:
    return {name: env.get(f"BACKEND_{name.upper()}", address) for name, address in DEFAULT_BACKENDS.items()}


def edge_limits_from_env(env: Env) -> EdgeLimits:
    default = EdgeLimits()
    return EdgeLimits(
        burst=env.get("EDGE_BURST", default.burst),
        per_second=env.get("EDGE_PER_SECOND", default.per_second),
        trusted_hops=env.get("TRUSTED_HOPS", default.trusted_hops),
        cors_origins=tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()),
    )


def object_store_from_env(env: Env) -> ObjectStore | None:
    """CUMULO_GATEWAY_OBJECT_STORE=host:port (and _OBJECT_STORE_BUCKET): the route that signed
    download URLs take; none without it."""
    address = env.get("OBJECT_STORE", "")
    return ObjectStore(address, env.get("OBJECT_STORE_BUCKET", "cumulo-blobs")) if address else None


def main(argv: list[str] | None = None) -> int:
    env = Env("gateway")
    parser = argparse.ArgumentParser(prog="cumulo_gateway")
    parser.add_argument("command", choices=["render", "render-k8s", "run"])
    parser.add_argument("--host", default=env.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=env.get("PORT", 8080))
    parser.add_argument("--admin-port", type=int, default=env.get("ADMIN_PORT", 9901))
    parser.add_argument("--console", type=pathlib.Path, default=env.get("CONSOLE_DIR", "") or None, help="the built web console")
    parser.add_argument("--out", type=pathlib.Path, help="render-k8s: write the config here")
    args = parser.parse_args(argv)
    # In Kubernetes Envoy reads the console where the pod mounts its copy.
    served_from = KUBERNETES_CONSOLE if args.command == "render-k8s" else None
    try:
        console = Console.of(args.console, served_from=served_from, map_tiles=env.get("MAP_TILES", "")) if args.console else None
    except ValueError as exc:
        parser.error(str(exc))
    traces = trace_settings(env)
    wrong = traces.validate()
    if wrong is not None:
        parser.error(wrong)
    if args.command == "render-k8s":
        rendered = render_kubernetes(console, traces)
        if args.out:
            args.out.write_text(rendered)
        else:
            print(rendered)
        return 0
    cert, key = env.get("TLS_CERT", ""), env.get("TLS_KEY", "")
    if bool(cert) != bool(key):
        parser.error("CUMULO_GATEWAY_TLS_CERT and CUMULO_GATEWAY_TLS_KEY go together")
    tls = ServerTls(str(pathlib.Path(cert).resolve()), str(pathlib.Path(key).resolve())) if cert else None
    identities = env.get("IDENTITY_DIR", "")
    if not identities:
        parser.error("CUMULO_IDENTITY_DIR must name the folder of identities (the gateway's is <dir>/gateway/)")
    try:
        config = render_json(
            listen_host=args.host, listen_port=args.port, admin_port=args.admin_port, backends=backends_from_env(env), tls=tls,
            limits=edge_limits_from_env(env), max_heap=env.get("MAX_HEAP_MIB", DEFAULT_MAX_HEAP // 2**20) * 2**20,
            object_store=object_store_from_env(env), console=console,
            identity=UpstreamIdentity.in_folder(pathlib.Path(identities).resolve() / "gateway"), traces=traces,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "render":
        print(config)
        return 0
    path = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-gateway-")) / "envoy.json"
    path.write_text(config)
    envoy = pathlib.Path(sys.executable).parent / "envoy"
    os.execv(str(envoy), [str(envoy), "-c", str(path), "--log-level", "warning", "--base-id", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
