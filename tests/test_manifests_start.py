"""The production overlay starts what it says: every container's command, arguments and
environment, taken from the rendered manifest (ConfigMaps resolved from it, the operators'
Secrets given the test's values, `$(VAR)` expanded as the kubelet does), run on this machine
against the session's PostgreSQL and S3 and a three-node JetStream cluster (the overlay keeps
three copies of each stream). Only addresses are substituted: a Service's DNS name and port
become 127.0.0.1 and a free port, a mounted path the test's folder holding what the Secret or
volume would, the database's host the session's server. The migration Jobs run first, then the
services in the registry's order, each awaited by its own readiness probe, then the gateway's
init container and Envoy; a session through the gateway signs up, logs in, uploads and lists a
file. A manifest whose settings do not make a working service fails here."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.__main__ import gateway_answers
from cumulo_devstack.servers import MailCatcher, Process, free_port, free_ports, wait_until_listening
from cumulo_devstack.stack import Infra
from cumulo_devstack.testing import PASSWORD, allowed_caller, identity, serves_service, unique_email
from cumulo_devstack.testing.manifests import of_kind, render
from cumulo_platform.bus_access import server_config, users
from cumulo_platform.events import STREAM_NAME, Nats
from cumulo_platform.identity import OPERATOR
from cumulo_platform.registry import SERVICES
from cumulo_platform.secrets import ensure_keys
from cumulo_sdk import Cumulo
from cumulo_sdk.client import DEFAULT_CLIENT_ID, TokenStore

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROD = ROOT / "deploy" / "k8s" / "overlays" / "prod"
BIN = pathlib.Path(sys.executable).parent
START_TIMEOUT = 120.0  # a loaded machine: the services migrate nothing at start, but import a lot
IMAGE_WORKDIR = "/app"  # the cumulo image's (Dockerfile): its paths are this repository's


# --- a local JetStream cluster ----------------------------------------------------------------


@dataclasses.dataclass
class JetStreamCluster:
    """Three nats-server processes routed together, each configured as the cluster's NATS is
    (`nats-config`: TLS with NATS's identity, a user per identity)."""

    nodes: list[Process]
    ports: list[int]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.ports[0]}"

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_jetstream_cluster(folder: pathlib.Path, identities: pathlib.Path) -> JetStreamCluster:
    ports, routes = free_ports(3), free_ports(3)
    nodes = []
    for index, (port, route) in enumerate(zip(ports, routes, strict=True)):
        store = folder / f"node{index}"
        store.mkdir(parents=True)
        config = json.loads(server_config(host="127.0.0.1", port=port, store_dir=store, identity_dir=identities, users=users()))
        config["server_name"] = f"nats-{index}"
        config["cluster"] = {
            "name": "cumulo", "listen": f"127.0.0.1:{route}", "routes": [f"nats://127.0.0.1:{other}" for other in routes if other != route],
        }
        path = store / "nats.conf"
        path.write_text(json.dumps(config))
        node = Process(f"nats-{index}", [str(BIN / "nats-server"), "-c", str(path)], folder / f"nats-{index}.log")
        node.start()
        nodes.append(node)
    cluster = JetStreamCluster(nodes, ports)
    for node, port in zip(nodes, ports, strict=True):
        assert node.process is not None
        wait_until_listening(node.process, port, timeout=60)
    return cluster


async def jetstream_ready(url: str) -> None:
    """Until the cluster has elected its leader and answers JetStream's API (the streams are
    left to the services to make, as in production)."""
    deadline = time.monotonic() + 60
    while True:
        client = Nats(url, identity=identity(OPERATOR))
        try:
            await (await client.connection()).jetstream(timeout=2).account_info()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
        finally:
            await client.close()


# --- from the manifest to a process -----------------------------------------------------------


