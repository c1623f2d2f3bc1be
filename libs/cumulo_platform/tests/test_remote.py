"""Calls to other services: one error policy, deadlines from settings, never inside a unit of
work; and the service registry they are addressed by."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cumulo_devstack.servers import free_port
from cumulo_platform import registry
from cumulo_platform.db import Database, RemoteCallInTransaction
from cumulo_platform.errors import NotFound, Unavailable
from cumulo_platform.remote import Remote
from cumulo_platform.settings import Env, PlatformSettings


@pytest.fixture
async def health_server():
    """A real gRPC server answering health checks: SERVING for "", nothing else known."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.fixture
async def remote(health_server):
    async with grpc.aio.insecure_channel(health_server) as channel:
        yield Remote("sync", health_pb2_grpc.HealthStub(channel), deadline=5, bulk_deadline=10)


async def test_a_call_outside_a_unit_of_work_is_made(remote):
    answer = await remote.call(remote.stub.Check, health_pb2.HealthCheckRequest(service=""))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_another_services_refusal_keeps_its_code(remote):
    with pytest.raises(NotFound):
        await remote.call(remote.stub.Check, health_pb2.HealthCheckRequest(service="no.such.Service"))


async def test_a_service_that_does_not_answer_is_unavailable_with_its_name():
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        silent = Remote("blob", health_pb2_grpc.HealthStub(channel), deadline=0.5, bulk_deadline=1)
        with pytest.raises(Unavailable) as caught:
            await silent.call(silent.stub.Check, health_pb2.HealthCheckRequest())
    assert caught.value.reason == "BLOB_UNAVAILABLE"


async def test_a_call_inside_an_open_unit_of_work_fails_before_it_is_made(db: Database, remote):
    async with db.unit_of_work() as uow:
        with pytest.raises(RemoteCallInTransaction, match="sync.Check"):
            await remote.call(remote.stub.Check, health_pb2.HealthCheckRequest())
        await uow.commit()
    # Once the unit of work is over, the same call goes through.
    answer = await remote.call(remote.stub.Check, health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_every_service_is_addressed_through_the_registry():
    settings = PlatformSettings.from_env("sync", Env("sync", {"DATABASE_URL": "postgresql://x/y", "CUMULO_BLOB_TARGET": "blob:7102"}))
    assert settings.grpc_port == registry.service("sync").port
    assert settings.target("blob") == "blob:7102"
    assert settings.target("auth") == f"127.0.0.1:{registry.service('auth').port}"
    assert set(settings.targets) == set(registry.SERVICES)
    with pytest.raises(KeyError, match="no cumulo service is called"):
        settings.target("nope")
    ports = [info.port for info in registry.SERVICES.values()]
    assert len(set(ports)) == len(ports)
    assert set(registry.public_routes().values()) == set(registry.SERVICES)
