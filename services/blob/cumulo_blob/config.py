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
    # Each ShareWithUser looks a contact up in auth, so answers tell whether an account has it:
    # an account may look up this many recipients per hour (this replica's count).
    recipients_per_hour: int
    # No client can stall the service (each limit counts this replica's streams): an account's
    # UploadChunks streams at once, and how long one may send nothing before it is ended (the
    # upload stays resumable); downloads at once per client address and per share link, and
    # how long one may go unread before it is ended.
    uploads_per_account: int
    upload_idle_timeout: dt.timedelta
    downloads_per_address: int
    downloads_per_link: int
    download_stall_timeout: dt.timedelta
    # Signed download URLs: where clients reach the object store (the gateway's public address,
    # e.g. https://cloud.example.com, whose route to S3 keeps the Host the URL was signed for;
    # empty: no signed URLs, clients stream through Download), and how long a URL lives.
    download_url_base: str
    download_url_ttl: dt.timedelta
    # Take-out (cumulo_blob.takeout): exports an account may ask for in a day, how long the
    # archives are kept, the size an archive is split at, and how often a replica looks for
    # exports to work on.
    takeout_per_day: int
    takeout_expiry: dt.timedelta
    takeout_archive_bytes: int
    takeout_every: dt.timedelta
    # How long before a new price applies a plan's subscribers must be told (§7.2), and how
    # often a replica looks for subscribers to tell.
    price_notice: dt.timedelta
    price_notice_every: dt.timedelta

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
            recipients_per_hour=env.get("RECIPIENTS_PER_HOUR", 60),
            uploads_per_account=env.get("UPLOADS_PER_ACCOUNT", 4),
            upload_idle_timeout=env.interval("UPLOAD_IDLE_TIMEOUT", "PT60S"),
            downloads_per_address=env.get("DOWNLOADS_PER_ADDRESS", 8),
            downloads_per_link=env.get("DOWNLOADS_PER_LINK", 32),
            download_stall_timeout=env.interval("DOWNLOAD_STALL_TIMEOUT", "PT60S"),
            download_url_base=env.get("DOWNLOAD_URL_BASE", "").rstrip("/"),
            download_url_ttl=env.interval("DOWNLOAD_URL_TTL", "PT5M"),
            takeout_per_day=env.get("TAKEOUT_PER_DAY", 3),
            takeout_expiry=env.interval("TAKEOUT_EXPIRY", "P7D"),
            takeout_archive_bytes=env.get("TAKEOUT_ARCHIVE_BYTES", 4 * 1024 * MIB),
            takeout_every=env.interval("TAKEOUT_EVERY", "PT5S"),
            price_notice=env.interval("PRICE_NOTICE", "P30D"),
            price_notice_every=env.interval("PRICE_NOTICE_EVERY", "PT60S"),
        )
        if settings.download_url_base and not settings.download_url_base.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise SettingsError("CUMULO_BLOB_DOWNLOAD_URL_BASE must be an https:// address (plain http only on this machine)")
        if not dt.timedelta(seconds=10) <= settings.download_url_ttl <= dt.timedelta(hours=1):
            raise SettingsError("CUMULO_BLOB_DOWNLOAD_URL_TTL must be between PT10S and PT1H")
        if settings.part_size < S3_MIN_PART:
            raise SettingsError(f"CUMULO_BLOB_PART_SIZE_BYTES must be at least {S3_MIN_PART} (S3's minimum part)")
        if not 1 <= settings.parts_in_flight <= 8:
            raise SettingsError("CUMULO_BLOB_PARTS_IN_FLIGHT must be between 1 and 8")
        if settings.takeout_archive_bytes < MIB:
            raise SettingsError("CUMULO_BLOB_TAKEOUT_ARCHIVE_BYTES must be at least 1 MiB")
        if settings.free_quota_bytes < 0:
            raise SettingsError("CUMULO_BLOB_FREE_QUOTA_BYTES must not be negative")
        for name, limit in (
            ("UPLOADS_PER_ACCOUNT", settings.uploads_per_account),
            ("RECIPIENTS_PER_HOUR", settings.recipients_per_hour),
            ("DOWNLOADS_PER_ADDRESS", settings.downloads_per_address),
            ("DOWNLOADS_PER_LINK", settings.downloads_per_link),
            ("TAKEOUT_PER_DAY", settings.takeout_per_day),
        ):
            if limit < 1:
                raise SettingsError(f"CUMULO_BLOB_{name} must be at least 1")
        for name, timeout in (
            ("UPLOAD_IDLE_TIMEOUT", settings.upload_idle_timeout),
            ("DOWNLOAD_STALL_TIMEOUT", settings.download_stall_timeout),
            ("TAKEOUT_EXPIRY", settings.takeout_expiry),
            ("TAKEOUT_EVERY", settings.takeout_every),
            ("PRICE_NOTICE_EVERY", settings.price_notice_every),
        ):
            if timeout <= dt.timedelta(0):
                raise SettingsError(f"CUMULO_BLOB_{name} must be a positive duration")
        return settings
