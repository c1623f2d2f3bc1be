"""The test session's real servers and services.

Once per session: a real PostgreSQL, NATS JetStream and S3 server on free ports (or the ones
named by CUMULO_TEST_DATABASE_URL / CUMULO_TEST_NATS_URL), the auth service in-process on a
movable clock, and Envoy in front of it built from the gateway's routes.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from cumulo_auth import bootstrap as auth_bootstrap
from cumulo_auth.config import AuthSettings
from cumulo_devstack.servers import EmbeddedNats, EmbeddedPostgres, EmbeddedS3, Envoy, free_port
from cumulo_gateway.envoy_config import render_json
from cumulo_platform.clock import OffsetClock
from cumulo_platform.logging import configure_logging
from cumulo_sdk import Cumulo


@dataclasses.dataclass
class Infra:
    postgres: EmbeddedPostgres
    nats: EmbeddedNats
    s3: EmbeddedS3
    root: pathlib.Path

    def new_database(self) -> str:
        return self.postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    configure_logging("tests", "warning", "console")
    root = tmp_path_factory.mktemp("infra")
    postgres = EmbeddedPostgres(root / "postgres")
    nats = EmbeddedNats(root / "nats", free_port(), root / "nats.log")
    s3 = EmbeddedS3(root / "s3", free_port(), root / "s3.log")
    postgres.start()
    nats.start()
    s3.start()
    try:
        yield Infra(postgres, nats, s3, root)
    finally:
        s3.stop()
        nats.stop()
        postgres.stop()


def service_environ(infra: Infra, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": infra.new_database(),
        "NATS_URL": infra.nats.url,
        "S3_ENDPOINT": infra.s3.endpoint,
        "S3_ACCESS_KEY_ID": infra.s3.access_key,
        "S3_SECRET_ACCESS_KEY": infra.s3.secret_key,
        "CUMULO_GRPC_PORT": str(free_port()),
        "CUMULO_LOG_LEVEL": "warning",
        "CUMULO_DRAIN_GRACE_SECONDS": "1",
        **extra,
    }


@dataclasses.dataclass
class RunningAuth:
    app: auth_bootstrap.AuthApp
    clock: OffsetClock
    target: str


@pytest.fixture(scope="session")
async def auth(infra: Infra) -> AsyncIterator[RunningAuth]:
    settings = AuthSettings.from_env(service_environ(infra))
    clock = OffsetClock()
    app = await auth_bootstrap.build(settings, clock=clock)
    port = await app.runtime.start()
    try:
        yield RunningAuth(app, clock, f"127.0.0.1:{port}")
    finally:
        await app.runtime.stop()


@pytest.fixture
def clock(auth: RunningAuth) -> Iterator[OffsetClock]:
    """The auth service's clock; whatever a test moves is put back afterwards."""
    before = auth.clock.offset
    yield auth.clock
    auth.clock.offset = before


@pytest.fixture(scope="session")
def gateway(auth: RunningAuth, infra: Infra) -> Iterator[str]:
    port, admin_port = free_port(), free_port()
    config = infra.root / "envoy.json"
    config.write_text(
        render_json(listen_host="127.0.0.1", listen_port=port, admin_port=admin_port, backends={"auth": auth.target})
    )
    envoy = Envoy(config, port, admin_port, infra.root / "envoy.log")
    envoy.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        envoy.stop()


@pytest.fixture
async def direct(auth: RunningAuth) -> AsyncIterator[Cumulo]:
    """A client straight to the auth service (no gateway)."""
    async with Cumulo(auth.target) as client:
        yield client


@pytest.fixture
async def client(gateway: str) -> AsyncIterator[Cumulo]:
    """A client through the gateway, as phones and the CLI call."""
    async with Cumulo(gateway) as client:
        yield client


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


PASSWORD = "correct horse battery staple"


@pytest.fixture
def new_email() -> str:
    return unique_email()


@pytest.fixture
async def user(client: Cumulo) -> tuple[Cumulo, str]:
    """A registered adult, logged in through the gateway."""
    email = unique_email()
    import datetime as dt

    await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    await client.login(email, PASSWORD, device_name="test phone")
    return client, email
