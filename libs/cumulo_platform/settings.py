"""Settings: the only place that reads the environment.

Order: defaults, then `CUMULO_<NAME>` (global), then `CUMULO_<SERVICE>_<NAME>` (per service),
then validation. The external servers are named by DATABASE_URL, NATS_URL and S3_* as in
Kubernetes. Each service builds one frozen settings object at start-up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cumulo_platform import registry
from cumulo_platform.durations import IsoDuration
from cumulo_platform.tracing import TRACES_OFF, TraceSettings

T = TypeVar("T")

# Every service's recorder lets through at most one access event per account and interval, so
# the lifecycle may learn of a use up to an interval late. Short lifecycle periods (a demo,
# staging) need a short interval: unless set, it is PT10M or this fraction of the lifecycle's
# inactivity (CUMULO_LIFECYCLE_INACTIVITY, which Kubernetes' config map and `make run` give
# every service), whichever is shorter. The lifecycle refuses an explicit interval longer
# than its inactivity allows (cumulo_lifecycle.config).
DEFAULT_LAST_ACCESS_INTERVAL = dt.timedelta(minutes=10)
INTERVALS_PER_INACTIVITY = 10
MAX_TRUSTED_PROXY_HOPS = 10
# The largest message a service takes (gRPC's own default is 4 MiB): the biggest legitimate
# ones are upload chunks (the SDK sends 2 MiB, clients may send a part of 8 MiB) and a sync
# push of many records. Anything larger is refused by gRPC itself (RESOURCE_EXHAUSTED) before
# it is parsed; set lower per service (CUMULO_<SERVICE>_GRPC_MAX_RECEIVE_BYTES) where less does.
DEFAULT_GRPC_MAX_RECEIVE_BYTES = 16 * 1024 * 1024
GRPC_MAX_RECEIVE_RANGE = (64 * 1024, 64 * 1024 * 1024)


class SettingsError(ValueError):
    pass


class Env:
    """Looks a setting up per service first, then globally."""

    def __init__(self, service: str, environ: Mapping[str, str] | None = None) -> None:
        self.service = service
        self._environ = dict(os.environ if environ is None else environ)

    def lookup(self, name: str) -> tuple[str, str] | None:
        """(variable, value) of the first of CUMULO_<SERVICE>_<NAME>, CUMULO_<NAME> that is set."""
        service_key = f"CUMULO_{self.service.upper().replace('-', '_')}_{name}"
        for key in (service_key, f"CUMULO_{name}"):
            if key in self._environ:
                return key, self._environ[key]
        return None

    def for_service(self, service: str) -> Env:
        """The same environment as another service reads it (the settings one service's
        behaviour must agree with, e.g. the lifecycle's inactivity)."""
        return Env(service, self._environ)

    def raw(self, name: str) -> str | None:
        found = self.lookup(name)
        return None if found is None else found[1]

    def server(self, name: str, default: str = "") -> str:
        """Where an external server is: CUMULO_<SERVICE>_<NAME>, then the plain <NAME> that
        Kubernetes secrets and operators use (DATABASE_URL, NATS_URL, S3_*), then CUMULO_<NAME>."""
        service_key = f"CUMULO_{self.service.upper().replace('-', '_')}_{name}"
        for key in (service_key, name, f"CUMULO_{name}"):
            if key in self._environ:
                return self._environ[key]
        return default

    def get(self, name: str, default: T, parse: Callable[[str], T] | None = None) -> T:
        found = self.lookup(name)
        if found is None:
            return default
        key, value = found
        convert = parse or type(default)
        try:
            return convert(value)  # type: ignore[call-arg]
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{key}: {exc}") from None

    def duration(self, name: str, default: str) -> IsoDuration:
        return self.get(name, IsoDuration.parse(default), IsoDuration.parse)

    def interval(self, name: str, default: str) -> dt.timedelta:
        """A duration of fixed length (no calendar months): TTLs, polling intervals."""
        return self.get(name, IsoDuration.parse(default).as_timedelta(), lambda text: IsoDuration.parse(text).as_timedelta())

    def flag(self, name: str, default: bool) -> bool:
        return self.get(name, default, _parse_bool)

    def time_zone(self, default: str = "Asia/Shanghai") -> zoneinfo.ZoneInfo:
        """CUMULO_[<SERVICE>_]TIME_ZONE: the operator's zone (ages, calendar days, times told
        to people); a bad name is refused naming the variable that held it."""
        variable, name = self.lookup("TIME_ZONE") or ("CUMULO_TIME_ZONE", default)
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"{variable}: {exc}") from None


