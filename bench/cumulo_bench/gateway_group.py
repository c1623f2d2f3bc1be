"""Group `gateway`: an authenticated unary call (GetAccount) direct to auth and through Envoy,
beside a bare grpc.aio echo server on the same machine, all measured in one run; and an
internal call behind the platform's interceptor with and without service identity (mutual
TLS, the caller checked against an allow-list)."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import sys

import grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_bench.echo import INTERNAL_CALLER, INTERNAL_METHOD
from cumulo_bench.echo import METHOD as ECHO_METHOD
from cumulo_bench.measure import Result, best_of, closed_loop, cpu_us_per_call
from cumulo_bench.report import Figure
from cumulo_bench.stack import BenchStack
from cumulo_devstack.testing.channels import identity
from cumulo_sdk import Cumulo

IN_FLIGHT = 64
SECONDS = 3.0
RUNS = 3
PASSWORD = "benchmark passphrase 2026"
# The direct figures spread the calls over as many connections as the gateway opens to a
# service (Envoy: one per worker, two here), on both sides: over one connection, TLS on that
# connection alone (in gRPC core's one thread for it) is what stops the call rate first.
CONNECTIONS = 2


def own_connection(i: int) -> list[tuple[str, int]]:
    """Channel options that keep a channel from sharing another's connection."""
    return [("grpc.use_local_subchannel_pool", 1), ("cumulo.bench.connection", i)]


