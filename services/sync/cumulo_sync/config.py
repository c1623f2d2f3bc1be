"""The sync service's settings: the platform's, plus its own (CUMULO_SYNC_*)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from cumulo_platform.settings import Env, PlatformSettings, SettingsError
from cumulo_sync.domain.rules import MAX_PATH_BYTES

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
    # A backup's manifest: how many entries, how long a path, and how many bytes its entries
    # may take as sent. It is stored as it streams in (the server holds a chunk at a time), so
    # these bound the database, not the memory.
    max_backup_entries: int
    max_backup_path_bytes: int
    max_backup_manifest_bytes: int
    # Zones an account may have: a push creates one by naming it.
    max_zones: int
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
            max_backup_path_bytes=env.get("MAX_BACKUP_PATH_BYTES", 1024),
            max_backup_manifest_bytes=env.get("MAX_BACKUP_MANIFEST_BYTES", 64 * MIB),
            max_zones=env.get("MAX_ZONES", 1000),
            watch_heartbeat=env.interval("WATCH_HEARTBEAT", "PT30S"),
        )
        # A push of one full-size payload must fit in one gRPC message, with room.
        largest = min(8 * MIB, settings.platform.grpc_max_receive_bytes // 2)
        if not 1 <= settings.max_payload_bytes <= largest:
            raise SettingsError(
                f"CUMULO_SYNC_MAX_PAYLOAD_BYTES must be between 1 and {largest} (8 MiB, at most half of CUMULO_GRPC_MAX_RECEIVE_BYTES)"
            )
        if not 1 <= settings.max_batch <= 1000:
            raise SettingsError("CUMULO_SYNC_MAX_BATCH must be between 1 and 1000")
        if settings.quota_bytes < 0:
            raise SettingsError("CUMULO_SYNC_QUOTA_BYTES must not be negative")
        if settings.backups_kept < 1:
            raise SettingsError("CUMULO_SYNC_BACKUPS_KEPT must be at least 1")
        if settings.max_backup_entries < 1:
            raise SettingsError("CUMULO_SYNC_MAX_BACKUP_ENTRIES must be at least 1")
        if not 1 <= settings.max_backup_path_bytes <= MAX_PATH_BYTES:
            raise SettingsError(f"CUMULO_SYNC_MAX_BACKUP_PATH_BYTES must be between 1 and {MAX_PATH_BYTES} (a database index key)")
        if settings.max_backup_manifest_bytes < 1:
            raise SettingsError("CUMULO_SYNC_MAX_BACKUP_MANIFEST_BYTES must be at least 1")
        if settings.max_zones < 1:
            raise SettingsError("CUMULO_SYNC_MAX_ZONES must be at least 1")
        return settings