def shortest(duration: IsoDuration) -> dt.timedelta:
    """The least time a duration can last: a calendar month counts 28 days."""
    return dt.timedelta(days=28 * duration.months) + duration.fixed


def last_access_interval(env: Env) -> dt.timedelta:
    """CUMULO_[<SERVICE>_]LAST_ACCESS_INTERVAL; unset, PT10M or a tenth of the lifecycle's
    inactivity when that is set, whichever is shorter."""
    default = DEFAULT_LAST_ACCESS_INTERVAL
    lifecycle = env.for_service("lifecycle")
    if lifecycle.lookup("INACTIVITY") is not None:
        inactivity = shortest(lifecycle.duration("INACTIVITY", "P12M"))
        if inactivity > dt.timedelta(0):  # zero: the lifecycle refuses it, naming the variable
            default = min(default, inactivity / INTERVALS_PER_INACTIVITY)
    return env.interval("LAST_ACCESS_INTERVAL", f"PT{default.total_seconds():f}S")


def trusted_proxy_hops(env: Env) -> int:
    """CUMULO_[<SERVICE>_]TRUSTED_PROXY_HOPS; unset, 1 (Envoy, which appends the peer it saw)
    plus the proxies the gateway is told stand in front of it, CUMULO_[GATEWAY_]TRUSTED_HOPS,
    when the service's environment has that (a config map every service reads): the two must
    agree, so one setting is enough."""
    gateway = env.for_service("gateway")
    in_front = gateway.get("TRUSTED_HOPS", 0) if gateway.lookup("TRUSTED_HOPS") is not None else 0
    return env.get("TRUSTED_PROXY_HOPS", 1 + in_front)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


