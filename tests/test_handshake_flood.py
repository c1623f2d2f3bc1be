"""A flood at a service's doors while a person is served: TLS handshakes without a client
certificate and plaintext HTTP/2 at the service port (refused before a byte of gRPC: the server
never answers the connection preface), and plaintext calls at the health-only port (health
answers, every other method is UNIMPLEMENTED there). Meanwhile another user's calls through the
gateway are all served. Nothing here is timed: the flood runs while the person's calls are
made, however long they take."""

from __future__ import annotations

import asyncio
import ssl

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # preface + empty SETTINGS
FLOODERS = 6
CALLS = 15


async def _answer_to_preface(host: str, port: int, context: ssl.SSLContext | None) -> bytes:
    """What the server sends back to an HTTP/2 preface on a fresh connection ("" or an error
    when it refuses the connection)."""
    try:
        reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname="blob" if context else None)
    except (ssl.SSLError, OSError):
        return b""
    try:
        writer.write(PREFACE)
        await writer.drain()
        return await asyncio.wait_for(reader.read(64), timeout=10)
    except (TimeoutError, ssl.SSLError, OSError):
        return b""
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ssl.SSLError, OSError):
            pass


async def test_a_flood_at_the_service_and_health_ports_leaves_another_user_served(people, blob, infra):
    host, port = blob.target.rsplit(":", 1)[0], int(blob.target.rsplit(":", 1)[1])
    health_port = blob.app.runtime.health_port
    assert health_port
    person = await people.new("phone")
    trusting = ssl.create_default_context(cafile=str(infra.identities / "ca.crt"))  # trusts the server, shows no certificate
    trusting.check_hostname = False
    answers: dict[str, list[bytes]] = {"no certificate": [], "plaintext": []}
    health: list[str] = []
    stop = asyncio.Event()

    async def no_certificate() -> None:
        while not stop.is_set():
            answers["no certificate"].append(await _answer_to_preface(host, port, trusting))

    async def plaintext() -> None:
        while not stop.is_set():
            answers["plaintext"].append(await _answer_to_preface(host, port, None))

    async def health_port_calls() -> None:
        async with grpc.aio.insecure_channel(f"{host}:{health_port}") as channel:
            while not stop.is_set():
                checked = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                health.append(health_pb2.HealthCheckResponse.ServingStatus.Name(checked.status))
                try:
                    await blob_pb2_grpc.BlobServiceStub(channel).GetUsage(blob_pb2.GetUsageRequest(), timeout=10)
                    health.append("GetUsage answered")
                except grpc.aio.AioRpcError as err:
                    health.append(err.code().name)

    flood = [asyncio.create_task(f()) for f in (no_certificate, plaintext, health_port_calls) for _ in range(FLOODERS // 3 or 1)]
    try:
        served = [(await person.client.files.usage()).quota > 0 for _ in range(CALLS)]
    finally:
        stop.set()
        await asyncio.gather(*flood)
    assert served == [True] * CALLS
    assert answers["no certificate"] and answers["plaintext"] and health
    assert set(answers["no certificate"]) == {b""}  # refused: never an HTTP/2 answer
    assert set(answers["plaintext"]) == {b""}
    assert set(health) <= {"SERVING", "UNIMPLEMENTED"} and "GetUsage answered" not in health
