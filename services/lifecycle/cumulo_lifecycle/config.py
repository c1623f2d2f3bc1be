"""The lifecycle service's settings: the platform's, plus its own (CUMULO_LIFECYCLE_*).

Every period is an ISO-8601 duration, so tests and staging run the whole cycle in seconds
(e.g. CUMULO_LIFECYCLE_INACTIVITY=PT15S, CUMULO_LIFECYCLE_GRACE=PT30S). Short periods bring
short companions: unless set, every service's last-access interval is a tenth of the
inactivity at most (cumulo_platform.settings), and the safety margin a tenth of the grace, at
most PT1H, but at least two of the longest last-access interval (the time a use can take to
reach the lifecycle) and never over a quarter of the grace. Combinations that would break the
promises made to users are refused at start-up, naming the variables: a margin over a quarter
of the grace (the data would go long after the time the notices state), an inactivity under
four last-access intervals of any service (an account in use could freeze, as its uses are
reported up to an interval late)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from cumulo_lifecycle.domain.calendar import Calendar
from cumulo_platform import registry
from cumulo_platform.durations import IsoDuration
from cumulo_platform.settings import Env, PlatformSettings, SettingsError, last_access_interval, shortest

SERVICE = "lifecycle"
DEFAULT_SAFETY_MARGIN = dt.timedelta(hours=1)
MARGINS_PER_GRACE = 10  # the default margin: at most this fraction of the grace
MAX_MARGIN_SHARE = 4  # any margin: at most this fraction of the grace
MARGIN_INTERVALS = 2  # the default margin: at least this many of the longest last-access interval
SAFE_INTERVALS = 4  # the inactivity: at least this many last-access intervals of every service


def _offsets(env: Env, name: str, default: str) -> tuple[dt.timedelta, ...]:
    text = env.get(name, default)
    try:
        return tuple(IsoDuration.parse(part).as_timedelta() for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"CUMULO_LIFECYCLE_{name}: {exc} (a comma-separated list without months, e.g. P30D,P7D)") from None


def iso_duration(length: dt.timedelta) -> str:
    """`length` as an ISO-8601 duration a person can paste into a setting: P84D, PT2H,
    PT1H30M, PT1.5S."""
    micros = length // dt.timedelta(microseconds=1)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds = f"{micros // 1_000_000}.{micros % 1_000_000:06d}".rstrip("0").rstrip(".")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if micros else "")
    text = (f"P{days}D" if days else "P") + (f"T{time}" if time else "")
    return "PT0S" if text == "P" else text


def longest_last_access_interval(env: Env) -> dt.timedelta:
    """The longest time any service may take to report a use (its last-access interval)."""
    return max(last_access_interval(env.for_service(service)) for service in registry.SERVICES)


def _safety_margin(env: Env, grace: IsoDuration) -> dt.timedelta:
    found = env.lookup("SAFETY_MARGIN")
    if found is None:
        # Long enough for a use still on its way to land first, short enough that the data goes
        # close to the time the notices state.
        tenth = min(DEFAULT_SAFETY_MARGIN, shortest(grace) / MARGINS_PER_GRACE)
        floor = MARGIN_INTERVALS * longest_last_access_interval(env)
        return min(max(tenth, floor), shortest(grace) / MAX_MARGIN_SHARE)
    key, text = found
    margin = env.interval("SAFETY_MARGIN", "PT1H")
    if margin * MAX_MARGIN_SHARE > shortest(grace):
        raise SettingsError(
            f"{key}={text} is too long for CUMULO_LIFECYCLE_GRACE={grace.text}: data would be deleted long after the "
            f"time the notices state. Use at most {iso_duration(shortest(grace) / MAX_MARGIN_SHARE)} (a quarter of the "
            f"grace), or leave {key} unset (then it is a tenth of the grace, at most PT1H, and at least two "
            "last-access intervals)."
        )
    return margin


def _check_intervals(env: Env, inactivity: IsoDuration) -> None:
    """Every service reports an account's use at most once per its last-access interval, so
    the lifecycle may learn of it an interval late: the inactivity must last several intervals.
    Only an interval that is set can fail: unset, it follows the inactivity."""
    for service in registry.SERVICES:
        theirs = env.for_service(service)
        interval = last_access_interval(theirs)
        found = theirs.lookup("LAST_ACCESS_INTERVAL")
        if found is not None and shortest(inactivity) < SAFE_INTERVALS * interval:
            key, text = found
            most = iso_duration(shortest(inactivity) / SAFE_INTERVALS)
            raise SettingsError(
                f"CUMULO_LIFECYCLE_INACTIVITY={inactivity.text} is shorter than {SAFE_INTERVALS} times {key}={text}: "
                f"{service} reports a use up to one interval late, so an account in use could be frozen. Set {key} "
                f"to at most {most}, or leave it unset (then it is a tenth of the inactivity, at most PT10M)."
            )


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
        grace = env.duration("GRACE", "P30D")
        calendar = Calendar(
            inactivity=env.duration("INACTIVITY", "P12M"),
            grace=grace,
            time_zone=env.time_zone(),
            safety_margin=_safety_margin(env, grace),
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
            reactivate_url=env.get("REACTIVATE_URL", "https://127.0.0.1:8080/reactivate"),
        )
        if not participants:
            raise SettingsError("CUMULO_LIFECYCLE_PURGE_PARTICIPANTS must name at least one service")
        if settings.calendar.inactivity.months == 0 and settings.calendar.inactivity.fixed <= dt.timedelta(0):
            raise SettingsError("CUMULO_LIFECYCLE_INACTIVITY must be longer than zero")
        _check_intervals(env, settings.calendar.inactivity)
        if not 1 <= settings.sweep_batch <= 10000:
            raise SettingsError("CUMULO_LIFECYCLE_SWEEP_BATCH must be between 1 and 10000")
        if settings.notice_attempts < 1:
            raise SettingsError("CUMULO_LIFECYCLE_NOTICE_ATTEMPTS must be at least 1")
        return settings