@dataclasses.dataclass(frozen=True)
class PlatformSettings:
    """What every service needs: where the servers are, how to log, how to serve."""

    service: str
    environment: str
    database_url: str
    nats_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    grpc_host: str
    grpc_port: int
    # Where each other service listens: CUMULO_<NAME>_TARGET, by default as `make run` starts it.
    targets: Mapping[str, str]
    # Deadlines of calls to other services: an ordinary call, and one that walks a whole
    # account (exports, purges, evidence).
    call_deadline: float
    bulk_call_deadline: float
    # The S3 bucket evidence bundles are preserved in (moderation writes, blob copies files in),
    # and the credentials for it: S3_PRESERVATION_ACCESS_KEY_ID / ..._SECRET_ACCESS_KEY where
    # the object store gives that bucket keys of its own (by default the service's S3 keys).
    preservation_bucket: str
    preservation_access_key: str
    preservation_secret_key: str
    # A consumer retries a failing event this many times (after 1, 2, 4 ... s, at most the
    # max delay), then parks it in the dead-letter stream.
    event_max_attempts: int
    event_retry_first_delay: float
    event_retry_max_delay: float
    log_format: str
    # Per-call log lines: "slow" (failed and slow calls at info, the rest at debug) or "all"
    # (every call at info, for a while: CUMULO_LOG_CALLS), and what counts as slow.
    log_calls: str
    slow_call_ms: float
    log_level: str
    last_access_interval: dt.timedelta
    drain_grace_seconds: float
    migrate_on_start: bool
    client_cache_ttl_seconds: float
    # How many proxies of ours append to x-forwarded-for in front of the services (1: Envoy;
    # 2: a load balancer, then Envoy): the client address is the entry that many from the
    # right (cumulo_platform.interceptors). 0 trusts no header. See trusted_proxy_hops().
    trusted_proxy_hops: int = 1
    grpc_max_receive_bytes: int = DEFAULT_GRPC_MAX_RECEIVE_BYTES
    # The folder of identities (cumulo_platform.identity): this service's is <dir>/<service>/;
    # loaded when the service starts (a missing one stops it there, named).
    identity_dir: str = ""
    # The plaintext health-only port (Kubernetes' probes); 0: a free one (tests).
    health_port: int = 0
    # Where Prometheus scrapes `/metrics` (plain HTTP, never through the gateway); None: no
    # metrics endpoint (CUMULO_METRICS_PORT unset); 0: a free port (tests).
    metrics_port: int | None = None
    # How many copies of each event stream a JetStream cluster keeps (cumulo_platform.events.stream_configs).
    nats_stream_replicas: int = 1
    # Traces (cumulo_platform.tracing): off unless CUMULO_OTLP_ENDPOINT names a collector.
    traces: TraceSettings = TRACES_OFF

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @classmethod
    def from_env(cls, service: str, env: Env) -> PlatformSettings:
        settings = cls(
            service=service,
            environment=env.get("ENVIRONMENT", "production"),
            database_url=env.server("DATABASE_URL"),
            nats_url=env.server("NATS_URL", "nats://127.0.0.1:4222"),
            s3_endpoint=env.server("S3_ENDPOINT"),
            s3_access_key=env.server("S3_ACCESS_KEY_ID"),
            s3_secret_key=env.server("S3_SECRET_ACCESS_KEY"),
            s3_region=env.server("S3_REGION", "us-east-1"),
            grpc_host=env.get("GRPC_HOST", "127.0.0.1"),
            grpc_port=env.get("GRPC_PORT", registry.service(service).port),
            targets={name: env.get(f"{name.upper()}_TARGET", info.default_target) for name, info in registry.SERVICES.items()},
            call_deadline=env.interval("CALL_DEADLINE", "PT10S").total_seconds(),
            bulk_call_deadline=env.interval("BULK_CALL_DEADLINE", "PT2M").total_seconds(),
            preservation_bucket=env.server("PRESERVATION_BUCKET", "cumulo-preservation"),
            preservation_access_key=env.server("S3_PRESERVATION_ACCESS_KEY_ID") or env.server("S3_ACCESS_KEY_ID"),
            preservation_secret_key=env.server("S3_PRESERVATION_SECRET_ACCESS_KEY") or env.server("S3_SECRET_ACCESS_KEY"),
            event_max_attempts=env.get("EVENT_MAX_ATTEMPTS", 8),
            event_retry_first_delay=env.interval("EVENT_RETRY_FIRST_DELAY", "PT1S").total_seconds(),
            event_retry_max_delay=env.interval("EVENT_RETRY_MAX_DELAY", "PT1M").total_seconds(),
            log_format=env.get("LOG_FORMAT", "json"),
            log_calls=env.get("LOG_CALLS", "slow"),
            slow_call_ms=env.get("SLOW_CALL_MS", 500.0),
            log_level=env.get("LOG_LEVEL", "info"),
            last_access_interval=last_access_interval(env),
            drain_grace_seconds=env.get("DRAIN_GRACE_SECONDS", 15.0),
            migrate_on_start=env.flag("MIGRATE_ON_START", True),
            client_cache_ttl_seconds=env.get("CLIENT_CACHE_TTL_SECONDS", 300.0),
            trusted_proxy_hops=trusted_proxy_hops(env),
            grpc_max_receive_bytes=env.get("GRPC_MAX_RECEIVE_BYTES", DEFAULT_GRPC_MAX_RECEIVE_BYTES),
            identity_dir=env.get("IDENTITY_DIR", ""),
            health_port=env.get("HEALTH_PORT", registry.service(service).health_port),
            metrics_port=env.get("METRICS_PORT", None, parse=int),
            nats_stream_replicas=env.get("NATS_STREAM_REPLICAS", 1),
            traces=trace_settings(env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.database_url:
            raise SettingsError("DATABASE_URL is required (make run sets it for the embedded default)")
        if self.log_format not in {"json", "console"}:
            raise SettingsError("CUMULO_LOG_FORMAT must be json or console")
        if self.log_calls not in {"slow", "all"}:
            raise SettingsError("CUMULO_LOG_CALLS must be slow (failed and slow calls) or all (every call)")
        if self.slow_call_ms <= 0:
            raise SettingsError("CUMULO_SLOW_CALL_MS must be more than 0")
        if self.environment not in {"development", "production"}:
            raise SettingsError("CUMULO_ENVIRONMENT must be development or production")
        if not 0 < self.grpc_port < 65536:
            raise SettingsError("CUMULO_GRPC_PORT must be a TCP port")
        if not 0 <= self.health_port < 65536:
            raise SettingsError("CUMULO_HEALTH_PORT must be a TCP port (0: any free one)")
        if self.metrics_port is not None and not 0 <= self.metrics_port < 65536:
            raise SettingsError("CUMULO_METRICS_PORT must be a TCP port (0: any free one)")
        wrong = self.traces.validate()
        if wrong is not None:
            raise SettingsError(wrong)

        if not 0 < self.call_deadline <= self.bulk_call_deadline:
            raise SettingsError("CUMULO_CALL_DEADLINE must be positive and at most CUMULO_BULK_CALL_DEADLINE")
        if not 1 <= self.nats_stream_replicas <= 5:
            raise SettingsError("CUMULO_NATS_STREAM_REPLICAS must be between 1 and 5 (JetStream's limit)")
        if self.event_max_attempts < 1:
            raise SettingsError("CUMULO_EVENT_MAX_ATTEMPTS must be at least 1")
        if not 0 < self.event_retry_first_delay <= self.event_retry_max_delay:
            raise SettingsError("CUMULO_EVENT_RETRY_FIRST_DELAY must be positive and at most CUMULO_EVENT_RETRY_MAX_DELAY")
        if self.drain_grace_seconds > 20:
            # The drain, then the last outbox flush and NATS drain (5 s each), fit in Kubernetes' 30 s.
            raise SettingsError("CUMULO_DRAIN_GRACE_SECONDS must be at most 20 (Kubernetes gives 30 s in all)")
        if not 0 <= self.trusted_proxy_hops <= MAX_TRUSTED_PROXY_HOPS:
            raise SettingsError(f"CUMULO_TRUSTED_PROXY_HOPS must be between 0 and {MAX_TRUSTED_PROXY_HOPS}")
        low, high = GRPC_MAX_RECEIVE_RANGE
        if not low <= self.grpc_max_receive_bytes <= high:
            raise SettingsError(f"CUMULO_GRPC_MAX_RECEIVE_BYTES must be between {low} and {high}")

    def target(self, service: str) -> str:
        """Where another cumulo service (by its registry name) listens."""
        return self.targets[registry.service(service).name]

    def replace(self, **changes: Any) -> PlatformSettings:
        return dataclasses.replace(self, **changes)


def trace_settings(env: Env) -> TraceSettings:
    """Where spans go (CUMULO_OTLP_ENDPOINT), the share of new traces kept
    (CUMULO_TRACE_SAMPLE_RATIO) and the batching delay (CUMULO_TRACE_EXPORT_DELAY); the
    gateway reads the same ones."""
    return TraceSettings(
        endpoint=env.get("OTLP_ENDPOINT", ""),
        sample_ratio=env.get("TRACE_SAMPLE_RATIO", 1.0),
        export_delay_seconds=env.interval("TRACE_EXPORT_DELAY", "PT5S").total_seconds(),
    )
