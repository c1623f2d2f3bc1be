"""What every service is built on, wired once: its database (migrated), NATS, the outbox
relay, the last-access recorder, the call interceptor and the process runtime; and the
`python -m cumulo_<service> [serve|migrate|...]` entry point."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import pathlib
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, Generic, TypeVar

import grpc
import uvloop

from cumulo.auth.v1 import auth_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_platform import bus_access, migrations
from cumulo_platform.account_states import AccountStates, remote_ensure_active
from cumulo_platform.clients import ClientRegistry, remote_lookup
from cumulo_platform.clock import Clock
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import Database, create_engine
from cumulo_platform.events import STREAM_NAME, Nats, Redelivery
from cumulo_platform.identity import Identity, IdentityError
from cumulo_platform.interceptors import AccountGate, CallInterceptor, current_call
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import configure_logging
from cumulo_platform.metrics import Metrics
from cumulo_platform.outbox import OutboxRelay
from cumulo_platform.purge import PurgeAccount, purge_participant
from cumulo_platform.remote import Remote
from cumulo_platform.revocations import Revocations
from cumulo_platform.runtime import GrpcService, Job, ServiceRuntime
from cumulo_platform.settings import PlatformSettings, SettingsError
from cumulo_platform.storage import Storage
from cumulo_platform.tokens import KeyCache, Principal, TokenVerifier, remote_keys
from cumulo_platform.tracing import Tracing

Stub = TypeVar("Stub")


@dataclasses.dataclass
class Foundation:
    platform: PlatformSettings
    service: str
    clock: Clock
    db: Database
    nats: Nats
    relay: OutboxRelay
    recorder: LastAccessRecorder
    states: AccountStates
    revocations: Revocations
    identity: Identity
    metrics: Metrics
    _channels: dict[str, grpc.aio.Channel] = dataclasses.field(default_factory=dict)
    _preservation: Storage | None = None
    _holds: LegalHolds | None = None

    @classmethod
    async def open(
        cls, platform: PlatformSettings, *, schema: str, migrations_dir: pathlib.Path, clock: Clock
    ) -> Foundation:
        if platform.migrate_on_start:
            await asyncio.to_thread(migrations.upgrade, platform.database_url, schema, migrations_dir)
        db = Database(create_engine(platform.database_url), schema=schema, producer=platform.service, clock=clock)
        identity = Identity.load(platform.identity_dir, platform.service)
        nats_client = Nats(
            platform.nats_url,
            identity=identity,
            redelivery=Redelivery(
                max_attempts=platform.event_max_attempts,
                first_delay=platform.event_retry_first_delay,
                max_delay=platform.event_retry_max_delay,
            ),
            stream_replicas=platform.nats_stream_replicas,
        )
        metrics = Metrics(platform.service)
        nats_client.on_dead_letter = lambda durable: metrics.dead_lettered.labels(durable).inc()
        nats_client.tracing = Tracing.of(platform.service, platform.traces)
        base = cls(
            metrics=metrics,
            platform=platform,
            service=platform.service,
            clock=clock,
            db=db,
            nats=nats_client,
            relay=OutboxRelay(db, nats_client, on_failed=metrics.publish_errors.inc),
            recorder=LastAccessRecorder(
                db, service=platform.service, interval=platform.last_access_interval, clock=clock
            ),
            states=AccountStates(db, None),
            revocations=Revocations(db),
            identity=identity,
        )
        # Frozen accounts are reactivated by the lifecycle (which puts its own method here).
        base.states.ensure_active = remote_ensure_active(base.remote("lifecycle", lifecycle_pb2_grpc.LifecycleInternalServiceStub))
        await base.states.load()
        await base.revocations.load()
        return base

    def channel(self, service: str) -> grpc.aio.Channel:
        """One channel per other service (by its registry name), opened on first use, closed
        with the service. Prefer `remote`, which adds deadlines and the error policy."""
        target = self.platform.target(service)
        if target not in self._channels:
            self._channels[target] = self.identity.channel(target, service)
        return self._channels[target]

    def remote(self, service: str, stub_class: Callable[[grpc.aio.Channel], Stub]) -> Remote[Stub]:
        """Another service's internal API: `await remote.call(remote.stub.Method, request)`."""
        return Remote(
            service,
            stub_class(self.channel(service)),
            deadline=self.platform.call_deadline,
            bulk_deadline=self.platform.bulk_call_deadline,
        )

    def legal_holds(self) -> LegalHolds:
        """The lifecycle's legal holds as this service keeps them (its `legal_holds` table,
        which its migrations create), fed by `account.hold_changed` in `runtime()`. The
        lifecycle itself, the authority, makes its `LegalHolds(db)` and follows no events."""
        if self._holds is None:
            self._holds = LegalHolds(self.db)
        return self._holds

    def purge_consumer(self, purge_account: PurgeAccount) -> Job:
        """This service's part in the lifecycle's deletion saga (`cumulo_platform.purge`): the
        durable consumer `<service>-purge` of `purge.requested`. A service that keeps the legal
        holds (`legal_holds()`, called first) waits for a release to reach it."""
        return EventConsumer(
            self.db,
            self.nats,
            durable=f"{self.service}-purge",
            event_types=["purge.requested"],
            handler=purge_participant(self.service, purge_account, self.states, self._holds),
        ).run

    async def preservation(self) -> Storage:
        """The preservation bucket (evidence bundles), opened once; closed with the service."""
        if self._preservation is None:
            storage = Storage.of(self.platform, self.platform.preservation_bucket)
            await storage.open()
            await storage.ensure_bucket()
            self._preservation = storage
        return self._preservation

    def remote_verifier(self) -> TokenVerifier:
        return TokenVerifier(KeyCache(remote_keys(self.remote("auth", auth_pb2_grpc.AuthInternalServiceStub))), clock=self.clock)

    def remote_clients(self) -> ClientRegistry:
        return ClientRegistry(remote_lookup(self.remote("auth", auth_pb2_grpc.AuthInternalServiceStub)), ttl=self.platform.client_cache_ttl_seconds)

    def interceptor(
        self,
        *,
        verifier: TokenVerifier,
        clients: ClientRegistry,
        anonymous_methods: Iterable[str] = (),
        account_gate: AccountGate | None = None,
        honour_states: bool = True,
        record_access: bool = True,
        own_session_checks: Iterable[str] = (),
    ) -> CallInterceptor:
        """Every authenticated call passes the revocations (a token auth revoked is refused,
        whatever its expiry), the lifecycle's account gate (unless `honour_states` is off: the
        lifecycle's own API, which answers frozen accounts about their state), then the
        service's own `account_gate`, and counts as a use.

        `own_session_checks`: full method names that check the caller's session themselves and
        skip the revocations (auth's CancelAccount: a retry after a lost answer comes with the
        session the cancellation itself ended, and must be told it succeeded)."""
        revocations = self.revocations.gate
        unchecked = frozenset(own_session_checks)
        if unchecked:
            async def revocations_unless_checked_first_hand(principal: Principal) -> None:
                if current_call().method not in unchecked:
                    await self.revocations.gate(principal)

            revocations = revocations_unless_checked_first_hand
        gates = [revocations] + ([self.states.gate] if honour_states else []) + ([account_gate] if account_gate else [])

        async def gate(principal: Principal) -> None:
            for check in gates:
                await check(principal)

        return CallInterceptor(
            verifier=verifier,
            clients=clients,
            anonymous_methods=anonymous_methods,
            recorder=self.recorder if record_access else None,
            account_gate=gate if gates else None,
            trusted_proxy_hops=self.platform.trusted_proxy_hops,
            log_calls=self.platform.log_calls,
            slow_call_ms=self.platform.slow_call_ms,
            metrics=self.metrics,
            tracing=self.nats.tracing,
        )

    def runtime(
        self,
        *,
        services: Sequence[GrpcService],
        interceptor: CallInterceptor,
        jobs: Sequence[Job] = (),
        cleanups: Sequence[Job] = (),
        on_drain: Sequence[Callable[[], None]] = (),
    ) -> ServiceRuntime:
        runtime = ServiceRuntime(
            name=self.service,
            host=self.platform.grpc_host,
            port=self.platform.grpc_port,
            services=services,
            interceptors=[interceptor],
            jobs=[
                self.relay.run,
                self.recorder.run,
                *self.states.jobs(self.nats, self.service),
                *self.revocations.jobs(self.nats, self.service),
                *([self._holds.consumer(self.nats, self.service).run] if self._holds is not None else []),
                *([self._serve_metrics] if self.platform.metrics_port is not None else []),
                *jobs,
            ],
            # Service clean-ups first (they may still write), then flush what is left.
            cleanups=[*cleanups, self.recorder.close, self.relay.publish_once, self._close],
            drain_grace=self.platform.drain_grace_seconds,
            on_drain=on_drain,
            max_receive_bytes=self.platform.grpc_max_receive_bytes,
            credentials=self.identity.server_credentials(),
            health_port=self.platform.health_port,
        )
        runtime.metrics = self.metrics
        return runtime

    async def _serve_metrics(self) -> None:
        """`/metrics` on the metrics port while the service runs, its gauges kept fresh."""
        await asyncio.to_thread(self.metrics.serve, self.platform.grpc_host, self.platform.metrics_port or 0)
        try:
            await self.metrics.refresher(engine=self.db.engine, outbox=self.db.outbox, consumers=self._consumer_counts)()
        finally:
            self.metrics.stop()

    async def _consumer_counts(self) -> list[tuple[str, int, int]]:
        """(durable, pending, redelivered) of this service's consumers that exist yet."""
        js = await self.nats.jetstream()
        found = []
        for durable in bus_access.consumers(self.service):
            try:
                info = await js.consumer_info(STREAM_NAME, durable)
            except Exception:  # not created yet (its job starts it), or NATS away
                continue
            found.append((durable, int(info.num_pending or 0), int(info.num_redelivered or 0)))
        return found

    async def _close(self) -> None:
        if self._preservation is not None:
            await self._preservation.close()
        await self.nats.close()
        for channel in self._channels.values():
            await channel.close()
        await self.db.dispose()
        if self.nats.tracing is not None:
            await asyncio.to_thread(self.nats.tracing.shutdown)  # the spans still waiting go out


