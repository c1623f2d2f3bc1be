"""The auth service as its own process, as Kubernetes runs it: migrate command, health,
graceful drain on SIGTERM, and logs that never carry secrets."""

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.servers import free_port, wait_for_port
from cumulo_devstack.testing import identity, open_channel, serves_service, transport_for, unique_email
from cumulo_platform.db import create_engine
from cumulo_platform.identity import OPERATOR
from cumulo_sdk import Cumulo
from cumulo_sdk.errors import CumuloRpcError

PASSWORD = "a secret nobody should log 42"


def _environ(infra, **extra):
    return {**os.environ, **infra.service_environ(CUMULO_LOG_LEVEL="debug", CUMULO_ENVIRONMENT="development"), **extra}


def test_migrate_command_is_idempotent(infra):
    env = _environ(infra)
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "cumulo_auth", "migrate"], env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()

    async def tables() -> set[str]:
        engine = create_engine(env["DATABASE_URL"])
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'auth'"))
                return {r[0] for r in rows}
        finally:
            await engine.dispose()

    found = asyncio.run(tables())
    assert {"accounts", "sessions", "refresh_tokens", "outbox", "alembic_version"} <= found


def test_bad_settings_exit_with_a_clear_message(infra):
    env = _environ(infra, CUMULO_AUTH_ACCESS_TOKEN_TTL="P1D")
    done = subprocess.run([sys.executable, "-m", "cumulo_auth"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"CUMULO_AUTH_ACCESS_TOKEN_TTL" in done.stderr


def test_a_missing_identity_stops_the_service_naming_the_setting(infra, tmp_path):
    env = _environ(infra, CUMULO_IDENTITY_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "cumulo_auth"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"CUMULO_IDENTITY_DIR" in done.stderr and b"auth/" in done.stderr


def test_a_missing_or_short_login_hash_key_stops_the_service_naming_the_setting(infra, tmp_path):
    """Without its key auth would keep logins unkeyed (or not at all): it does not start. The
    key itself never appears in what it says."""
    env = _environ(infra, CUMULO_SECRETS_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "cumulo_auth"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"CUMULO_SECRETS_DIR" in done.stderr and b"auth/login-hash.key" in done.stderr
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "login-hash.key").write_bytes(b"short-key")
    done = subprocess.run([sys.executable, "-m", "cumulo_auth"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"holds 9 bytes" in done.stderr and b"short-key" not in done.stderr


@contextlib.contextmanager
def running_auth(infra, tmp_path, **extra):
    env = _environ(infra, CUMULO_HEALTH_PORT=str(free_port()), **extra)
    log_path = tmp_path / "auth.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "cumulo_auth"], env=env, stdout=log, stderr=subprocess.STDOUT)
    port = int(env["CUMULO_GRPC_PORT"])
    try:
        wait_for_port(port, process=process, timeout=60)
        wait_for_port(int(env["CUMULO_HEALTH_PORT"]), process=process, timeout=60)
        serves_service(f"127.0.0.1:{port}", "auth")
        yield process, f"127.0.0.1:{port}", log_path, int(env["CUMULO_HEALTH_PORT"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def auth_process(infra, tmp_path):
    with running_auth(infra, tmp_path) as running:
        yield running


async def test_at_info_a_call_is_logged_when_it_failed_or_was_slow_and_every_call_when_asked(infra, tmp_path):
    """By default a succeeded call costs no log line at info (the edge's access log has every
    call); a failed one has its line. CUMULO_LOG_CALLS=all logs every call, for a while."""
    for log_calls, every_call in (("slow", False), ("all", True)):
        folder = tmp_path / log_calls
        folder.mkdir()
        with running_auth(infra, folder, CUMULO_LOG_LEVEL="info", CUMULO_LOG_CALLS=log_calls) as (process, target, log_path, _):
            async with Cumulo(target, transport=transport_for(target)) as client:
                email = unique_email()
                await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
                await client.login(email, PASSWORD)
                await client.whoami()
                with pytest.raises(CumuloRpcError):
                    await client.call(client.auth.Login, auth_pb2.LoginRequest(login=email, password="wrong " + PASSWORD), authenticated=False)
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 25)
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        calls = {(line["method"].rsplit("/", 1)[-1], line["code"]) for line in lines if line.get("event") == "rpc"}
        assert ("Login", "UNAUTHENTICATED") in calls, calls
        assert (("GetAccount", "OK") in calls) is every_call, calls
        assert all(line["request_id"] and line["service"] == "auth" for line in lines if line.get("event") == "rpc")


async def test_the_health_port_answers_health_checks_in_plaintext_and_nothing_else(auth_process):
    """What Kubernetes' probes reach (they speak no TLS): health, and no method of the service."""
    _, _, _, health_port = auth_process
    async with grpc.aio.insecure_channel(f"127.0.0.1:{health_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service="cumulo.auth.v1.AuthService"), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await auth_pb2_grpc.AuthInternalServiceStub(channel).GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_the_service_port_takes_no_plaintext_call(auth_process):
    _, target, _, _ = auth_process
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_sigterm_drains_in_flight_calls_and_exits_cleanly(auth_process):
    process, target, _, _ = auth_process
    async with open_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service="cumulo.auth.v1.AuthService"), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
    async with Cumulo(target, transport=transport_for(target)) as client:
        email = f"drain-{os.getpid()}-{dt.datetime.now().timestamp():.0f}@example.com"
        # The channel is connected first, so the registration below reaches the server at once.
        terms = await client.terms_version()
        # Registration hashes a password (slow on purpose): SIGTERM arrives while it runs.
        registering = asyncio.create_task(
            client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1), terms_version=terms)
        )
        await asyncio.sleep(0.03)
        process.send_signal(signal.SIGTERM)
        account = await registering
        assert account.email == email
    returncode = await asyncio.to_thread(process.wait, 25)
    assert returncode == 0


async def test_logs_are_json_with_request_context_and_no_secrets(auth_process):
    process, target, log_path, _ = auth_process
    async with Cumulo(target, transport=transport_for(target)) as client:
        email = f"logs-{os.getpid()}-{dt.datetime.now().timestamp():.0f}@example.com"
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
        await client.login(email, PASSWORD)
        await client.whoami()
        with pytest.raises(CumuloRpcError) as refused:
            await client.call(client.auth.Login, auth_pb2.LoginRequest(login=email, password="wrong " + PASSWORD), authenticated=False)
        assert refused.value.reason == "INVALID_CREDENTIALS"
        tokens = client.store.tokens
        await client.refresh()
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 25)
    text = log_path.read_text()
    for secret in (PASSWORD, tokens.access_token, tokens.refresh_token, tokens.access_token.split(".")[2]):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    calls = [line for line in lines if line.get("event") == "rpc"]
    assert {"/cumulo.auth.v1.AuthService/Login", "/cumulo.auth.v1.AuthService/GetAccount"} <= {c["method"] for c in calls}
    for call in calls:
        assert call["service"] == "auth"
        assert call["request_id"]
        assert "duration_ms" in call and "code" in call
    whoami = next(c for c in calls if c["method"].endswith("/GetAccount"))
    assert whoami["account_id"]


async def test_reflection_lists_the_services(auth_process):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    _, target, _, _ = auth_process

    # The reflection client is synchronous; an operator's grpcurl would call as the operator.
    def names() -> list[str]:
        with identity(OPERATOR).sync_channel(target, "auth") as channel:
            return list(ProtoReflectionDescriptorDatabase(channel).get_services())

    services = await asyncio.to_thread(names)
    assert {"cumulo.auth.v1.AuthService", "cumulo.auth.v1.AuthInternalService", "grpc.health.v1.Health"} <= set(services)
