"""The three building blocks together, on free ports under one folder: what the test session
and the benchmarks start (make run keeps fixed ports and ./var/ instead); and `Cloud`, the
whole of cumulo as separate processes on top of them."""

from __future__ import annotations

import dataclasses
import pathlib
import uuid

from cumulo_devstack.servers import EmbeddedNats, EmbeddedPostgres, EmbeddedS3, Envoy, Process, free_port, wait_for_port


@dataclasses.dataclass
class Infra:
    postgres: EmbeddedPostgres
    nats: EmbeddedNats
    s3: EmbeddedS3
    root: pathlib.Path

    @classmethod
    def start(cls, root: pathlib.Path) -> Infra:
        infra = cls(
            EmbeddedPostgres(root / "postgres"),
            EmbeddedNats(root / "nats", free_port(), root / "nats.log"),
            EmbeddedS3(root / "s3", free_port(), root / "s3.log"),
            root,
        )
        infra.postgres.start()
        try:
            infra.nats.start()
            infra.s3.start()
        except Exception:
            infra.stop()
            raise
        return infra

    def stop(self) -> None:
        self.s3.stop()
        self.nats.stop()
        self.postgres.stop()

    def new_database(self) -> str:
        return self.postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")

    def service_environ(self, **extra: str) -> dict[str, str]:
        """Environment for one service on a fresh database and a free port."""
        return {
            "DATABASE_URL": self.new_database(),
            "NATS_URL": self.nats.url,
            "S3_ENDPOINT": self.s3.endpoint,
            "S3_ACCESS_KEY_ID": self.s3.access_key,
            "S3_SECRET_ACCESS_KEY": self.s3.secret_key,
            "CUMULO_GRPC_PORT": str(free_port()),
            "CUMULO_LOG_LEVEL": "warning",
            "CUMULO_ENVIRONMENT": "development",
            "CUMULO_DRAIN_GRACE_SECONDS": "1",
            # A failing event is retried 8 times within seconds, not minutes, before it is
            # parked: tests of dead letters do not wait, and a handler bug shows at once.
            "CUMULO_EVENT_RETRY_FIRST_DELAY": "PT0.1S",
            "CUMULO_EVENT_RETRY_MAX_DELAY": "PT1S",
            **extra,
        }


class Cloud:
    """The building blocks and every service as separate processes, as in production (a
    client in a server's process would share its one GIL), on free ports under one folder:
    what the benchmarks and the cross-service fault tests start. Each service finds the
    others through CUMULO_<NAME>_TARGET, known before any starts."""

    def __init__(self, root: pathlib.Path | None = None, *, prefix: str = "cumulo-cloud-") -> None:
        import tempfile

        from cumulo_platform.registry import SERVICES

        self.root = root or pathlib.Path(tempfile.mkdtemp(prefix=prefix))
        self.root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
        self.infra = Infra.start(self.root)
        self.ports = {name: free_port() for name in SERVICES}
        self.processes: dict[str, Process] = {}
        self._envoys: list[Envoy] = []
        self._databases: dict[str, str] = {}

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def environ(self, name: str, **extra: str) -> dict[str, str]:
        import os

        base = self.infra.service_environ(CUMULO_LOG_LEVEL="info", CUMULO_ENVIRONMENT="development")
        # A restarted service keeps its database.
        base["DATABASE_URL"] = self.database_url(name)
        return {
            **os.environ,
            **base,
            **{f"CUMULO_{other.upper()}_TARGET": self.target(other) for other in self.ports},
            "CUMULO_GRPC_PORT": str(self.ports[name]),
            **extra,
        }

    def database_url(self, name: str) -> str:
        """The database a service of this cloud uses (chosen before it starts)."""
        return self._databases.setdefault(name, self.infra.new_database())

    def start_service(self, name: str, **extra: str) -> str:
        import sys

        from cumulo_platform.registry import SERVICES

        process = Process(name, [sys.executable, "-m", SERVICES[name].module], self.root / f"{name}.log", env=self.environ(name, **extra))
        process.start()
        self.processes[name] = process
        wait_for_port(self.ports[name], process=process.process, timeout=60)
        return self.target(name)

    def start_services(self, **extra: str) -> dict[str, str]:
        """Every service, in the registry's order (auth first: the others need it to start)."""
        from cumulo_platform.registry import SERVICES

        return {name: self.start_service(name, **extra) for name in SERVICES}

    def start_gateway(self, backends: dict[str, str] | None = None) -> str:
        from cumulo_gateway.envoy_config import render_json

        port, admin_port = free_port(), free_port()
        config = self.root / f"envoy-{port}.json"
        backends = backends or {name: self.target(name) for name in self.ports}
        config.write_text(render_json(listen_host="127.0.0.1", listen_port=port, admin_port=admin_port, backends=backends))
        envoy = Envoy(config, port, admin_port, self.root / f"envoy-{port}.log")
        envoy.start()
        self._envoys.append(envoy)
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        for envoy in reversed(self._envoys):
            envoy.stop()
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.infra.stop()
