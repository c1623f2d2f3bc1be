"""The test session's real servers and services.

Once per session: a real PostgreSQL, NATS JetStream and S3 server on free ports under the
session's temporary folder, the auth service in-process on a movable clock, and Envoy in
front of it configured from the gateway's routes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import pytest
import structlog
from structlog._config import BoundLoggerLazyProxy

from cumulo_auth import bootstrap as auth_bootstrap
from cumulo_auth.config import AuthSettings
from cumulo_blob import bootstrap as blob_bootstrap
from cumulo_blob.config import BlobSettings
from cumulo_devstack.servers import MailCatcher, SmsCatcher, free_port, free_ports
from cumulo_devstack.stack import Infra, built_console, running_gateway
from cumulo_devstack.testing import People, serves_tls, signing_key_of, start_service, transport_for, verify_email
from cumulo_gateway.envoy_config import EdgeLimits, ObjectStore
from cumulo_lifecycle import bootstrap as lifecycle_bootstrap
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_locator import bootstrap as locator_bootstrap
from cumulo_locator.config import LocatorSettings
from cumulo_moderation import bootstrap as moderation_bootstrap
from cumulo_moderation.config import ModerationSettings
from cumulo_platform.clock import OffsetClock
from cumulo_platform.logging import configure_logging, get_logger
from cumulo_platform.runtime import ServiceRuntime
from cumulo_sdk import Cumulo
from cumulo_sync import bootstrap as sync_bootstrap
from cumulo_sync.config import SyncSettings

# A browser origin the session's gateway lets call the API (CORS), as an operator configures one.
CONSOLE_ORIGIN = "https://console.cumulo.test"


class ServiceApp(Protocol):
    """What every service's bootstrap builds: its runtime among the rest."""

    @property
    def runtime(self) -> ServiceRuntime: ...


App = TypeVar("App", bound=ServiceApp)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    configure_logging("tests", "warning", "console")
    # Not under pytest's temporary folder: that one is private to root (0700), and PostgreSQL
    # runs as its own user, which must reach its data folder.
    root = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-test-"))
    root.chmod(0o755)
    infra = Infra.start(root)
    # Clients trust the session's development CA, as a `make run` user sets CUMULO_CA (the
    # CLI's subprocesses inherit it).
    # ... and the session's internal CA, as `make run` sets CUMULO_IDENTITY_DIR (cumulo-admin
    # calls as its operator identity; tests reach services as the gateway or as whom they name).
    before = {name: os.environ.get(name) for name in ("CUMULO_CA", "CUMULO_IDENTITY_DIR")}
    os.environ["CUMULO_CA"] = str(infra.tls.ca)
    os.environ["CUMULO_IDENTITY_DIR"] = str(infra.identities)
    try:
        yield infra
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        infra.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def lifecycle_target() -> str:
    """Where the session's lifecycle service listens; the others are told before it starts."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def sync_target() -> str:
    """Where the session's sync service listens: blob, which starts first, asks it for take-outs."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def locator_target() -> str:
    """Where the session's locator listens (blob asks it for take-outs too)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def mail(infra: Infra) -> Iterator[MailCatcher]:
    """A real SMTP server catching the lifecycle's notices as files."""
    catcher = MailCatcher(infra.root / "mail", free_port())
    catcher.start()
    try:
        yield catcher
    finally:
        catcher.stop()


@pytest.fixture(scope="session")
def sms(infra: Infra) -> Iterator[SmsCatcher]:
    """A real SMS provider's webhook catching the lifecycle's text messages as files."""
    catcher = SmsCatcher(infra.root / "sms", free_port())
    catcher.start()
    try:
        yield catcher
    finally:
        catcher.stop()


@dataclasses.dataclass
class Running(Generic[App]):
    """A service running in the test process: its app, its movable clock, its address."""

    app: App
    clock: OffsetClock
    target: str


@contextlib.asynccontextmanager
async def in_process(build: Callable[..., Awaitable[App]], settings: Any) -> AsyncIterator[Running[App]]:
    clock = OffsetClock()
    app = await build(settings, clock=clock)
    port = await start_service(app.runtime)
    try:
        yield Running(app, clock, f"127.0.0.1:{port}")
    finally:
        await app.runtime.stop()


@pytest.fixture(scope="session")
async def auth(infra: Infra, lifecycle_target: str) -> AsyncIterator[Running[auth_bootstrap.AuthApp]]:
    settings = AuthSettings.from_env(
        infra.service_environ(
            CUMULO_LIFECYCLE_TARGET=lifecycle_target,
            # Every CLI signup of the suite checks its password from 127.0.0.1: the per-address
            # limit must not depend on how many of them a fast machine fits in one window
            # (the limit itself is tested on an auth of its own).
            CUMULO_AUTH_PASSWORD_CHECKS_PER_ADDRESS="1000000",
        )
    )
    async with in_process(auth_bootstrap.build, settings) as running:
        yield running


