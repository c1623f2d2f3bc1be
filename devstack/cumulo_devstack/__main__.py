"""`python -m cumulo_devstack run` (what `make run` does): the whole cloud on one machine.

Checks first that every port it will listen on is free (and starts nothing if one is not),
then starts the embedded PostgreSQL, NATS JetStream and S3 servers with their data under ./var/
(unless DATABASE_URL, NATS_URL or S3_ENDPOINT name external ones), every service as its own
process, then the Envoy gateway, and says "running" only once each of them serves. A part that
fails stops everything started so far. Ctrl-C (or SIGTERM), at any time, stops everything in
reverse order; a second run keeps the data.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import IO, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cumulo_devstack.ports import BadSetting, Port, planned_ports, port_conflicts, port_unusable, taken_meanwhile
from cumulo_devstack.servers import (
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedS3,
    Envoy,
    MailCatcher,
    Process,
    ServerProcess,
    SmsCatcher,
    listens_on,
    log_tail,
)
from cumulo_devstack.stack import built_console, gateway_config
from cumulo_devstack.tls import TlsFiles, ensure_dev_tls, ensure_identities
from cumulo_gateway.envoy_config import ObjectStore
from cumulo_gateway.routes import CLIENT_ID_HEADER
from cumulo_platform.registry import SERVICES
from cumulo_platform.secrets import ensure_keys
from cumulo_platform.settings import Env, trace_settings
from cumulo_sdk.client import DEFAULT_CLIENT_ID

SERVICE_START_TIMEOUT = 60.0  # a service migrates its schema before it serves
SERVER_START_TIMEOUT = 30.0
# An anonymous, read-only call: through the gateway it proves Envoy's listener, its routes and
# its way to a service.
GATEWAY_PROBE = "/cumulo.auth.v1.AuthService/GetTerms"
_NO_PROXY = [("grpc.enable_http_proxy", 0)]  # a proxy named in the environment must not see local calls


class _Stoppable(Protocol):
    def stop(self) -> None: ...


class Failed(Exception):
    """A part did not start or stopped: the lines that say which, and what to do."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM (a BaseException, as KeyboardInterrupt: no `except Exception` on the
    way may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _relative(path: pathlib.Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(pathlib.Path.cwd()))
    return str(path)


def failure(what: str, port: Port | None, log: pathlib.Path | None, pid: int | None, ports: Mapping[str, Port]) -> Failed:
    """`what` went wrong with the part on `port`: its log's last lines and, if another program
    holds its port now (taken after the check, before the part could listen), how to pick another."""
    lines = [what]
    tail = log_tail(log) if log is not None else []
    if log is not None and tail:
        lines += [f"Last lines of {_relative(log)}:", *(f"  | {line}" for line in tail)]
    elif log is not None:
        lines.append(f"Its log, {_relative(log)}, is empty.")
    if port is not None:
        lines += taken_meanwhile(port, pid, ports)
    return Failed(lines)


def serving(address: str) -> bool:
    """The service's gRPC health check (on its plaintext health port) says SERVING."""
    with grpc.insecure_channel(address, options=_NO_PROXY) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def gateway_answers(address: str, ca: pathlib.Path) -> bool:
    """A real call through the gateway, over TLS trusting `ca`, reaches a service. Any answer of
    the service will do (a production-like setup may not know the CLI's client app): Envoy
    routes the whole AuthService, so the only errors of its own are UNAVAILABLE (no way to the
    service, or no TLS) and the deadline."""
    credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    with grpc.secure_channel(address, credentials, options=_NO_PROXY) as channel:
        try:
            channel.unary_unary(GATEWAY_PROBE)(b"", metadata=((CLIENT_ID_HEADER, DEFAULT_CLIENT_ID),), timeout=2)
        except grpc.RpcError as error:
            return error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return True


