"""The auth service's settings: the platform's, plus its own (CUMULO_AUTH_*)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Mapping

from cumulo_platform.settings import Env, PlatformSettings, SettingsError

SERVICE = "auth"
# Client apps registered on a development start-up: the CLI and the web console.
DEVELOPMENT_CLIENTS = {"cumulo-cli": "cumulo command line", "cumulo-web": "cumulo web console"}


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    platform: PlatformSettings
    access_token_ttl: dt.timedelta
    session_ttl: dt.timedelta
    terms_version: str
    time_zone: zoneinfo.ZoneInfo
    register_development_clients: bool
    # Login throttling: failures allowed before delays start, and the longest delay.
    throttle_free_failures_per_account: int
    throttle_free_failures_per_address: int
    throttle_base_delay: dt.timedelta
    throttle_max_delay: dt.timedelta
    throttle_forget_after: dt.timedelta

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        env = Env(SERVICE, environ)
        platform = PlatformSettings.from_env(SERVICE, env)
        try:
            time_zone = zoneinfo.ZoneInfo(env.get("TIME_ZONE", "Asia/Shanghai"))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"CUMULO_TIME_ZONE: {exc}") from None
        settings = cls(
            platform=platform,
            access_token_ttl=env.interval("ACCESS_TOKEN_TTL", "PT15M"),
            session_ttl=env.interval("SESSION_TTL", "P90D"),
            terms_version=env.get("TERMS_VERSION", "2026-11"),
            time_zone=time_zone,
            register_development_clients=env.flag("REGISTER_DEVELOPMENT_CLIENTS", platform.development),
            throttle_free_failures_per_account=env.get("THROTTLE_FREE_FAILURES_PER_ACCOUNT", 5),
            throttle_free_failures_per_address=env.get("THROTTLE_FREE_FAILURES_PER_ADDRESS", 20),
            throttle_base_delay=env.interval("THROTTLE_BASE_DELAY", "PT1S"),
            throttle_max_delay=env.interval("THROTTLE_MAX_DELAY", "PT15M"),
            throttle_forget_after=env.interval("THROTTLE_FORGET_AFTER", "PT1H"),
        )
        if settings.access_token_ttl > dt.timedelta(hours=1):
            raise SettingsError("CUMULO_AUTH_ACCESS_TOKEN_TTL must be at most an hour (tokens are verified offline)")
        return settings
