"""The device-locator service's settings: the platform's, plus its own (CUMULO_LOCATOR_*)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from cumulo_platform.settings import Env, PlatformSettings, SettingsError

SERVICE = "locator"


@dataclasses.dataclass(frozen=True)
class LocatorSettings:
    platform: PlatformSettings
    retention: dt.timedelta
    clock_skew: dt.timedelta
    max_batch: int
    command_ttl: dt.timedelta
    min_command_ttl: dt.timedelta
    max_command_ttl: dt.timedelta
    password_window: dt.timedelta
    heartbeat: dt.timedelta
    prune_every: dt.timedelta
    prune_batch: int
    expire_every: dt.timedelta
    write_window: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocatorSettings:
        env = Env(SERVICE, environ)
        settings = cls(
            platform=PlatformSettings.from_env(SERVICE, env),
            retention=env.interval("RETENTION", "P7D"),
            clock_skew=env.interval("CLOCK_SKEW", "PT5M"),
            max_batch=env.get("MAX_BATCH", 1000),
            command_ttl=env.interval("COMMAND_TTL", "P1D"),
            min_command_ttl=env.interval("MIN_COMMAND_TTL", "PT1M"),
            max_command_ttl=env.interval("MAX_COMMAND_TTL", "P7D"),
            password_window=env.interval("PASSWORD_WINDOW", "PT5M"),
            heartbeat=env.interval("HEARTBEAT", "PT30S"),
            prune_every=env.interval("PRUNE_EVERY", "PT1M"),
            prune_batch=env.get("PRUNE_BATCH", 5000),
            expire_every=env.interval("EXPIRE_EVERY", "PT10S"),
            write_window=env.get("WRITE_WINDOW_MS", 2) / 1000,
        )
        if not 1 <= settings.max_batch <= 5000:
            raise SettingsError("CUMULO_LOCATOR_MAX_BATCH must be between 1 and 5000")
        if not 0 <= settings.write_window <= 0.02:
            raise SettingsError("CUMULO_LOCATOR_WRITE_WINDOW_MS must be between 0 and 20")
        if not 100 <= settings.prune_batch <= 100_000:
            raise SettingsError("CUMULO_LOCATOR_PRUNE_BATCH must be between 100 and 100000")
        if not settings.min_command_ttl <= settings.command_ttl <= settings.max_command_ttl:
            raise SettingsError("CUMULO_LOCATOR_COMMAND_TTL must lie between the MIN_ and MAX_COMMAND_TTL")
        return settings