@pytest.fixture(scope="session")
def gateway_ports() -> tuple[int, int]:
    """The session gateway's port and admin port, known before blob starts: blob signs its
    download URLs for the gateway's address."""
    port, admin_port = free_ports(2)
    return port, admin_port


@pytest.fixture(scope="session")
async def blob(
    infra: Infra, auth: Running, lifecycle_target: str, sync_target: str, locator_target: str, gateway_ports: tuple[int, int]
) -> AsyncIterator[Running[blob_bootstrap.BlobApp]]:
    settings = BlobSettings.from_env(
        infra.service_environ(
            CUMULO_AUTH_TARGET=auth.target, CUMULO_LIFECYCLE_TARGET=lifecycle_target,
            CUMULO_SYNC_TARGET=sync_target, CUMULO_LOCATOR_TARGET=locator_target,
            CUMULO_BLOB_DOWNLOAD_URL_BASE=f"https://127.0.0.1:{gateway_ports[0]}",
            # Take-outs are picked up at once, and split into archives of 3 MiB (a test's
            # few files fill more than one).
            CUMULO_BLOB_TAKEOUT_EVERY="PT0.3S", CUMULO_BLOB_TAKEOUT_ARCHIVE_BYTES=str(3 * 1024 * 1024),
            # Subscribers are told of a new price at once; it may apply a minute later.
            CUMULO_BLOB_PRICE_NOTICE_EVERY="PT0.3S", CUMULO_BLOB_PRICE_NOTICE="PT60S",
        )
    )
    async with in_process(blob_bootstrap.build, settings) as running:
        yield running


@pytest.fixture(scope="session")
async def sync(
    infra: Infra, auth: Running, blob: Running, lifecycle_target: str, sync_target: str
) -> AsyncIterator[Running[sync_bootstrap.SyncApp]]:
    settings = SyncSettings.from_env(
        infra.service_environ(
            CUMULO_GRPC_PORT=sync_target.rsplit(":", 1)[1],
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_BLOB_TARGET=blob.target,
            CUMULO_LIFECYCLE_TARGET=lifecycle_target,
            CUMULO_SYNC_PRUNE_EVERY="PT1H",  # tests prune when they mean to
            CUMULO_SYNC_WATCH_HEARTBEAT="PT1S",
        )
    )
    async with in_process(sync_bootstrap.build, settings) as running:
        yield running


@pytest.fixture(scope="session")
async def locator(
    infra: Infra, auth: Running, lifecycle_target: str, locator_target: str
) -> AsyncIterator[Running[locator_bootstrap.LocatorApp]]:
    settings = LocatorSettings.from_env(
        infra.service_environ(
            CUMULO_GRPC_PORT=locator_target.rsplit(":", 1)[1],
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_LIFECYCLE_TARGET=lifecycle_target,
            CUMULO_LOCATOR_PRUNE_EVERY="PT1H",  # tests prune and expire when they mean to
            CUMULO_LOCATOR_EXPIRE_EVERY="PT1H",
            CUMULO_LOCATOR_HEARTBEAT="PT1S",
        )
    )
    async with in_process(locator_bootstrap.build, settings) as running:
        yield running


@pytest.fixture(scope="session")
async def moderation(
    infra: Infra, auth: Running, blob: Running, sync: Running, locator: Running, lifecycle_target: str
) -> AsyncIterator[Running[moderation_bootstrap.ModerationApp]]:
    settings = ModerationSettings.from_env(
        infra.service_environ(
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_BLOB_TARGET=blob.target,
            CUMULO_SYNC_TARGET=sync.target,
            CUMULO_LOCATOR_TARGET=locator.target,
            CUMULO_LIFECYCLE_TARGET=lifecycle_target,
            CUMULO_MODERATION_RESTORE_EVERY="PT1H",  # tests restore when they mean to
            # Every test's complaints come through the gateway from 127.0.0.1: the per-address
            # limit is tested on its own (services/moderation/tests/test_decisions.py).
            CUMULO_MODERATION_COMPLAINTS_PER_ADDRESS="100000",
        )
    )
    async with in_process(moderation_bootstrap.build, settings) as running:
        yield running


@pytest.fixture(scope="session")
async def lifecycle(
    infra: Infra, auth: Running, blob: Running, sync: Running, locator: Running, moderation: Running, lifecycle_target: str,
    mail: MailCatcher, sms: SmsCatcher, gateway_ports: tuple[int, int],
) -> AsyncIterator[Running[lifecycle_bootstrap.LifecycleApp]]:
    """The lifecycle with the product's periods (P12M, P30D): nothing of the session freezes
    unless a test ages one account on purpose (see services/lifecycle/tests)."""
    settings = LifecycleSettings.from_env(
        infra.service_environ(
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_GRPC_PORT=lifecycle_target.rsplit(":", 1)[1],
            CUMULO_LIFECYCLE_SMTP_HOST="127.0.0.1",
            CUMULO_LIFECYCLE_SMTP_PORT=str(mail.port),
            CUMULO_LIFECYCLE_SMS_WEBHOOK_URL=sms.url,
            CUMULO_LIFECYCLE_NOTICE_EVERY="PT0.2S",
            CUMULO_LIFECYCLE_SWEEP_EVERY="PT1H",  # tests sweep when they mean to
            # The notice's link opens the session gateway's console, as under `make run`.
            CUMULO_LIFECYCLE_REACTIVATE_URL=f"https://127.0.0.1:{gateway_ports[0]}/reactivate",
        )
    )
    async with in_process(lifecycle_bootstrap.build, settings) as running:
        yield running