class Signals:
    """Ctrl-C and SIGTERM interrupt whatever the launcher waits for (so start-up stops at once),
    except while a process is being started (it would escape being stopped) and while stopping."""

    def __init__(self) -> None:
        self.stopping = False
        self._holding = False
        self._held: int | None = None
        self._previous = {sig: signal.signal(sig, self._arrived) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _arrived(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            os.write(2, b"still stopping ...\n")
        elif self._holding:
            self._held = signum
        else:
            raise Interrupted(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Signals wait until the block ends; one that came in wins over the block's failure
        (a terminal's Ctrl-C reaches pgserver's pg_ctl too, which then fails)."""
        self._holding = True
        try:
            yield
        except Exception as exc:
            if self._held is not None:
                raise Interrupted(self._held) from exc
            raise
        finally:
            self._holding = False
        if self._held is not None:
            raise Interrupted(self._held)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Launch:
    """One run's parts: started in order, watched while running, stopped in reverse."""

    def __init__(self, var: pathlib.Path, env: dict[str, str], ports: dict[str, Port], signals: Signals) -> None:
        self.var, self.logs, self.env, self.ports, self.signals = var, var / "logs", env, ports, signals
        self.started: list[_Stoppable] = []
        self.watched: list[tuple[Port, Process]] = []
        self.running = False

    def identities(self) -> pathlib.Path:
        """The run's internal CA and everyone's identity (made under var/identity/ on the first
        run, kept), unless CUMULO_IDENTITY_DIR names an operator's own."""
        if "CUMULO_IDENTITY_DIR" not in self.env:
            self.env["CUMULO_IDENTITY_DIR"] = str(ensure_identities(self.var / "identity"))
            print("identity  internal CA and everyone's certificate in var/identity", flush=True)
        return pathlib.Path(self.env["CUMULO_IDENTITY_DIR"])

    def postgres(self) -> dict[str, str]:
        """The embedded server and its database `cumulo`: each service's URL, as its own login."""
        postgres = EmbeddedPostgres(self.var / "postgres")
        self.started.append(postgres)
        try:
            with self.signals.held():  # pgserver's own start: its postmaster must not escape
                postgres.start()
                postgres.ensure_database("cumulo")
                return {name: postgres.service_url("cumulo", name) for name in SERVICES}
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            raise failure("cumulo could not start: PostgreSQL did not start.", None, self.var / "postgres" / "log", None, self.ports) from exc

    def server(self, key: str, server: ServerProcess) -> None:
        self.started.append(server)
        with self.signals.held():
            server.launch()
        self._await(key, server.process, SERVER_START_TIMEOUT, lambda pid: listens_on(pid, server.port))

    def catcher(self, key: str, catcher: MailCatcher | SmsCatcher) -> None:
        """The mail (`smtp`) or SMS (`sms`) catcher, started on its planned port."""
        port = self.ports[key]
        self.started.append(catcher)
        try:
            with self.signals.held():
                catcher.start()
        except Exception as exc:  # aiosmtpd's start raises its server thread's error, or a timeout; the HTTP server an OSError
            raise failure(f"cumulo could not start: {port.component} cannot listen on port {port.number} ({getattr(exc, 'strerror', None) or exc}).", port, None, None, self.ports) from exc

    def service(self, name: str, module: str) -> None:
        port, health, metrics = self.ports[name], self.ports[f"{name} health"], self.ports[f"{name} metrics"]
        env = {
            **self.env, f"CUMULO_{name.upper()}_GRPC_PORT": str(port.number), f"CUMULO_{name.upper()}_HEALTH_PORT": str(health.number),
            f"CUMULO_{name.upper()}_METRICS_PORT": str(metrics.number),
        }
        process = Process(name, [sys.executable, "-m", module], self.logs / f"{name}.log", env=env)
        self.started.append(process)
        with self.signals.held():
            process.start()
        # Its own listeners first: a health check alone could be answered by whoever took the port.
        self._await(
            name, process, SERVICE_START_TIMEOUT,
            lambda pid: listens_on(pid, port.number) and listens_on(pid, health.number) and serving(f"127.0.0.1:{health.number}"),
        )

    def gateway(self, backends: dict[str, str]) -> TlsFiles:
        """Envoy on the public port, serving TLS with the development CA's certificate (made
        under var/tls/ on the first run and kept: a client that trusts it keeps working)."""
        port, admin = self.ports["gateway"], self.ports["gateway admin"]
        tls = ensure_dev_tls(self.var / "tls")
        config = self.var / "gateway" / "envoy.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        store = ObjectStore(self.env["S3_ENDPOINT"].removeprefix("http://")) if "s3" in self.ports else None
        config.write_text(
            gateway_config(
                tls, port.number, admin.number, backends, object_store=store, console=built_console(),
                identities=pathlib.Path(self.env["CUMULO_IDENTITY_DIR"]), traces=trace_settings(Env("gateway", self.env)),
            )
        )
        envoy = Envoy(config, port.number, admin.number, self.logs / "gateway.log")
        self.started.append(envoy)
        with self.signals.held():
            envoy.launch()

        def serves(pid: int) -> bool:
            return (
                all(listens_on(pid, p.number) for p in (port, admin))
                and envoy.admin_ready()
                and gateway_answers(f"127.0.0.1:{port.number}", tls.ca)
            )

        self._await("gateway", envoy.process, SERVICE_START_TIMEOUT, serves)
        return tls

    def _await(self, key: str, process: Process, timeout: float, serves: Callable[[int], bool]) -> None:
        """Until the process serves (`serves(its pid)`); it stops, or the time runs out: Failed."""
        popen, port, deadline = process.process, self.ports[key], time.monotonic() + timeout
        assert popen is not None
        while not serves(popen.pid):
            if popen.poll() is not None:
                what = f"{port.component} stopped before serving on port {port.number} ({port.variable})."
            elif time.monotonic() > deadline:
                what = f"{port.component} did not serve on port {port.number} ({port.variable}) within {timeout:g} s."
            else:
                time.sleep(0.1)
                continue
            raise failure(f"cumulo could not start: {what}", self._blamed(key, popen.pid), process.log_path, popen.pid, self.ports)
        self.watched.append((port, process))

    def _blamed(self, key: str, pid: int) -> Port:
        """The gateway has two ports: the one another program took, if it did."""
        admin = self.ports["gateway admin"]
        if key == "gateway" and port_unusable(admin.number) is not None and not listens_on(pid, admin.number):
            return admin
        return self.ports[key]

    def watch(self) -> None:
        """Until a signal interrupts it, or a part stops."""
        while True:
            time.sleep(0.5)
            for port, process in self.watched:
                if not process.running:
                    what = f"cumulo stopped: {port.component} on port {port.number} stopped unexpectedly."
                    raise failure(what, None, process.log_path, None, self.ports)

    def stop(self) -> None:
        for item in self.started:  # the services drain side by side, then everything stops in reverse order
            if isinstance(item, Process):
                item.terminate()
        for item in reversed(self.started):
            try:
                item.stop()
            except Exception as exc:  # one part that will not stop must not keep the others running
                print(f"could not stop {item}: {exc}", file=sys.stderr)


def start(launch: Launch) -> int:
    env, ports = launch.env, launch.ports
    if "DATABASE_URL" not in env:
        # Each service logs in as itself, owning its schema of the one database and reading no other.
        env.update({f"CUMULO_{name.upper()}_DATABASE_URL": url for name, url in launch.postgres().items()})
        print("postgres  embedded, data in var/postgres (a login per service, each owning its schema)", flush=True)
    if "nats" in ports:
        nats = EmbeddedNats(launch.var / "nats", ports["nats"].number, launch.logs / "nats.log", launch.identities())
        launch.server("nats", nats)
        env["NATS_URL"] = nats.url
        print(f"nats      {env['NATS_URL']} (JetStream in var/nats)", flush=True)
    if "s3" in ports:
        s3 = EmbeddedS3(launch.var / "s3", ports["s3"].number, launch.logs / "s3.log")
        launch.server("s3", s3)
        env["S3_ENDPOINT"], env["S3_ACCESS_KEY_ID"], env["S3_SECRET_ACCESS_KEY"] = s3.endpoint, s3.access_key, s3.secret_key
        print(f"s3        {env['S3_ENDPOINT']} (buckets in var/s3)", flush=True)
    if "smtp" in ports:
        launch.catcher("smtp", MailCatcher(launch.var / "mail", ports["smtp"].number))
        mail_port = ports["smtp"].number
        env["CUMULO_LIFECYCLE_SMTP_HOST"], env["CUMULO_LIFECYCLE_SMTP_PORT"] = "127.0.0.1", str(mail_port)
        print(f"smtp      127.0.0.1:{mail_port} (lifecycle notices land in var/mail/*.eml)", flush=True)
    if "sms" in ports:
        launch.catcher("sms", SmsCatcher(launch.var / "sms", ports["sms"].number))
        env["CUMULO_LIFECYCLE_SMS_WEBHOOK_URL"] = f"http://127.0.0.1:{ports['sms'].number}/v1/sms"
        print(f"sms       {env['CUMULO_LIFECYCLE_SMS_WEBHOOK_URL']} (text messages land in var/sms/*.json)", flush=True)
    launch.identities()
    # The services' own secret keys (auth's login-hash key), made under var/secrets/ once, kept.
    env.setdefault("CUMULO_SECRETS_DIR", str(ensure_keys(launch.var / "secrets")))
    backends = {name: f"127.0.0.1:{ports[name].number}" for name in SERVICES}
    public = f"https://127.0.0.1:{ports['gateway'].number}"
    if "s3" in ports:  # the embedded S3 is reached through the gateway: blob signs URLs for it
        env.setdefault("CUMULO_BLOB_DOWNLOAD_URL_BASE", public)
    # The freeze notice's link opens the console the gateway serves.
    env.setdefault("CUMULO_LIFECYCLE_REACTIVATE_URL", f"{public}/reactivate")
    # Every service finds the others where this run starts them, and proves who it is with an
    # identity of the run's internal CA (made under var/identity/ on the first run, kept).
    env.update({f"CUMULO_{name.upper()}_TARGET": address for name, address in backends.items()})

    for name, info in SERVICES.items():  # auth first: the others need it to start
        launch.service(name, info.module)
        print(f"{name:<10} {backends[name]} (log in var/logs/{name}.log)", flush=True)
    tls = launch.gateway(backends)
    gateway = ports["gateway"].number
    print(
        f"\ncumulo is running. Gateway: 127.0.0.1:{gateway} (TLS; its CA: {_relative(tls.ca)})\n"
        f"  web console: https://127.0.0.1:{gateway}/ (trust the CA in your browser, or accept its warning)\n"
        f"  export CUMULO_CA={_relative(tls.ca)}\n"
        f"  .venv/bin/cumulo --gateway 127.0.0.1:{gateway} signup --email you@example.com --birth-date 1990-05-17 --accept-terms\n"
        f"  operators: export CUMULO_IDENTITY_DIR={_relative(pathlib.Path(env['CUMULO_IDENTITY_DIR']))} (cumulo-admin calls as its operator identity)\n"
        "Ctrl-C stops everything.",
        flush=True,
    )
    launch.running = True
    launch.watch()
    return 0


def _own_data_folder(var: pathlib.Path) -> IO[str] | None:
    """One run per data folder: two PostgreSQL, NATS or S3 servers on one folder would ruin it,
    and moving the ports (what a port conflict suggests) would not stop the second. The lock
    is held as long as the returned file is open, i.e. until this process ends."""
    holder = (var / ".run.lock").open("a+")
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder.seek(0)
        pid = holder.read().strip() or "?"
        holder.close()
        print(
            f"cumulo cannot start; nothing was started.\n  another `make run` (pid {pid}) uses the data folder {var}.\n"
            "Stop it (Ctrl-C in its terminal), or give this one a folder of its own:\n"
            "  .venv/bin/python -m cumulo_devstack run --var OTHER_FOLDER",
            file=sys.stderr,
        )
        return None
    holder.seek(0)
    holder.truncate()
    holder.write(str(os.getpid()))
    holder.flush()
    return holder


def run(var: pathlib.Path) -> int:
    env = dict(os.environ)
    env.setdefault("CUMULO_ENVIRONMENT", "development")
    env.setdefault("CUMULO_LOG_FORMAT", "console")
    # The demo: a counter-noticed takedown is restored after seconds, not the two weeks of
    # the production default, and restores are looked for every second.
    env.setdefault("CUMULO_MODERATION_COUNTER_NOTICE_WAIT", "PT20S")
    env.setdefault("CUMULO_MODERATION_RESTORE_EVERY", "PT1S")
    var.mkdir(parents=True, exist_ok=True)
    owner = _own_data_folder(var)
    if owner is None:
        return 1
    try:
        ports = planned_ports(env)
    except BadSetting as exc:
        print(f"cumulo cannot start: {exc}", file=sys.stderr)
        return 2
    conflicts = port_conflicts(ports)
    if conflicts:
        print("\n".join(conflicts), file=sys.stderr)
        return 1
    signals = Signals()
    launch = Launch(var, env, ports, signals)
    try:
        return start(launch)
    except Interrupted as interrupted:
        signals.stopping = True  # a second Ctrl-C now only says "still stopping"
        if launch.running:
            return 0  # the way to stop it
        print("\ninterrupted while starting", flush=True)
        return 128 + interrupted.signum
    except Failed as failed:
        signals.stopping = True
        print(f"\n{failed}", file=sys.stderr, flush=True)
        return 1
    finally:
        signals.stopping = True
        print("\nstopping ...", flush=True)
        launch.stop()
        print("stopped", flush=True)
        signals.restore()


def kubernetes_identities(namespace: str) -> str:
    """A development cluster's identity Secrets (cumulo-identity-<name>, the layout
    cert-manager writes), from a new internal CA, as a kubectl-ready YAML list. A production
    cluster issues them with its own CA (a cert-manager CA Issuer) instead."""
    import base64
    import json
    import tempfile

    from cumulo_devstack.tls import identity_names
    from cumulo_platform.identity import CA_FILE, CERT_FILE, KEY_FILE

    with tempfile.TemporaryDirectory() as scratch:
        folder = ensure_identities(pathlib.Path(scratch))
        items = [
            {
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": f"cumulo-identity-{name}", "namespace": namespace},
                "data": {file: base64.b64encode((folder / name / file).read_bytes()).decode() for file in (CA_FILE, CERT_FILE, KEY_FILE)},
            }
            for name in identity_names()
        ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2)


def kubernetes_secrets(namespace: str) -> str:
    """Every service's secret keys (cumulo_platform.secrets), new and random, as Secrets
    cumulo-secrets-<service> in a kubectl-ready YAML list. Made once per cluster and kept:
    a new login-hash key forgets the logins of deleted accounts."""
    import base64
    import json
    import secrets as random

    from cumulo_platform.secrets import KEYS, MIN_KEY_BYTES

    services = sorted({service for service, _ in KEYS})
    items = [
        {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"cumulo-secrets-{service}", "namespace": namespace},
            "data": {f"{name}.key": base64.b64encode(random.token_bytes(MIN_KEY_BYTES)).decode() for owner, name in KEYS if owner == service},
        }
        for service in services
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cumulo_devstack")
    parser.add_argument("command", choices=["run", "k8s-identities", "k8s-secrets", "nats-config", "pg-roles"])
    parser.add_argument("--var", default="var", help="where the embedded servers keep their data")
    parser.add_argument("--namespace", default="cumulo", help="k8s-identities, k8s-secrets: the namespace of the Secrets")
    parser.add_argument("--identity-dir", default="/var/run/cumulo/identity", help="nats-config: where the server finds nats/ca.crt, tls.crt, tls.key")
    parser.add_argument("--store-dir", default="/data/jetstream", help="nats-config: JetStream's storage")
    parser.add_argument("--database", default="cumulo", help="pg-roles: the database the services share")
    args = parser.parse_args(argv)
    if args.command == "k8s-identities":
        print(kubernetes_identities(args.namespace))
        return 0
    if args.command == "k8s-secrets":
        print(kubernetes_secrets(args.namespace))
        return 0
    if args.command == "pg-roles":  # for psql as a superuser: a login per service, owning its schema
        from cumulo_platform.migrations import role_statements

        print("\n".join(f"{statement};" for name in SERVICES for statement in role_statements(name, args.database)))
        return 0
    if args.command == "nats-config":  # a cluster's NATS: TLS, a user per identity, their permissions
        from cumulo_platform.bus_access import server_config, users

        print(server_config(host="0.0.0.0", port=4222, store_dir=args.store_dir, identity_dir=args.identity_dir, users=users()))
        return 0
    try:
        return run(pathlib.Path(args.var).resolve())
    except KeyboardInterrupt:  # before anything started: nothing to stop
        return 128 + signal.SIGINT
    except Interrupted as interrupted:  # a second one, after everything started was stopped
        return 128 + interrupted.signum


if __name__ == "__main__":
    sys.exit(main())
