"""Settings: the only place that reads the environment.

Order: defaults, then `CUMULO_<NAME>` (global), then `CUMULO_<SERVICE>_<NAME>` (per service),
then validation. The external servers are named by DATABASE_URL, NATS_URL and S3_* as in
Kubernetes. Each service builds one frozen settings object at start-up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cumulo_platform import registry
from cumulo_platform.durations import IsoDuration

T = TypeVar("T")


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
    # The S3 bucket evidence bundles are preserved in (moderation writes, blob copies files in).
    preservation_bucket: str
    # A consumer retries a failing event this many times (after 1, 2, 4 ... s, at most the
    # max delay), then parks it in the dead-letter stream.
    event_max_attempts: int
    event_retry_first_delay: float
    event_retry_max_delay: float
    log_format: str
    log_level: str
    last_access_interval: dt.timedelta
    drain_grace_seconds: float
    migrate_on_start: bool
    client_cache_ttl_seconds: float

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
            event_max_attempts=env.get("EVENT_MAX_ATTEMPTS", 8),
            event_retry_first_delay=env.interval("EVENT_RETRY_FIRST_DELAY", "PT1S").total_seconds(),
            event_retry_max_delay=env.interval("EVENT_RETRY_MAX_DELAY", "PT1M").total_seconds(),
            log_format=env.get("LOG_FORMAT", "json"),
            log_level=env.get("LOG_LEVEL", "info"),
            last_access_interval=env.interval("LAST_ACCESS_INTERVAL", "PT10M"),
            drain_grace_seconds=env.get("DRAIN_GRACE_SECONDS", 15.0),
            migrate_on_start=env.flag("MIGRATE_ON_START", True),
            client_cache_ttl_seconds=env.get("CLIENT_CACHE_TTL_SECONDS", 300.0),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.database_url:
            raise SettingsError("DATABASE_URL is required (make run sets it for the embedded default)")
        if self.log_format not in {"json", "console"}:
            raise SettingsError("CUMULO_LOG_FORMAT must be json or console")
        if self.environment not in {"development", "production"}:
            raise SettingsError("CUMULO_ENVIRONMENT must be development or production")
        if not 0 < self.grpc_port < 65536:
            raise SettingsError("CUMULO_GRPC_PORT must be a TCP port")
        if not 0 < self.call_deadline <= self.bulk_call_deadline:
            raise SettingsError("CUMULO_CALL_DEADLINE must be positive and at most CUMULO_BULK_CALL_DEADLINE")
        if self.event_max_attempts < 1:
            raise SettingsError("CUMULO_EVENT_MAX_ATTEMPTS must be at least 1")
        if not 0 < self.event_retry_first_delay <= self.event_retry_max_delay:
            raise SettingsError("CUMULO_EVENT_RETRY_FIRST_DELAY must be positive and at most CUMULO_EVENT_RETRY_MAX_DELAY")
        if self.drain_grace_seconds > 20:
            # The drain, then the last outbox flush and NATS drain (5 s each), fit in Kubernetes' 30 s.
            raise SettingsError("CUMULO_DRAIN_GRACE_SECONDS must be at most 20 (Kubernetes gives 30 s in all)")

    def target(self, service: str) -> str:
        """Where another cumulo service (by its registry name) listens."""
        return self.targets[registry.service(service).name]

    def replace(self, **changes: Any) -> PlatformSettings:
        return dataclasses.replace(self, **changes)
