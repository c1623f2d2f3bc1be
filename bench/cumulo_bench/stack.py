"""What a benchmark run starts: the whole cloud as separate processes (cumulo_devstack.stack.Cloud),
and a bare grpc.aio echo server to compare with."""

from __future__ import annotations

import os
import sys

from cumulo_devstack.servers import Process, free_port, wait_for_port
from cumulo_devstack.stack import Cloud
from cumulo_devstack.testing.channels import transport_for
from cumulo_platform.tracing import TRACES_OFF, TraceSettings
from cumulo_sdk.transport import Transport


class BenchStack(Cloud):
    def __init__(self) -> None:
        super().__init__(prefix="cumulo-bench-")
        self._gateways: set[str] = set()
        # The bench calls services as the gateway would, with this stack's identities.
        os.environ["CUMULO_IDENTITY_DIR"] = str(self.infra.identities)

    def start_gateway(self, backends: dict[str, str] | None = None, traces: TraceSettings = TRACES_OFF) -> str:
        gateway = super().start_gateway(backends, traces)
        self._gateways.add(gateway)
        return gateway

    def transport(self, target: str) -> Transport:
        """TLS to a gateway (trusting this stack's CA); to a service, mutual TLS as the gateway
        calls it; plaintext to anything else (the echo servers)."""
        if target in self._gateways:
            return Transport(ca=str(self.infra.tls.ca))
        return transport_for(target)

    def asyncpg_dsn(self, name: str) -> str:
        """A service's database, for asyncpg itself (the raw baselines, seeding)."""
        return self.database_url(name).replace("postgresql+asyncpg://", "postgresql://")

    def pid(self, name: str) -> int:
        """The process id of a process this stack started (a service, an echo server)."""
        process = self.processes[name].process
        assert process is not None, f"{name} is not running"
        return process.pid

    def start_echo(self, *options: str, name: str = "echo") -> str:
        """An echo server (cumulo_bench.echo, with its `options`) in a process of its own."""
        port = free_port()
        process = Process(name, [sys.executable, "-m", "cumulo_bench.echo", str(port), *options], self.root / f"{name}.log")
        process.start()
        self.processes[name] = process
        wait_for_port(port, process=process.process, timeout=60)
        return f"127.0.0.1:{port}"
