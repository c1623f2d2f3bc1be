"""The sync service's settings: the platform's, plus its own (CUMULO_SYNC_*)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from cumulo_platform.settings import Env, PlatformSettings, SettingsError

SERVICE = "sync"
MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class SyncSettings:
    platform: PlatformSettings
    max_payload_bytes: int
    max_batch: int
    quota_bytes: int
    tombstone_retention: dt.timedelta
    prune_every: dt.timedelta
    backups_kept: int
    max_backup_entries: int
    watch_heartbeat: dt.timedelta

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SyncSettings:
        env = Env(SERVICE, environ)
        settings = cls(
            platform=PlatformSettings.from_env(SERVICE, env),
            max_payload_bytes=env.get("MAX_PAYLOAD_BYTES", MIB),
            max_batch=env.get("MAX_BATCH", 400),
            quota_bytes=env.get("QUOTA_BYTES", 1024 * MIB),
            tombstone_retention=env.interval("TOMBSTONE_RETENTION", "P30D"),
            prune_every=env.interval("PRUNE_EVERY", "PT1M"),
            backups_kept=env.get("BACKUPS_KEPT", 3),
            max_backup_entries=env.get("MAX_BACKUP_ENTRIES", 200_000),
            watch_heartbeat=env.interval("WATCH_HEARTBEAT", "PT30S"),
        )
        # A push of max_batch payloads must fit in one gRPC message (16 MiB), with room.
        if not 1 <= settings.max_payload_bytes <= 8 * MIB:
            raise SettingsError("CUMULO_SYNC_MAX_PAYLOAD_BYTES must be between 1 and 8 MiB")
        if not 1 <= settings.max_batch <= 1000:
            raise SettingsError("CUMULO_SYNC_MAX_BATCH must be between 1 and 1000")
        if settings.quota_bytes < 0:
            raise SettingsError("CUMULO_SYNC_QUOTA_BYTES must not be negative")
        if settings.backups_kept < 1:
            raise SettingsError("CUMULO_SYNC_BACKUPS_KEPT must be at least 1")
        return settings