async def run(stack: BenchStack) -> list[Figure]:
    backends = stack.start_services()
    auth_target = backends["auth"]
    gateway = stack.start_gateway(backends)
    echo = stack.start_echo()

    async with Cumulo(auth_target, transport=stack.transport(auth_target)) as client:
        email = f"bench-{dt.datetime.now().timestamp():.0f}@example.com"
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
        await client.login(email, PASSWORD, device_name="bench")
        metadata = client.metadata(await client.access_token())

    async def measure_get_account(target: str, cpu_of: str | None = None, connections: int = 1) -> tuple[Result, float]:
        async with contextlib.AsyncExitStack() as opened:
            stubs = [
                auth_pb2_grpc.AuthServiceStub(await opened.enter_async_context(stack.transport(target).channel(target, own_connection(i))))
                for i in range(connections)
            ]
            request = auth_pb2.GetAccountRequest()
            turn = itertools.count()

            async def call() -> None:
                await stubs[next(turn) % connections].GetAccount(request, metadata=metadata, timeout=10)

            result = await best_of(RUNS, lambda: closed_loop(call, in_flight=IN_FLIGHT, seconds=SECONDS))
            cpu = await cpu_us_per_call(stack.pid(cpu_of), call, in_flight=IN_FLIGHT, seconds=SECONDS) if cpu_of else float("nan")
            return result, cpu

    async def measure_echo(connections: int = 1) -> tuple[Result, float]:
        async with contextlib.AsyncExitStack() as opened:
            methods = [
                (await opened.enter_async_context(grpc.aio.insecure_channel(echo, own_connection(i)))).unary_unary(ECHO_METHOD)
                for i in range(connections)
            ]
            payload = b"x" * 200  # about a GetAccount answer's size
            turn = itertools.count()

            async def call() -> None:
                await methods[next(turn) % connections](payload, timeout=10)

            result = await best_of(RUNS, lambda: closed_loop(call, in_flight=IN_FLIGHT, seconds=SECONDS))
            return result, await cpu_us_per_call(stack.pid("echo"), call, in_flight=IN_FLIGHT, seconds=SECONDS)

    async def measure_internal(target: str, with_identity: bool, cpu_of: str | None = None) -> tuple[Result, float]:
        channel = identity(INTERNAL_CALLER).channel(target, "blob") if with_identity else grpc.aio.insecure_channel(target)
        async with channel:
            method = channel.unary_unary(INTERNAL_METHOD)
            payload = b"x" * 200

            async def call() -> None:
                await method(payload, timeout=10)

            result = await best_of(RUNS, lambda: closed_loop(call, in_flight=IN_FLIGHT, seconds=SECONDS))
            cpu = await cpu_us_per_call(stack.pid(cpu_of), call, in_flight=IN_FLIGHT, seconds=SECONDS) if cpu_of else float("nan")
            return result, cpu

    print("  measuring bare grpc.aio echo ...", file=sys.stderr, flush=True)
    echo_result, echo_cpu_us = await measure_echo(CONNECTIONS)
    print("  measuring an internal call with and without service identity ...", file=sys.stderr, flush=True)
    plain_internal, _ = await measure_internal(stack.start_echo("--internal", name="echo-internal"), False)
    checked_internal, identity_echo_cpu_us = await measure_internal(
        stack.start_echo("--internal", "--identity", str(stack.infra.identities), name="echo-identity"), True, cpu_of="echo-identity"
    )
    print("  measuring GetAccount direct to auth ...", file=sys.stderr, flush=True)
    direct, auth_cpu_us = await measure_get_account(auth_target, cpu_of="auth", connections=CONNECTIONS)
    print("  measuring GetAccount direct to auth over one connection ...", file=sys.stderr, flush=True)
    one_connection, _ = await measure_get_account(auth_target)
    print("  measuring GetAccount through the gateway ...", file=sys.stderr, flush=True)
    through_gateway, _ = await measure_get_account(gateway)

    return [
        Figure("internal_call_ratio", checked_internal.rate, "calls/s", plain_internal.rate,
               "the same internal call behind the same interceptor, plaintext, no caller check", target=0.8,
               note=f"mutual TLS + the caller's identity checked against the allow-list, {IN_FLIGHT} in flight on one connection"),
        Figure("edge_overhead_ratio", through_gateway.rate, "calls/s", direct.rate, "same call direct to auth (mutual TLS, inside)", target=0.7,
               note=f"authenticated GetAccount through the gateway over TLS, {IN_FLIGHT} in flight on one connection"),
        Figure("auth_unary_vs_echo", direct.rate, "calls/s", echo_result.rate, "bare grpc.aio echo server", target=0.4,
               note=f"what the service layers (mutual TLS, interceptor, token check, the session's row from memory) cost against the ceiling; {CONNECTIONS} connections each side"),
        Figure("auth_unary_one_connection_vs_echo", one_connection.rate, "calls/s", echo_result.rate, "bare grpc.aio echo server",
               note="the same, all calls over one connection: bound by TLS on that connection"),
        Figure("auth_unary_vs_identity_echo", direct.rate, "calls/s", checked_internal.rate,
               "the echo behind the platform interceptor over the same mutual TLS",
               note="the same transport on both sides: what auth's own work costs"),
        Figure("per_call_cpu_us", auth_cpu_us, "CPU µs/call", echo_cpu_us, "the echo server's CPU per call, same load",
               lower_is_better=True, note=f"auth's user+system CPU per GetAccount (from /proc), {IN_FLIGHT} in flight"),
        Figure("identity_echo_cpu_us", identity_echo_cpu_us, "CPU µs/call", echo_cpu_us, "the bare echo's CPU per call",
               lower_is_better=True, note="the echo behind the platform interceptor over mutual TLS: auth's floor on this transport"),
        Figure("gateway_unary_vs_echo", through_gateway.rate, "calls/s", echo_result.rate, "bare grpc.aio echo server"),
        Figure("auth_direct_p50_ms", direct.percentile(0.5), "ms", echo_result.percentile(0.5), "echo p50",
               note=f"under load, {IN_FLIGHT} in flight"),
        Figure("auth_direct_p99_ms", direct.percentile(0.99), "ms", echo_result.percentile(0.99), "echo p99"),
        Figure("gateway_p50_ms", through_gateway.percentile(0.5), "ms", direct.percentile(0.5), "direct p50"),
        Figure("gateway_p99_ms", through_gateway.percentile(0.99), "ms", direct.percentile(0.99), "direct p99"),
    ]