S = TypeVar("S")

@dataclasses.dataclass(frozen=True)
class Command(Generic[S]):
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[S, argparse.Namespace], Coroutine[Any, Any, None]]


def tune_malloc() -> None:
    """glibc keeps freed big buffers (upload parts) in per-thread heaps and grows its mmap
    threshold after each one, so a streaming service's RSS only climbs. A fixed threshold
    maps every buffer of 1 MiB or more and returns it on free; two arenas bound the rest."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_mmap_threshold, m_arena_max = -3, -8
    libc.mallopt(m_mmap_threshold, 1024 * 1024)
    libc.mallopt(m_arena_max, 2)


def service_main(
    *,
    prog: str,
    description: str,
    load_settings: Callable[[], S],
    platform_of: Callable[[S], PlatformSettings],
    build: Callable[[S], Awaitable[Any]],
    migrate: Callable[[S], None],
    commands: dict[str, Command[S]] | None = None,
    argv: list[str] | None = None,
) -> int:
    """`serve` (the default) runs until SIGTERM; `migrate` applies migrations and exits (for a
    Kubernetes Job); further commands are the service's own. Bad settings exit 2 with the
    variable named."""
    commands = commands or {}
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the service (default)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    for name, command in commands.items():
        command.configure(sub.add_parser(name, help=command.help))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    platform = platform_of(settings)
    configure_logging(platform.service, platform.log_level, platform.log_format)
    tune_malloc()
    if args.command == "migrate":
        migrate(settings)
        return 0
    if args.command in commands:
        uvloop.run(commands[args.command].run(settings, args))
        return 0

    async def serve() -> None:
        app = await build(settings)
        await app.runtime.run_until_signal()

    try:
        uvloop.run(serve())
    except IdentityError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0
