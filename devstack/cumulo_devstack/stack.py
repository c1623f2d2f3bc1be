"""The three building blocks together, on free ports under one folder: what the test session
and the benchmarks start (make run keeps fixed ports and ./var/ instead); and `Cloud`, the
whole of cumulo as separate processes on top of them."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import uuid
from collections.abc import Iterator

from cumulo_devstack.servers import (
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedS3,
    Envoy,
    Process,
    free_port,
    free_ports,
    wait_for_port,
)
from cumulo_devstack.tls import TlsFiles, ensure_dev_tls, ensure_identities
from cumulo_gateway.console import Console
from cumulo_gateway.envoy_config import EdgeLimits, ObjectStore
from cumulo_platform.secrets import ensure_keys
from cumulo_platform.settings import Env
from cumulo_platform.tracing import TRACES_OFF, TraceSettings


@dataclasses.dataclass
class Infra:
    postgres: EmbeddedPostgres
    nats: EmbeddedNats
    s3: EmbeddedS3
    root: pathlib.Path
    tls: TlsFiles  # the development CA and the gateway's certificate, under root/tls
    identities: pathlib.Path  # the internal CA and everyone's identity (CUMULO_IDENTITY_DIR)

    @classmethod
    def start(cls, root: pathlib.Path, tls: TlsFiles | None = None, identities: pathlib.Path | None = None) -> Infra:
        """`tls`: a development CA made before (the test session's, so that a client trusts
        every gateway of the session); a new one under root/tls otherwise. `identities`: the
        same for the internal CA (root/identity otherwise)."""
        nats_port, s3_port = free_ports(2)
        identities = identities or ensure_identities(root / "identity")
        infra = cls(
            EmbeddedPostgres(root / "postgres"),
            EmbeddedNats(root / "nats", nats_port, root / "nats.log", identities),
            EmbeddedS3(root / "s3", s3_port, root / "s3.log"),
            root,
            tls or ensure_dev_tls(root / "tls"),
            identities,
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
            "CUMULO_HEALTH_PORT": "0",
            "CUMULO_METRICS_PORT": "0",
            "CUMULO_IDENTITY_DIR": str(self.identities),
            "CUMULO_SECRETS_DIR": str(ensure_keys(self.root / "secrets")),
            "CUMULO_LOG_LEVEL": "warning",
            "CUMULO_ENVIRONMENT": "development",
            "CUMULO_DRAIN_GRACE_SECONDS": "1",
            # A failing event is retried 8 times within seconds, not minutes, before it is
            # parked: tests of dead letters do not wait, and a handler bug shows at once.
            "CUMULO_EVENT_RETRY_FIRST_DELAY": "PT0.1S",
            "CUMULO_EVENT_RETRY_MAX_DELAY": "PT1S",
            **extra,
        }


WEB_DIST = pathlib.Path(__file__).resolve().parents[2] / "web" / "dist"


def built_console(map_tiles: str | None = None) -> Console | None:
    """The web console as `make web` built it (web/dist), for the gateway to serve; None when
    it was not built (the API alone is served). `map_tiles`: the tile server for the devices
    page (CUMULO_GATEWAY_MAP_TILES unless given)."""
    if not (WEB_DIST / "index.html").is_file():
        return None
    tiles = Env("gateway").get("MAP_TILES", "") if map_tiles is None else map_tiles
    return Console.of(WEB_DIST, map_tiles=tiles)


def gateway_config(
    tls: TlsFiles, port: int, admin_port: int, backends: dict[str, str], limits: EdgeLimits | None = None,
    object_store: ObjectStore | None = None, console: Console | None = None, *, identities: pathlib.Path | None,
    traces: TraceSettings = TRACES_OFF, metrics_port: int | None = None,
) -> str:
    """Envoy's config for a gateway on loopback `port`, serving TLS with `tls`'s certificate;
    `limits`: the edge's per-address limits (the production defaults unless given);
    `object_store`: where signed download URLs go; `identities`: the folder of identities
    (the gateway calls the services as `gateway`), None for plaintext backends of a test's own."""
    from cumulo_gateway.envoy_config import ServerTls, UpstreamIdentity, render_json

    return render_json(
        listen_host="127.0.0.1", listen_port=port, admin_port=admin_port, backends=backends,
        tls=ServerTls(str(tls.cert), str(tls.key)), limits=limits or EdgeLimits(), object_store=object_store, console=console,
        identity=UpstreamIdentity.in_folder(identities / "gateway") if identities is not None else None, traces=traces,
        metrics_port=metrics_port,
    )