class Machine:
    """What stands in for the cluster: the operators' Secrets' values, the Services' addresses
    on free ports, mounted paths as folders."""

    def __init__(self, objects: list[dict[str, Any]], folder: pathlib.Path, infra: Infra, nats_url: str, mail: MailCatcher) -> None:
        self.objects = objects
        self.folder = folder
        self.services = of_kind(objects, "Service")
        cluster = of_kind(objects, "Cluster")["cumulo-db"]["spec"]
        self.database = cluster["bootstrap"]["initdb"]["database"]
        self.database_host = "cumulo-db-rw"
        # The database as CloudNativePG initialises it: its application database, then the
        # Cluster's own statements as the superuser (every service's role and schema).
        infra.postgres.ensure_database(self.database)
        infra.postgres.psql(";\n".join(cluster["bootstrap"]["initdb"]["postInitApplicationSQL"]) + ";\n", self.database)
        self.postgres_url = infra.postgres.url(self.database)
        self.nats_url = nats_url
        self.mail = mail
        # Every port a container listens on, and every Service port, moved to a free one.
        ports = sorted(
            {p["containerPort"] for d in of_kind(objects, "Deployment").values() for c in d["spec"]["template"]["spec"]["containers"]
             for p in c.get("ports", [])}
            | {p["port"] for s in self.services.values() for p in s["spec"]["ports"]}
        )
        self.ports = dict(zip(ports, free_ports(len(ports)), strict=True))
        # The operators' Secrets, with this machine's values.
        passwords = {f"cumulo-db-{name}": {"username": f"cumulo_{name}", "password": os.urandom(16).hex()} for name in SERVICES}
        self.secrets: dict[str, dict[str, str]] = {
            "cumulo-secrets": {
                "S3_ENDPOINT": infra.s3.endpoint, "S3_ACCESS_KEY_ID": infra.s3.access_key, "S3_SECRET_ACCESS_KEY": infra.s3.secret_key,
            },
            **passwords,
        }
        keys = ensure_keys(folder / "keys")
        tls = folder / "gateway-tls"
        tls.mkdir()
        shutil.copy(infra.tls.cert, tls / "tls.crt")
        shutil.copy(infra.tls.key, tls / "tls.key")
        # A Secret volume: the folder holding its files.
        self.secret_folders = {
            **{f"cumulo-identity-{name}": infra.identities / name for name in [*SERVICES, "gateway", "operator"]},
            **{f"cumulo-secrets-{path.name}": path for path in keys.iterdir() if path.is_dir()},
            "gateway-tls": tls,
        }

    def address(self, value: str) -> str:
        """`host:port` of a Service (or of the mail relay the configuration names) on this machine."""
        host, port = value.rsplit(":", 1)
        if host == "smtp":
            return f"127.0.0.1:{self.mail.port}"
        assert host in self.services, f"{value}: no such Service in the manifest"
        assert int(port) in {p["port"] for p in self.services[host]["spec"]["ports"]}, value
        return f"127.0.0.1:{self.ports[int(port)]}"

    def mounts(self, spec: dict[str, Any], container: dict[str, Any]) -> dict[str, pathlib.Path]:
        """Each of the container's mount paths, and the parent folders the configuration names,
        as this machine's folders."""
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        found: dict[str, pathlib.Path] = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            path = mount["mountPath"]
            if "secret" in volume:
                local = self.secret_folders[volume["secret"]["secretName"]]
                # The layout the settings expect (<dir>/<name>/): the Secret of that name there.
                if local.name == pathlib.PurePosixPath(path).name:
                    found.setdefault(str(pathlib.PurePosixPath(path).parent), local.parent)
            else:
                assert "emptyDir" in volume, volume
                local = self.folder / "volumes" / spec_name(container) / mount["name"]
                local.mkdir(parents=True, exist_ok=True)
            found[path] = local
        return found

    def environment(self, spec: dict[str, Any], container: dict[str, Any], mounts: dict[str, pathlib.Path]) -> dict[str, str]:
        env: dict[str, str] = {}
        configmaps = {name: o["data"] for name, o in of_kind(self.objects, "ConfigMap").items()}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(configmaps[source["configMapRef"]["name"]])
            else:
                env.update(self.secret(source["secretRef"]["name"]))
        for entry in container.get("env", []):
            if "value" in entry:
                # $(NAME) of a variable defined before it, as the kubelet expands it.
                env[entry["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), entry["value"])
            else:
                ref = entry["valueFrom"]["secretKeyRef"]
                env[entry["name"]] = self.secret(ref["name"])[ref["key"]]
        return {name: self.substitute(name, value, mounts) for name, value in env.items()}

    def secret(self, name: str) -> dict[str, str]:
        rendered = of_kind(self.objects, "Secret").get(name)
        if rendered is not None:
            return {k: base64.b64decode(v).decode() for k, v in rendered.get("data", {}).items()}
        assert name in self.secrets, f"Secret {name}: neither in the manifest nor one the operators make"
        return self.secrets[name]

    def substitute(self, name: str, value: str, mounts: dict[str, pathlib.Path]) -> str:
        if name == "DATABASE_URL":
            url = urlsplit(value)
            assert (url.hostname, url.port, url.path) == (self.database_host, 5432, f"/{self.database}"), value
            # The manifest's login (its role, its password) on the session's server.
            return self.postgres_url.replace("postgresql://postgres:@", f"postgresql://{url.username}:{url.password}@", 1)
        if name == "NATS_URL":
            assert value == "nats://nats:4222", value
            return self.nats_url
        if name == "CUMULO_GRPC_HOST":
            return "127.0.0.1"
        if name == "CUMULO_LIFECYCLE_SMTP_HOST":
            return "127.0.0.1"
        if name == "CUMULO_LIFECYCLE_SMTP_PORT":
            return str(self.mail.port)
        if name.endswith("_PORT") and value.isdigit():
            return str(self.ports[int(value)])
        if name.endswith("_TARGET"):
            return self.address(value)
        for path in sorted(mounts, key=len, reverse=True):
            if value == path or value.startswith(path + "/"):
                return str(mounts[path]) + value[len(path):]
        # A path no volume of this pod provides stays as it is: if the process needs it, it
        # fails here as it would in the cluster.
        return value

    def command(self, container: dict[str, Any], mounts: dict[str, pathlib.Path]) -> list[str]:
        argv = [*container.get("command", []), *container.get("args", [])]
        if argv and argv[0] == "python":
            argv[0] = sys.executable  # the image's Python is this virtualenv's here
        return [self.paths(arg, mounts) for arg in argv]

    def paths(self, text: str, mounts: dict[str, pathlib.Path]) -> str:
        for path in sorted(mounts, key=len, reverse=True):
            text = text.replace(path, str(mounts[path]))
        return text.replace(f"{IMAGE_WORKDIR}/", f"{ROOT}/")


def spec_name(container: dict[str, Any]) -> str:
    return str(container["name"])


def base_environment(tmp: pathlib.Path) -> dict[str, str]:
    """What the image gives every process: a PATH (with this virtualenv's python first), a home."""
    return {"PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(tmp), "LANG": "C.UTF-8"}


def serving(address: str, service: str) -> bool:
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def await_until(ready: Any, process: Process, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        assert process.process is not None
        if process.process.poll() is not None or time.monotonic() > deadline:
            tail = process.log_path.read_text(errors="replace")[-3000:] if process.log_path.exists() else ""
            pytest.fail(f"{what} did not start from its manifest:\n{tail}")
        time.sleep(0.2)


@dataclasses.dataclass
class Started:
    gateway: str
    machine: Machine
    processes: list[Process]


@pytest.fixture(scope="module")
def started(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    folder = tmp_path_factory.mktemp("manifests")
    objects = render(PROD)
    cluster = start_jetstream_cluster(folder / "nats", infra.identities)
    mail = MailCatcher(folder / "mail", free_port())
    mail.start()
    processes: list[Process] = []
    try:
        asyncio.run(jetstream_ready(cluster.url))
        machine = Machine(objects, folder, infra, cluster.url, mail)
        env0 = base_environment(folder)
        # The migration Jobs, to completion (step 1 of a release).
        for name, job in of_kind(objects, "Job").items():
            spec = job["spec"]["template"]["spec"]
            [container] = spec["containers"]
            mounts = machine.mounts(spec, container)
            done = subprocess.run(
                machine.command(container, mounts), env={**env0, **machine.environment(spec, container, mounts)},
                capture_output=True, text=True, timeout=300,
            )
            assert done.returncode == 0, f"Job {name}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        # The services, auth first (the others ask it for keys at start), each until its
        # readiness probe says so.
        deployments = of_kind(objects, "Deployment")
        for name in SERVICES:
            spec = deployments[name]["spec"]["template"]["spec"]
            [container] = spec["containers"]
            mounts = machine.mounts(spec, container)
            process = Process(name, machine.command(container, mounts), folder / f"{name}.log", env={**env0, **machine.environment(spec, container, mounts)})
            process.start()
            processes.append(process)
            probe = container["readinessProbe"]["grpc"]
            health, probed = f"127.0.0.1:{machine.ports[probe['port']]}", probe.get("service", "")
            await_until(lambda h=health, s=probed: serving(h, s), process, f"Deployment {name}")
            grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
            serves_service(f"127.0.0.1:{machine.ports[grpc_port]}", name)
            if name == "auth":
                # Production registers no client app by itself: the operator registers the
                # CLI's, as one would before users come (and before the gateway's first call).
                asyncio.run(register_client_app(f"127.0.0.1:{machine.ports[grpc_port]}"))
        # The gateway: its init container renders Envoy's config into the shared volume, then Envoy.
        spec = deployments["gateway"]["spec"]["template"]["spec"]
        [render_container] = spec["initContainers"]
        [envoy] = spec["containers"]
        mounts = {**machine.mounts(spec, render_container), **machine.mounts(spec, envoy)}
        rendered = subprocess.run(machine.command(render_container, mounts), env=env0, capture_output=True, text=True, timeout=120)
        assert rendered.returncode == 0, rendered.stderr
        [config_path] = [arg for arg in machine.command(envoy, mounts) if arg.endswith(".json")]
        config = json.loads(machine.paths(pathlib.Path(config_path).read_text(), mounts))
        public = next(p["containerPort"] for p in envoy["ports"] if p["name"] == "public")
        # The admin is on the pod's loopback, declared by no port: a free one here (its series
        # reach Prometheus through the declared "metrics" listener, which passes to it).
        admin = config["admin"]["address"]["socket_address"]["port_value"]
        here = {**{p["containerPort"]: machine.ports[p["containerPort"]] for p in envoy["ports"]}, admin: free_port()}
        localize_envoy(config, machine, here)
        pathlib.Path(config_path).write_text(json.dumps(config))
        argv = machine.command(envoy, mounts)
        process = Process("gateway", [str(BIN / "envoy"), *argv], folder / "gateway.log", env=env0)
        process.start()
        processes.append(process)
        gateway = f"127.0.0.1:{machine.ports[public]}"
        await_until(lambda: gateway_answers(gateway, infra.tls.ca), process, "Deployment gateway")
        yield Started(gateway, machine, processes)
    finally:
        for process in reversed(processes):
            process.stop()
        mail.stop()
        cluster.stop()


async def register_client_app(auth: str) -> None:
    async with allowed_caller(auth, auth_pb2_grpc.AuthInternalServiceStub) as internal:
        await internal.RegisterClientApp(auth_pb2.RegisterClientAppRequest(client_id=DEFAULT_CLIENT_ID, name="cumulo CLI"))


def localize_envoy(config: Any, machine: Machine, here: dict[int, int]) -> None:
    """Envoy's addresses on this machine: its listeners (the ports the manifest declares) and
    its admin on loopback, at the free ports in `here`; each backend (a Service's DNS name) at
    its service's port here."""
    if isinstance(config, dict):
        address = config.get("socket_address")
        if isinstance(address, dict):
            host, port = address["address"], address["port_value"]
            if host in machine.services:
                address["address"], address["port_value"] = "127.0.0.1", int(machine.address(f"{host}:{port}").rsplit(":", 1)[1])
            elif port in here:
                address["address"], address["port_value"] = "127.0.0.1", here[port]
            else:
                raise AssertionError(f"an address in Envoy's config the manifest does not explain: {host}:{port}")
        for value in config.values():
            localize_envoy(value, machine, here)
    elif isinstance(config, list):
        for value in config:
            localize_envoy(value, machine, here)


async def test_a_session_through_the_gateway_the_manifests_started(started, tmp_path):
    """A user signs up, logs in, uploads a file and finds it listed, through the gateway."""
    client = Cumulo(started.gateway, store=TokenStore(tmp_path / "credentials.json"), pending_uploads=tmp_path / "uploads.json")
    try:
        address = unique_email()
        await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
        await client.login(address, PASSWORD, device_name="manifest test")
        path = tmp_path / "hello.txt"
        path.write_bytes(b"bytes out equal bytes in\n")
        node = await client.files.upload(path)
        assert [n.name for n in await client.files.ls()] == ["hello.txt"]
        assert node.name == "hello.txt"
    finally:
        await client.close()


def test_the_services_made_the_event_stream_with_the_overlays_three_copies(started):
    """The streams the running services use are the ones the manifest's setting asks for."""

    async def replicas() -> int:
        client = Nats(started.machine.nats_url, identity=identity(OPERATOR))
        try:
            info = await (await client.connection()).jetstream().stream_info(STREAM_NAME)
            return int(info.config.num_replicas or 1)
        finally:
            await client.close()

    assert asyncio.run(replicas()) == 3
