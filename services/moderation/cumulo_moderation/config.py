"""The moderation service's settings: the platform's, plus its own (CUMULO_MODERATION_*)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Mapping

from cumulo_platform import secrets
from cumulo_platform.settings import Env, PlatformSettings, SettingsError

SERVICE = "moderation"
# S3 Object Lock modes an evidence bundle can be kept in; "off" writes bundles as any object.
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")


@dataclasses.dataclass(frozen=True)
class ModerationSettings:
    platform: PlatformSettings
    # How long a counter-noticed copyright takedown waits for the complainant's legal action
    # before the content is restored (DMCA: 10 to 14 business days).
    counter_notice_wait: dt.timedelta
    restore_every: dt.timedelta
    # How often pending effects are looked for: blocklist matches to block, and decisions
    # whose effect was interrupted (a crash, an outage of the service carrying it out).
    effects_every: dt.timedelta
    # Upheld copyright takedowns that put a termination review in the queue.
    repeat_infringer_strikes: int
    # Complaint intake: at most so many per reporter (account or contact address) and per
    # network address in each window.
    complaints_per_reporter: int
    complaints_per_address: int
    complaint_window: dt.timedelta
    # Share links created by one account within the window that open a spam review.
    link_burst: int
    link_burst_window: dt.timedelta
    max_suspension: dt.timedelta
    # How long a terminated account's owner may take their data out when the decision allows
    # it (DecideCase allow_export); the deletion waits for it. P0D: never.
    termination_export_window: dt.timedelta
    # The times in the notices to people are told in this zone (CUMULO_TIME_ZONE, as the
    # lifecycle's notices are, unless CUMULO_MODERATION_TIME_ZONE says otherwise).
    time_zone: zoneinfo.ZoneInfo
    # Evidence bundles kept write-once by S3 Object Lock: GOVERNANCE or COMPLIANCE, None for
    # off (the default; the embedded `rclone serve s3` has no Object Lock). The preservation
    # bucket must have Object Lock enabled, or the service does not start.
    evidence_lock_mode: str | None
    evidence_lock_days: int
    # The key-encryption key that seals the evidence-signing keys in moderation's table:
    # CUMULO_SECRETS_DIR/moderation/evidence-kek.key (cumulo_platform.secrets).
    evidence_kek: bytes = dataclasses.field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModerationSettings:
        env = Env(SERVICE, environ)
        settings = cls(
            platform=PlatformSettings.from_env(SERVICE, env),
            counter_notice_wait=env.interval("COUNTER_NOTICE_WAIT", "P14D"),
            restore_every=env.interval("RESTORE_EVERY", "PT10S"),
            effects_every=env.interval("EFFECTS_EVERY", "PT1S"),
            repeat_infringer_strikes=env.get("REPEAT_INFRINGER_STRIKES", 3),
            complaints_per_reporter=env.get("COMPLAINTS_PER_REPORTER", 20),
            complaints_per_address=env.get("COMPLAINTS_PER_ADDRESS", 60),
            complaint_window=env.interval("COMPLAINT_WINDOW", "PT1H"),
            link_burst=env.get("LINK_BURST", 50),
            link_burst_window=env.interval("LINK_BURST_WINDOW", "PT10M"),
            max_suspension=env.interval("MAX_SUSPENSION", "P365D"),
            termination_export_window=env.interval("TERMINATION_EXPORT_WINDOW", "P14D"),
            time_zone=env.time_zone(),
            evidence_lock_mode=_lock_mode(env.get("EVIDENCE_LOCK_MODE", "off")),
            evidence_lock_days=env.get("EVIDENCE_LOCK_DAYS", 0),
            evidence_kek=b"",  # read last, once the other settings are known good
        )
        if settings.evidence_lock_mode and settings.evidence_lock_days < 1:
            raise SettingsError(
                f"CUMULO_MODERATION_EVIDENCE_LOCK_DAYS must be at least 1 with CUMULO_MODERATION_EVIDENCE_LOCK_MODE={settings.evidence_lock_mode}"
            )
        if not settings.evidence_lock_mode and settings.evidence_lock_days:
            raise SettingsError("CUMULO_MODERATION_EVIDENCE_LOCK_DAYS is set but CUMULO_MODERATION_EVIDENCE_LOCK_MODE is off")
        for name, value in (
            ("REPEAT_INFRINGER_STRIKES", settings.repeat_infringer_strikes),
            ("COMPLAINTS_PER_REPORTER", settings.complaints_per_reporter),
            ("COMPLAINTS_PER_ADDRESS", settings.complaints_per_address),
            ("LINK_BURST", settings.link_burst),
        ):
            if value < 1:
                raise SettingsError(f"CUMULO_MODERATION_{name} must be at least 1")
        for name, span in (
            ("COMPLAINT_WINDOW", settings.complaint_window),
            ("LINK_BURST_WINDOW", settings.link_burst_window),
            ("RESTORE_EVERY", settings.restore_every),
            ("EFFECTS_EVERY", settings.effects_every),
        ):
            if span <= dt.timedelta(0):
                raise SettingsError(f"CUMULO_MODERATION_{name} must be longer than zero")
        if not dt.timedelta(0) <= settings.termination_export_window <= dt.timedelta(days=90):
            # Auth keeps a terminated account at most 90 days for its take-out.
            raise SettingsError("CUMULO_MODERATION_TERMINATION_EXPORT_WINDOW must be between P0D and P90D")
        return dataclasses.replace(settings, evidence_kek=secrets.load_key(env, "evidence-kek"))


def _lock_mode(value: str) -> str | None:
    mode = value.strip().upper()
    if mode in ("", "OFF"):
        return None
    if mode not in LOCK_MODES:
        raise SettingsError(f"CUMULO_MODERATION_EVIDENCE_LOCK_MODE must be off, GOVERNANCE or COMPLIANCE, not {value!r}")
    return mode
