"""`python -m cumulo_gateway render` prints Envoy's config; `python -m cumulo_gateway run`
renders it and runs Envoy (the same config works with the upstream image in Kubernetes).

Settings: CUMULO_GATEWAY_HOST, _PORT, _ADMIN_PORT, and CUMULO_GATEWAY_BACKEND_<NAME>=host:port
per backend, defaulting to `make run`'s."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile

from cumulo_gateway.envoy_config import render_json, render_kubernetes
from cumulo_gateway.routes import DEFAULT_BACKENDS
from cumulo_platform.settings import Env


def backends_from_env(env: Env) -> dict[str, str]:
    return {name: env.get(f"BACKEND_{name.upper()}", address) for name, address in DEFAULT_BACKENDS.items()}


def main(argv: list[str] | None = None) -> int:
    env = Env("gateway")
    parser = argparse.ArgumentParser(prog="cumulo_gateway")
    parser.add_argument("command", choices=["render", "render-k8s", "run"])
    parser.add_argument("--host", default=env.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=env.get("PORT", 8080))
    parser.add_argument("--admin-port", type=int, default=env.get("ADMIN_PORT", 9901))
    args = parser.parse_args(argv)
    if args.command == "render-k8s":
        print(render_kubernetes())
        return 0
    config = render_json(
        listen_host=args.host, listen_port=args.port, admin_port=args.admin_port, backends=backends_from_env(env)
    )
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
