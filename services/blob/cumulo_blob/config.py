"""The blob service's settings: the platform's, plus its own (CUMULO_BLOB_*)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from cumulo_platform.settings import Env, PlatformSettings, SettingsError

SERVICE = "blob"
MIB = 1024 * 1024
S3_MIN_PART = 5 * MIB  # S3 refuses smaller parts, but for the last


@dataclasses.dataclass(frozen=True)
class BlobSettings:
    platform: PlatformSettings
    bucket: str
    free_quota_bytes: int
    upload_ttl: dt.timedelta
    trash_retention: dt.timedelta
    part_size: int
    parts_in_flight: int
    max_name_bytes: int
    minors_may_share_publicly: bool
    links_per_minute: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BlobSettings:
        env = Env(SERVICE, environ)
        settings = cls(
            platform=PlatformSettings.from_env(SERVICE, env),
            bucket=env.get("BUCKET", "cumulo-blobs"),
            free_quota_bytes=env.get("FREE_QUOTA_BYTES", 5 * 1024 * MIB),
            upload_ttl=env.interval("UPLOAD_TTL", "P1D"),
            trash_retention=env.interval("TRASH_RETENTION", "P30D"),
            part_size=env.get("PART_SIZE_BYTES", 8 * MIB),
            parts_in_flight=env.get("PARTS_IN_FLIGHT", 2),
            max_name_bytes=255,
            minors_may_share_publicly=env.flag("MINORS_MAY_SHARE_PUBLICLY", False),
            links_per_minute=env.get("LINKS_PER_MINUTE", 10),
        )
        if settings.part_size < S3_MIN_PART:
            raise SettingsError(f"CUMULO_BLOB_PART_SIZE_BYTES must be at least {S3_MIN_PART} (S3's minimum part)")
        if not 1 <= settings.parts_in_flight <= 8:
            raise SettingsError("CUMULO_BLOB_PARTS_IN_FLIGHT must be between 1 and 8")
        if settings.free_quota_bytes < 0:
            raise SettingsError("CUMULO_BLOB_FREE_QUOTA_BYTES must not be negative")
        return settings
