"""What a benchmark run starts: the building blocks and services as separate processes, as
in production (a client in the server's process would share its one GIL)."""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile

from cumulo_devstack.servers import Envoy, Process, free_port, wait_for_port
from cumulo_devstack.stack import Infra
from cumulo_gateway.envoy_config import render_json
from cumulo_gateway.routes import BACKENDS


class BenchStack:
    def __init__(self) -> None:
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-bench-"))
        self.infra = Infra.start(self.root)
        self._stoppable: list[Process | Envoy] = []
        self.processes: dict[str, Process] = {}

    def _process(self, name: str, args: list[str], port: int, env: dict[str, str] | None = None) -> str:
        process = Process(name, args, self.root / f"{name}.log", env=env)
        process.start()
        self._stoppable.append(process)
        self.processes[name] = process
        wait_for_port(port, process=process.process, timeout=60)
        return f"127.0.0.1:{port}"

    def start_service(self, name: str, **extra: str) -> str:
        env = {
            **os.environ,
            **self.infra.service_environ(CUMULO_LOG_LEVEL="info", CUMULO_ENVIRONMENT="development", **extra),
        }
        port = int(env["CUMULO_GRPC_PORT"])
        return self._process(name, [sys.executable, "-m", BACKENDS[name].module], port, env)

    def start_services(self) -> dict[str, str]:
        """Every service, auth first (the others need its address)."""
        started = {"auth": self.start_service("auth")}
        for name in BACKENDS:
            if name != "auth":
                started[name] = self.start_service(name, CUMULO_AUTH_TARGET=started["auth"])
        return started

    def start_echo(self) -> str:
        port = free_port()
        return self._process("echo", [sys.executable, "-m", "cumulo_bench.echo", str(port)], port)

    def start_gateway(self, backends: dict[str, str]) -> str:
        port, admin_port = free_port(), free_port()
        config = self.root / "envoy.json"
        config.write_text(render_json(listen_host="127.0.0.1", listen_port=port, admin_port=admin_port, backends=backends))
        envoy = Envoy(config, port, admin_port, self.root / "envoy.log")
        envoy.start()
        self._stoppable.append(envoy)
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        for item in reversed(self._stoppable):
            item.stop()
        self.infra.stop()
