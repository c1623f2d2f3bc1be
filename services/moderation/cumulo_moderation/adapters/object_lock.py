"""Write-once evidence: S3 Object Lock retention on every object of a bundle, where the store
has it (CUMULO_MODERATION_EVIDENCE_LOCK_MODE, off by default).

The bucket must have Object Lock enabled; that is checked at start, and the service does not
start without it. The check asks the bucket's Object Lock configuration rather than trying a
locked write: a store without Object Lock may take the lock headers and drop them (`rclone
serve s3` does, and even echoes them back on HEAD), and one that does not know
PutObjectRetention may take its body for the object's new content (`rclone serve s3` does
that too). Retention is put on each object once the bundle is complete and the account still
held, so that an export abandoned half-way leaves nothing undeletable behind; objects written
by other services (blob's file copies, sync's and the locator's parts) are locked alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import botocore.exceptions

from cumulo_platform.errors import FailedPrecondition, Unavailable
from cumulo_platform.logging import get_logger
from cumulo_platform.settings import SettingsError
from cumulo_platform.storage import Storage

log = get_logger(__name__)
_OUTAGES = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError, botocore.exceptions.ReadTimeoutError, OSError)


class ObjectLockUnavailable(SettingsError):
    """Object Lock is configured but the preservation bucket cannot keep it."""


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


class BundleLock:
    def __init__(self, storage: Storage, *, mode: str | None, days: int) -> None:
        self.storage = storage
        self.mode = mode
        self.days = days

    @property
    def enabled(self) -> bool:
        return self.mode is not None

    async def check(self) -> None:
        """At start: with a lock mode set, the bucket must have Object Lock enabled."""
        if self.mode is None:
            return
        bucket = self.storage.bucket
        how = (
            f"create the bucket with Object Lock enabled (aws s3api create-bucket --bucket {bucket} --object-lock-enabled-for-bucket), "
            "or set CUMULO_MODERATION_EVIDENCE_LOCK_MODE=off"
        )
        try:
            answer = await self.storage.client.get_object_lock_configuration(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            raise ObjectLockUnavailable(
                f"CUMULO_MODERATION_EVIDENCE_LOCK_MODE={self.mode}, but the preservation bucket {bucket} has no Object Lock "
                f"(the object store answered {_error_code(exc)}): {how}"
            ) from None
        enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise ObjectLockUnavailable(
                f"CUMULO_MODERATION_EVIDENCE_LOCK_MODE={self.mode}, but the preservation bucket {bucket} does not have Object Lock "
                f"enabled (the object store says ObjectLockEnabled={enabled or 'nothing'}; `rclone serve s3`, the embedded store, "
                f"has no Object Lock): {how}"
            )
        log.info("evidence_object_lock_on", bucket=bucket, mode=self.mode, days=self.days)

    def retain_until(self, now: dt.datetime) -> dt.datetime | None:
        return None if self.mode is None else now + dt.timedelta(days=self.days)

    async def lock(self, keys: Iterable[str], until: dt.datetime) -> None:
        """Retention until `until` on each object; a refusal is an error naming the object,
        never an object left unlocked in silence."""
        assert self.mode is not None, "lock() only with a lock mode set"
        for key in keys:
            try:
                await self.storage.client.put_object_retention(
                    Bucket=self.storage.bucket, Key=key, Retention={"Mode": self.mode, "RetainUntilDate": until}
                )
            except botocore.exceptions.ClientError as exc:
                log.error("evidence_lock_refused", key=key, code=_error_code(exc))
                raise FailedPrecondition(
                    f"the preservation bucket refused to lock {key} ({self.mode} retention, {_error_code(exc)}); the bundle is not kept",
                    reason="EVIDENCE_LOCK_REFUSED",
                ) from None
            except _OUTAGES:
                raise Unavailable("the preservation bucket is briefly unavailable; export again", reason="STORAGE_UNAVAILABLE") from None