@pytest.fixture
def clock(auth: Running) -> Iterator[OffsetClock]:
    """The auth service's clock; whatever a test moves is put back afterwards."""
    before = auth.clock.offset
    yield auth.clock
    auth.clock.offset = before


@pytest.fixture(scope="session")
def gateway(backends: dict[str, str], blob: Running, infra: Infra, gateway_ports: tuple[int, int]) -> Iterator[str]:
    # Every test calls from 127.0.0.1: the edge's per-address buckets are lifted for the
    # session (gateway/tests/test_edge_limits.py runs a gateway of its own with the defaults).
    lifted = EdgeLimits(burst=1_000_000, per_second=1_000_000, cors_origins=(CONSOLE_ORIGIN,))
    store = ObjectStore(infra.s3.endpoint.removeprefix("http://"), blob.app.settings.bucket)  # signed download URLs
    with running_gateway(
        infra.tls, infra.root, backends, lifted, ports=gateway_ports, object_store=store, console=built_console(),
        identities=infra.identities,
    ) as target:
        serves_tls(target)
        yield target


@pytest.fixture(scope="session")
def backends(auth: Running, blob: Running, lifecycle: Running, sync: Running, locator: Running, moderation: Running) -> dict[str, str]:
    """Where the session's services listen, by name: what a gateway routes to."""
    return {
        "auth": auth.target, "blob": blob.target, "lifecycle": lifecycle.target, "sync": sync.target,
        "locator": locator.target, "moderation": moderation.target,
    }


@pytest.fixture
async def direct(auth: Running) -> AsyncIterator[Cumulo]:
    """A client straight to the auth service (no gateway)."""
    async with Cumulo(auth.target, transport=transport_for(auth.target)) as client:
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
async def user(client: Cumulo, mail: MailCatcher) -> tuple[Cumulo, str]:
    """A registered adult, logged in through the gateway, its e-mail address verified."""
    email = unique_email()
    import datetime as dt

    await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    await client.login(email, PASSWORD, device_name="test phone")
    await verify_email(client, mail, email)
    return client, email


@pytest.fixture(scope="session")
async def signing_key(auth: Running) -> tuple[str, bytes]:
    """Auth's signing key id and public key, which the forged tokens of the tests imitate
    (cumulo_devstack.testing.forge_token, forged_access_token)."""
    return await signing_key_of(auth.target)


@pytest.fixture
async def people(gateway: str, mail: MailCatcher) -> AsyncIterator[People]:
    """Makes accounts registered and logged in through the gateway (cumulo_devstack.testing.People),
    their e-mail addresses verified; their clients are closed after the test."""
    made = People(gateway, mail)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(scope="module")
async def module_people(gateway: str, mail: MailCatcher) -> AsyncIterator[People]:
    """`people` for a whole test module (for accounts that module-scoped fixtures set up)."""
    made = People(gateway, mail)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
def debug_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """For tests that secrets never reach the logs: the process's structlog set-up (where the in-process services log) at debug level in
    JSON, every cumulo module's logger made afresh so that it takes it (loggers are cached at
    their first use, at the session's level); yields a function that returns what was logged
    since. Everything is put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in ("alembic", "aiobotocore", "botocore", "nats")}
    config = structlog.get_config()
    context = structlog.contextvars.get_contextvars()
    swapped: list[tuple[Any, str, Any]] = []
    configure_logging("tests", "debug", "json")
    root.setLevel(logging.INFO)  # structlog's own calls at debug; the libraries' chatter (grpc's) not
    for name, module in list(sys.modules.items()):
        if not name.startswith("cumulo") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            # (no getattr on a lazy proxy: that would bind it to the debug set-up for good)
            if isinstance(value, (BoundLoggerLazyProxy, structlog.BoundLoggerBase)):
                initial = vars(value).get("_initial_values") or {}
                swapped.append((module, attribute, value))
                setattr(module, attribute, get_logger(initial.get("logger_name", name)))
    capsys.readouterr()

    def logged() -> str:
        captured = capsys.readouterr()
        return captured.err + captured.out

    try:
        yield logged
    finally:
        for module, attribute, value in swapped:
            setattr(module, attribute, value)
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lvl in noisy.items():
            logging.getLogger(name).setLevel(lvl)
        structlog.configure(**config)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**context)
