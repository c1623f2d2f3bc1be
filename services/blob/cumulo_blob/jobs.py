"""The blob service's periodic work; every replica runs it, and the work is shared out by row
locks (SKIP LOCKED), so replicas never do the same piece twice."""

from __future__ import annotations

from cumulo_blob.config import BlobSettings
from cumulo_blob.contents import StoredContent
from cumulo_blob.plans import Plans
from cumulo_blob.takeout import Takeout
from cumulo_blob.trash import Trash
from cumulo_blob.uploads import Uploads
from cumulo_platform.runtime import Job, periodic

EXPIRE_UPLOADS_EVERY = 60.0  # seconds
DELETE_DOOMED_EVERY = 30.0
TRASH_RETENTION_EVERY = 3600.0
EXPIRE_EXPORTS_EVERY = 600.0


def jobs(settings: BlobSettings, *, uploads: Uploads, contents: StoredContent, trash: Trash, takeout: Takeout, plans: Plans) -> list[Job]:
    return [
        # Subscribers told of their plan's new price, before it applies.
        periodic(plans.notify_price_changes, every=settings.price_notice_every.total_seconds()),
        # Take-outs asked for, one at a time per replica; then archives past their expiry.
        periodic(takeout.run_due, every=settings.takeout_every.total_seconds()),
        periodic(takeout.expire, every=EXPIRE_EXPORTS_EVERY),
        # Abandoned uploads: S3 parts aborted, reservations given back.
        periodic(uploads.expire_abandoned, every=EXPIRE_UPLOADS_EVERY),
        # Stored objects doomed by a process that died before deleting them.
        periodic(contents.delete_doomed, every=DELETE_DOOMED_EVERY),
        # Trash past the retention period (held accounts' stays).
        periodic(trash.purge_old_trash, every=TRASH_RETENTION_EVERY),
    ]
