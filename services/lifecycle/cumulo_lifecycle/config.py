"""The lifecycle service's settings: the platform's, plus its own (CUMULO_LIFECYCLE_*).

Every period is an ISO-8601 duration, so tests and staging run the whole cycle in seconds
(e.g. CUMULO_LIFECYCLE_INACTIVITY=PT3S, CUMULO_LIFECYCLE_GRACE=PT3S)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Mapping

from cumulo_lifecycle.domain.calendar import Calendar
from cumulo_platform.durations import IsoDuration
from cumulo_platform.settings import Env, PlatformSettings, SettingsError

SERVICE = "lifecycle"


def _offsets(env: Env, name: str, default: str) -> tuple[dt.timedelta, ...]:
    text = env.get(name, default)
    try:
        return tuple(IsoDuration.parse(part).as_timedelta() for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"CUMULO_LIFECYCLE_{name}: {exc} (a comma-separated list without months, e.g. P30D,P7D)") from None


@dataclasses.dataclass(frozen=True)
class LifecycleSettings:
    platform: PlatformSettings
    calendar: Calendar
    sweep_every: float
    sweep_batch: int
    purge_participants: tuple[str, ...]
    purge_retry: dt.timedelta
    purge_retry_max: dt.timedelta
    purge_stuck_after: dt.timedelta
    notice_retry: dt.timedelta
    notice_attempts: int
    notice_every: float
    contacts_every: float
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str = dataclasses.field(repr=False)
    smtp_starttls: bool
    mail_from: str
    sms_webhook_url: str
    reactivate_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LifecycleSettings:
        env = Env(SERVICE, environ)
        platform = PlatformSettings.from_env(SERVICE, env)
        try:
            time_zone = zoneinfo.ZoneInfo(env.get("TIME_ZONE", "Asia/Shanghai"))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"CUMULO_LIFECYCLE_TIME_ZONE: {exc}") from None
        calendar = Calendar(
            inactivity=env.duration("INACTIVITY", "P12M"),
            grace=env.duration("GRACE", "P30D"),
            time_zone=time_zone,
            safety_margin=env.interval("SAFETY_MARGIN", "PT1H"),
            freeze_reminders=tuple(sorted(_offsets(env, "FREEZE_REMINDERS", "P30D,P7D"), reverse=True)),
            deletion_reminders=tuple(sorted(_offsets(env, "DELETION_REMINDERS", "P7D"), reverse=True)),
        )
        participants = tuple(p.strip() for p in env.get("PURGE_PARTICIPANTS", "auth,blob,sync,locator,moderation").split(",") if p.strip())
        settings = cls(
            platform=platform,
            calendar=calendar,
            sweep_every=env.interval("SWEEP_EVERY", "PT10S").total_seconds(),
            sweep_batch=env.get("SWEEP_BATCH", 500),
            purge_participants=participants,
            purge_retry=env.interval("PURGE_RETRY", "PT1M"),
            purge_retry_max=env.interval("PURGE_RETRY_MAX", "PT1H"),
            purge_stuck_after=env.interval("PURGE_STUCK_AFTER", "PT1H"),
            notice_retry=env.interval("NOTICE_RETRY", "PT1M"),
            notice_attempts=env.get("NOTICE_ATTEMPTS", 6),
            notice_every=env.interval("NOTICE_EVERY", "PT2S").total_seconds(),
            contacts_every=env.interval("CONTACTS_EVERY", "PT1S").total_seconds(),
            smtp_host=env.get("SMTP_HOST", ""),
            smtp_port=env.get("SMTP_PORT", 25),
            smtp_username=env.get("SMTP_USERNAME", ""),
            smtp_password=env.get("SMTP_PASSWORD", ""),
            smtp_starttls=env.flag("SMTP_STARTTLS", False),
            mail_from=env.get("MAIL_FROM", "cumulo <no-reply@cumulo.invalid>"),
            sms_webhook_url=env.get("SMS_WEBHOOK_URL", ""),
            reactivate_url=env.get("REACTIVATE_URL", "http://127.0.0.1:8080/reactivate"),
        )
        if not participants:
            raise SettingsError("CUMULO_LIFECYCLE_PURGE_PARTICIPANTS must name at least one service")
        if settings.calendar.inactivity.months == 0 and settings.calendar.inactivity.fixed <= dt.timedelta(0):
            raise SettingsError("CUMULO_LIFECYCLE_INACTIVITY must be longer than zero")
        if not 1 <= settings.sweep_batch <= 10000:
            raise SettingsError("CUMULO_LIFECYCLE_SWEEP_BATCH must be between 1 and 10000")
        if settings.notice_attempts < 1:
            raise SettingsError("CUMULO_LIFECYCLE_NOTICE_ATTEMPTS must be at least 1")
        return settings
