"""One lifecycle per process: the gRPC server (with health and reflection; mutual TLS with the
service's identity), a plaintext health-only server for Kubernetes' probes (which speak no
TLS), the background
jobs (outbox relay, consumers, periodic work) and the clean-ups run together; if one fails,
all stop. SIGTERM or SIGINT: health turns NOT_SERVING, the server drains within the grace
period (15 s by default, leaving room in Kubernetes' 30 s), then the jobs stop and the clean-ups run."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cumulo_platform.logging import get_logger
from cumulo_platform.settings import DEFAULT_GRPC_MAX_RECEIVE_BYTES

JOB_STOP_TIMEOUT = 5.0  # seconds a cancelled background job gets to end
log = get_logger(__name__)

Job = Callable[[], Coroutine[Any, Any, None]]


def raise_if_cancelled() -> None:
    """For a job's loop, after an `asyncio.wait_for`: on Python 3.11 it can swallow a
    cancellation that comes just as its result arrives (CPython gh-86296), and the job would
    run on for ever. The task still counts the request, so the loop can honour it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


def closer(close: Callable[[], object]) -> Job:
    """A synchronous close() as a clean-up step."""

    async def run() -> None:
        close()

    return run


def periodic(work: Callable[[], Awaitable[object]], *, every: float) -> Job:
    """A job that runs `work` every `every` seconds; a failed round is logged and retried
    next time (guard the work itself against other replicas, e.g. with SKIP LOCKED)."""

    async def run() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await work()
            except Exception:
                log.exception("periodic_job_failed", job=getattr(work, "__name__", repr(work)))

    return run


@dataclasses.dataclass(frozen=True)
class GrpcService:
    name: str  # full service name, e.g. "cumulo.auth.v1.AuthService"
    servicer: Any
    register: Callable[[Any, grpc.aio.Server], None]


class ServiceRuntime:
    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        services: Sequence[GrpcService],
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        jobs: Sequence[Job] = (),
        cleanups: Sequence[Job] = (),
        drain_grace: float = 15.0,
        on_drain: Sequence[Callable[[], None]] = (),
        max_receive_bytes: int = DEFAULT_GRPC_MAX_RECEIVE_BYTES,
        credentials: grpc.ServerCredentials | None = None,
        health_port: int | None = None,
    ) -> None:
        """`credentials`: the port's TLS (None: plaintext, for tests of the runtime itself);
        `health_port`: where the plaintext health-only server listens (0: a free port; None: none)."""
        self.name = name
        self.host = host
        self.port = port
        self.health_port = health_port
        self.metrics: Any = None  # the service's cumulo_platform.metrics.Metrics (Foundation sets it)
        self._credentials = credentials
        self._health_server: grpc.aio.Server | None = None
        self._services = services
        self._interceptors = interceptors
        self._jobs = jobs
        self._cleanups = cleanups
        self._drain_grace = drain_grace
        self._on_drain = on_drain
        self._max_receive_bytes = max_receive_bytes
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._tasks: list[asyncio.Task[None]] = []
        self.failed = asyncio.Event()

    async def start(self) -> int:
        server = grpc.aio.server(
            interceptors=list(self._interceptors),
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", self._max_receive_bytes),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.http2.bdp_probe", 0),
            ],
        )
        for service in self._services:
            service.register(service.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [s.name for s in self._services]
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        address = f"{self.host}:{self.port}"
        if self._credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, self._credentials)
        if self.port == 0:
            raise OSError(f"{self.name}: cannot listen on {address}")
        if self.health_port is not None:
            await self._start_health_server()
        await server.start()
        self._server = server
        for service_name in ["", *names]:
            await self._health.set(service_name, health_pb2.HealthCheckResponse.SERVING)
        for job in self._jobs:
            task = asyncio.create_task(job(), name=getattr(job, "__qualname__", repr(job)))
            task.add_done_callback(self._job_ended)
            self._tasks.append(task)
        log.info("serving", address=f"{self.host}:{self.port}")
        return self.port

    async def _start_health_server(self) -> None:
        """Health alone, in plaintext: nothing else is registered on it, so every other
        method there is UNIMPLEMENTED."""
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        address = f"{self.host}:{self.health_port}"
        port = server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"{self.name}: cannot listen on {address} (its health port)")
        await server.start()
        self.health_port = port
        self._health_server = server

    def _job_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        log.error("job_stopped", error=repr(exc) if exc else "returned")
        self.failed.set()

    async def stop(self) -> None:
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            for end_streams in self._on_drain:  # long-lived streams end now, not at the grace's end
                end_streams()
            await self._server.stop(self._drain_grace)
            self._server = None
        if self._health_server is not None:
            await self._health_server.stop(0)
            self._health_server = None
        for task in self._tasks:
            task.cancel()
        # A job that swallows its cancellation (asyncio.wait_for in some libraries on 3.11,
        # CPython gh-86296) must not keep the process from stopping: wait a while, then go on.
        _, stuck = await asyncio.wait(self._tasks, timeout=JOB_STOP_TIMEOUT) if self._tasks else (set(), set())
        for task in stuck:
            log.error("job_did_not_stop", job=task.get_name())
        self._tasks.clear()
        for cleanup in self._cleanups:
            try:
                await cleanup()
            except Exception:
                log.exception("cleanup_failed")
        log.info("stopped")

    async def run_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        stopped = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(self.failed.wait())
        await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        failed.cancel()
        await self.stop()
        if self.failed.is_set():
            raise SystemExit(1)