@contextlib.contextmanager
def running_gateway(
    tls: TlsFiles, folder: pathlib.Path, backends: dict[str, str], limits: EdgeLimits | None = None, *,
    ports: tuple[int, int] | None = None, object_store: ObjectStore | None = None, console: Console | None = None,
    identities: pathlib.Path | None,
) -> Iterator[str]:
    """Envoy on loopback serving TLS in front of `backends`, with its config and log in
    `folder`, for a block: its address ("127.0.0.1:port"). `ports`: (public, admin), free ones
    unless given; `identities`: as in `gateway_config`."""
    envoy = start_envoy(tls, folder, backends, limits, ports=ports, object_store=object_store, console=console, identities=identities)
    try:
        yield f"127.0.0.1:{envoy.port}"
    finally:
        envoy.stop()


def start_envoy(
    tls: TlsFiles, folder: pathlib.Path, backends: dict[str, str], limits: EdgeLimits | None = None, *,
    ports: tuple[int, int] | None = None, object_store: ObjectStore | None = None, console: Console | None = None,
    identities: pathlib.Path | None, traces: TraceSettings = TRACES_OFF, metrics_port: int | None = None,
) -> Envoy:
    """The gateway's Envoy started and ready, its config and log in `folder`; the caller stops it."""
    port, admin_port = ports or tuple(free_ports(2))
    config = folder / f"envoy-{port}.json"
    config.write_text(gateway_config(tls, port, admin_port, backends, limits, object_store, console, identities=identities, traces=traces,
                                     metrics_port=metrics_port))
    envoy = Envoy(config, port, admin_port, folder / f"envoy-{port}.log")
    envoy.start()
    return envoy


class Cloud:
    """The building blocks and every service as separate processes, as in production (a
    client in a server's process would share its one GIL), on free ports under one folder:
    what the benchmarks and the cross-service fault tests start. Each service finds the
    others through CUMULO_<NAME>_TARGET, known before any starts."""

    def __init__(
        self, root: pathlib.Path | None = None, *, prefix: str = "cumulo-cloud-", tls: TlsFiles | None = None,
        identities: pathlib.Path | None = None,
    ) -> None:
        import tempfile

        from cumulo_platform.registry import SERVICES

        # A folder made here is removed at stop (a benchmark's leaves gigabytes); one given is the caller's.
        self._owns_root = root is None
        self.root = root or pathlib.Path(tempfile.mkdtemp(prefix=prefix))
        self.root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
        self.infra = Infra.start(self.root, tls, identities)
        self.ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
        # The first gateway's port, known before blob starts (it signs download URLs for it).
        self.gateway_port = free_port()
        self.processes: dict[str, Process] = {}
        self._envoys: list[Envoy] = []
        self._databases: dict[str, str] = {}

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def environ(self, name: str, **extra: str) -> dict[str, str]:

        base = self.infra.service_environ(CUMULO_LOG_LEVEL="info", CUMULO_ENVIRONMENT="development")
        # A restarted service keeps its database.
        base["DATABASE_URL"] = self.database_url(name)
        return {
            **os.environ,
            **base,
            **{f"CUMULO_{other.upper()}_TARGET": self.target(other) for other in self.ports},
            "CUMULO_GRPC_PORT": str(self.ports[name]),
            "CUMULO_BLOB_DOWNLOAD_URL_BASE": f"https://127.0.0.1:{self.gateway_port}",
            **extra,
        }

    def database_url(self, name: str) -> str:
        """The database a service of this cloud uses (chosen before it starts)."""
        return self._databases.setdefault(name, self.infra.new_database())

    def start_service(self, name: str, **extra: str) -> str:
        import sys

        from cumulo_devstack.testing.channels import serves_service
        from cumulo_platform.registry import SERVICES

        process = Process(name, [sys.executable, "-m", SERVICES[name].module], self.root / f"{name}.log", env=self.environ(name, **extra))
        process.start()
        self.processes[name] = process
        wait_for_port(self.ports[name], process=process.process, timeout=60)
        serves_service(self.target(name), name)
        return self.target(name)

    def start_services(self, **extra: str) -> dict[str, str]:
        """Every service, in the registry's order (auth first: the others need it to start)."""
        from cumulo_platform.registry import SERVICES

        return {name: self.start_service(name, **extra) for name in SERVICES}

    def start_gateway(self, backends: dict[str, str] | None = None, traces: TraceSettings = TRACES_OFF) -> str:
        """Envoy in front of the services, serving TLS with the cloud's development
        certificate: clients trust `self.infra.tls.ca` (CUMULO_CA); `traces`: where its spans go."""
        port = self.gateway_port if not self._envoys else free_port()
        backends = backends or {name: self.target(name) for name in self.ports}
        store = ObjectStore(self.infra.s3.endpoint.removeprefix("http://"))
        envoy = start_envoy(
            self.infra.tls, self.root, backends, ports=(port, free_port()), object_store=store, console=built_console(),
            identities=self.infra.identities, traces=traces,
        )
        self._envoys.append(envoy)
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        for envoy in reversed(self._envoys):
            envoy.stop()
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.infra.stop()
        if self._owns_root:
            import shutil

            shutil.rmtree(self.root, ignore_errors=True)
