"""`python -m cumulo_devstack run` (what `make run` does): the whole cloud on one machine.

Starts the embedded PostgreSQL, NATS JetStream and S3 servers with their data under ./var/
(unless DATABASE_URL, NATS_URL or S3_ENDPOINT name external ones), then every service as its
own process, then the Envoy gateway, and prints where to connect. Ctrl-C (or SIGTERM) stops
everything in reverse order; a second run keeps the data.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import threading
from typing import Protocol

from cumulo_devstack.servers import EmbeddedNats, EmbeddedPostgres, EmbeddedS3, Envoy, MailCatcher, Process, wait_for_port
from cumulo_gateway.envoy_config import render_json
from cumulo_platform.registry import SERVICES


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def _setting(name: str, default: str) -> str:
    return os.environ.get(name, default)


def run(var: pathlib.Path) -> int:
    var.mkdir(parents=True, exist_ok=True)
    logs = var / "logs"
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started: list[_Stoppable] = []
    env = dict(os.environ)
    env.setdefault("CUMULO_ENVIRONMENT", "development")
    env.setdefault("CUMULO_LOG_FORMAT", "console")
    # The demo: a counter-noticed takedown is restored after seconds, not the two weeks of
    # the production default, and restores are looked for every second.
    env.setdefault("CUMULO_MODERATION_COUNTER_NOTICE_WAIT", "PT20S")
    env.setdefault("CUMULO_MODERATION_RESTORE_EVERY", "PT1S")
    try:
        if "DATABASE_URL" not in env:
            postgres = EmbeddedPostgres(var / "postgres")
            postgres.start()
            started.append(postgres)
            env["DATABASE_URL"] = postgres.ensure_database("cumulo")
            print("postgres  embedded, data in var/postgres", flush=True)
        if "NATS_URL" not in env:
            nats = EmbeddedNats(var / "nats", int(_setting("CUMULO_DEV_NATS_PORT", "4222")), logs / "nats.log")
            env["NATS_URL"] = nats.start()
            started.append(nats)
            print(f"nats      {env['NATS_URL']} (JetStream in var/nats)", flush=True)
        if "S3_ENDPOINT" not in env:
            s3 = EmbeddedS3(var / "s3", int(_setting("CUMULO_DEV_S3_PORT", "9000")), logs / "s3.log")
            env["S3_ENDPOINT"] = s3.start()
            env["S3_ACCESS_KEY_ID"], env["S3_SECRET_ACCESS_KEY"] = s3.access_key, s3.secret_key
            started.append(s3)
            print(f"s3        {env['S3_ENDPOINT']} (buckets in var/s3)", flush=True)
        if "CUMULO_LIFECYCLE_SMTP_HOST" not in env:
            mail_port = int(_setting("CUMULO_DEV_SMTP_PORT", "2525"))
            mail = MailCatcher(var / "mail", mail_port)
            mail.start()
            started.append(mail)
            env["CUMULO_LIFECYCLE_SMTP_HOST"], env["CUMULO_LIFECYCLE_SMTP_PORT"] = "127.0.0.1", str(mail_port)
            print(f"smtp      127.0.0.1:{mail_port} (lifecycle notices land in var/mail/*.eml)", flush=True)
        ports = {name: int(_setting(f"CUMULO_{name.upper()}_GRPC_PORT", str(b.port))) for name, b in SERVICES.items()}
        # Every service finds the others where this run starts them.
        env.update({f"CUMULO_{name.upper()}_TARGET": f"127.0.0.1:{port}" for name, port in ports.items()})
        backends: dict[str, str] = {}
        for name, backend in SERVICES.items():  # auth first: the others need it to start
            port = ports[name]
            service_env = {**env, f"CUMULO_{name.upper()}_GRPC_PORT": str(port)}
            process = Process(name, [sys.executable, "-m", backend.module], logs / f"{name}.log", env=service_env)
            process.start()
            started.append(process)
            wait_for_port(port, process=process.process, timeout=60)
            backends[name] = f"127.0.0.1:{port}"
            print(f"{name:<10} 127.0.0.1:{port} (log in var/logs/{name}.log)", flush=True)
        gateway_port = int(_setting("CUMULO_GATEWAY_PORT", "8080"))
        admin_port = int(_setting("CUMULO_GATEWAY_ADMIN_PORT", "9901"))
        config = var / "gateway" / "envoy.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(render_json(listen_host="127.0.0.1", listen_port=gateway_port, admin_port=admin_port, backends=backends))
        envoy = Envoy(config, gateway_port, admin_port, logs / "gateway.log")
        envoy.start()
        started.append(envoy)
        print(
            f"\ncumulo is running. Gateway: 127.0.0.1:{gateway_port}\n"
            f"  .venv/bin/cumulo --gateway 127.0.0.1:{gateway_port} signup --email you@example.com --birth-date 1990-05-17 --accept-terms\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not stop.wait(0.5):
            for item in started:
                if isinstance(item, Process) and not item.running:
                    print(f"{item.name} stopped unexpectedly; see {item.log_path}", file=sys.stderr, flush=True)
                    return 1
        return 0
    finally:
        print("\nstopping ...", flush=True)
        for item in started:  # the services drain side by side, then everything stops in reverse order
            if isinstance(item, Process):
                item.terminate()
        for item in reversed(started):
            try:
                item.stop()
            except (OSError, subprocess.SubprocessError) as exc:
                print(f"could not stop {item}: {exc}", file=sys.stderr)
        print("stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cumulo_devstack")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--var", default="var", help="where the embedded servers keep their data")
    args = parser.parse_args(argv)
    return run(pathlib.Path(args.var).resolve())


if __name__ == "__main__":
    sys.exit(main())
