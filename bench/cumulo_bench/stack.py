"""What a benchmark run starts: the whole cloud as separate processes (cumulo_devstack.stack.Cloud),
and a bare grpc.aio echo server to compare with."""

from __future__ import annotations

import sys

from cumulo_devstack.servers import Process, free_port, wait_for_port
from cumulo_devstack.stack import Cloud
from cumulo_sdk.transport import Transport


class BenchStack(Cloud):
    def __init__(self) -> None:
        super().__init__(prefix="cumulo-bench-")
        self._gateways: set[str] = set()

    def start_gateway(self, backends: dict[str, str] | None = None) -> str:
        gateway = super().start_gateway(backends)
        self._gateways.add(gateway)
        return gateway

    def transport(self, target: str) -> Transport:
        """TLS to a gateway (trusting this stack's CA), plaintext to a service, as inside."""
        return Transport(ca=str(self.infra.tls.ca)) if target in self._gateways else Transport(plaintext=True)

    def asyncpg_dsn(self, name: str) -> str:
        """A service's database, for asyncpg itself (the raw baselines, seeding)."""
        return self.database_url(name).replace("postgresql+asyncpg://", "postgresql://")

    def start_echo(self) -> str:
        port = free_port()
        process = Process("echo", [sys.executable, "-m", "cumulo_bench.echo", str(port)], self.root / "echo.log")
        process.start()
        self.processes["echo"] = process
        wait_for_port(port, process=process.process, timeout=60)
        return f"127.0.0.1:{port}"
