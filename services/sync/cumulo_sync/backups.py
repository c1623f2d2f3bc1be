"""Device backups: manifests whose entries point at blob files of the account. The newest
N of a device are kept; files no kept backup needs any more are released, and a job has
the blob service delete them. No transaction stays open over a call to the blob service;
an account lock orders the steps of backup creation against the job's, so a file a new
backup uses is never deleted under it: the backup's entries are stored (unready) before its
files are checked, and the job neither takes a file an entry points to nor lets a backup use
a file it is deleting."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from cumulo_platform.account_states import AccountStates
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import CumuloError, FailedPrecondition, InvalidArgument, NotFound, Unavailable, parse_id
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import decode_token, encode_token, page_size
from cumulo_sync.adapters.blobs import RemoteBlobs
from cumulo_sync.adapters.tables import SCHEMA, backup_entries, backups, released_files
from cumulo_sync.config import SyncSettings
from cumulo_sync.domain import rules
from cumulo_sync.domain.manifests import Entry, Limits, Manifest

log = get_logger(__name__)

ENTRY_CHUNK = 5000
# Manifest entries stored and checked with the blob service at a time (as many as blob
# describes in one call): what the server holds of a manifest, however big it is.
MANIFEST_CHUNK = 1000
RELEASE_BATCH = 1000
RELEASE_RETRY = dt.timedelta(minutes=10)
# An unready backup this old will never be completed: its CreateBackup call ended long ago.
ABANDONED_AFTER = dt.timedelta(hours=1)

# A path already stored for the backup (sent in an earlier chunk) is not stored again, nor
# returned: the caller names its entry.
_INSERT_ENTRIES = sa.text(
    f"""
    INSERT INTO {SCHEMA}.backup_entries (backup_id, path, account_id, file_id, size, sha256)
    SELECT :backup_id, e.path, :account_id, e.file_id, e.size, e.sha256
    FROM unnest(CAST(:paths AS text[]), CAST(:file_ids AS uuid[]), CAST(:sizes AS bigint[]), CAST(:sha256s AS text[]))
         AS e(path, file_id, size, sha256)
    ON CONFLICT (account_id, backup_id, path) DO NOTHING
    RETURNING path
    """
)

_KEEP_USED_AGAIN = sa.text(
    f"""
    DELETE FROM {SCHEMA}.released_files r USING {SCHEMA}.backup_entries e
    WHERE e.backup_id = :backup_id AND r.account_id = :account_id AND r.file_id = e.file_id
    """
)

# Files of the doomed backups that no other backup of the account points to.
_RELEASE = sa.text(
    f"""
    INSERT INTO {SCHEMA}.released_files (account_id, file_id, released_at)
    SELECT DISTINCT e.account_id, e.file_id, CAST(:now AS timestamptz) FROM {SCHEMA}.backup_entries e
    WHERE e.backup_id = ANY(CAST(:doomed AS uuid[]))
      AND NOT EXISTS (
        SELECT 1 FROM {SCHEMA}.backup_entries o
        WHERE o.account_id = e.account_id AND o.file_id = e.file_id AND o.backup_id <> ALL(CAST(:doomed AS uuid[])))
    ON CONFLICT DO NOTHING
    """
)


def account_lock_key(account: uuid.UUID) -> int:
    """The advisory lock under which an account's backups and released files change."""
    digest = hashlib.blake2b(b"sync-backups:" + account.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Backups:
    def __init__(
        self, db: Database, settings: SyncSettings, clock: Clock, blobs: RemoteBlobs, holds: LegalHolds, states: AccountStates
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.blobs = blobs
        self.holds = holds
        self.states = states

    # --- creating ---------------------------------------------------------------------

    async def create(self, account: uuid.UUID, messages: AsyncIterator[Any]) -> tuple[Any, list[uuid.UUID]]:
        """The client stream: a header, then entries in any number of messages, each entry
        checked as it comes. They are stored a chunk at a time, unready (out of sight, but
        keeping their files from being released from then on), and each chunk's files are
        then checked with the blob service outside any transaction; so however big the
        manifest, the server holds one message and one chunk of it. At the end the backup is
        made ready and the device's oldest backups beyond the kept number go. Should anything
        fail (a bad entry, a missing file, the client going away), what was stored goes."""
        stream = aiter(messages)
        device_id, device_name = await self._header(stream)
        settings = self.settings
        manifest = Manifest(
            Limits(
                entries=settings.max_backup_entries,
                path_bytes=settings.max_backup_path_bytes,
                manifest_bytes=settings.max_backup_manifest_bytes,
            )
        )
        backup_id: uuid.UUID | None = None

        async def flush() -> uuid.UUID:
            nonlocal backup_id
            chunk, first = manifest.take()
            backup_id = await self._store(account, backup_id, device_id, device_name, chunk, first)
            await self._check_files(account, chunk, first)
            return backup_id

        try:
            async for message in stream:
                kind = message.WhichOneof("item")
                if kind == "header":
                    raise InvalidArgument("header", "comes once, first")
                if kind != "entries":
                    raise InvalidArgument("item", "each message is a header or entries")
                manifest.count_message()
                for item in message.entries.entries:
                    manifest.add(item)
                    if len(manifest.pending) >= MANIFEST_CHUNK:
                        await flush()
            made = await flush() if backup_id is None or manifest.pending else backup_id
            return await self._make_ready(account, made, device_id, manifest)
        except BaseException:
            if backup_id is not None:
                await asyncio.shield(self._discard(backup_id))
            raise

    @staticmethod
    async def _header(stream: AsyncIterator[Any]) -> tuple[str, str]:
        message = await anext(stream, None)
        if message is None:
            raise InvalidArgument("header", "a backup starts with a header naming the device")
        if message.WhichOneof("item") != "header":
            raise InvalidArgument("header", "must come first")
        device_id = rules.check_device(message.header.device_id, "header.device_id", empty=False)
        device_name = rules.check_device(message.header.device_name, "header.device_name") or device_id
        return device_id, device_name

    async def _store(
        self, account: uuid.UUID, backup_id: uuid.UUID | None, device_id: str, device_name: str, chunk: list[Entry], first: int
    ) -> uuid.UUID:
        """A chunk of entries (`first`: the index of its first in the manifest); the first
        chunk stores the backup itself (an empty manifest too). Under the account's lock, which
        orders it against the release job: a file the job is deleting right now cannot be
        used; any other file is safe once this commits."""
        async with self.db.unit_of_work() as uow:
            await self.states.admit_write(uow, account)  # a purge that has begun gets nothing new
            await self._lock(uow, account)
            if backup_id is None:
                backup_id = uuid.uuid4()
                await uow.execute(
                    sa.insert(backups).values(
                        backup_id=backup_id, account_id=account, device_id=device_id, device_name=device_name,
                        created_at=self.clock.now(), entry_count=0, total_size=0, ready=False,
                    )
                )
            elif chunk:
                await self._still_unready(uow, backup_id)
            going = await self._being_deleted(uow, account, list({e.file_id for e in chunk}))
            for i, entry in enumerate(chunk, first):
                if entry.file_id in going:
                    raise FailedPrecondition(
                        f"entries[{i}].file_id: the file is being deleted (no backup needed it any more); upload it again",
                        reason="BACKUP_FILE_MISSING", metadata={"field": f"entries[{i}].file_id"},
                    )
            if chunk:
                stored = set(
                    (
                        await uow.execute(
                            _INSERT_ENTRIES,
                            {
                                "backup_id": backup_id, "account_id": account,
                                "paths": [e.path for e in chunk], "file_ids": [e.file_id for e in chunk],
                                "sizes": [e.size for e in chunk], "sha256s": [e.sha256 for e in chunk],
                            },
                        )
                    ).scalars()
                )
                for i, entry in enumerate(chunk, first):
                    if entry.path not in stored:  # the same path in an earlier chunk
                        raise InvalidArgument(f"entries[{i}].path", "appears more than once in this backup")
            await uow.commit()
        return backup_id

    @staticmethod
    async def _still_unready(uow: UnitOfWork, backup_id: uuid.UUID) -> None:
        """The backup being made is still there (FOR SHARE: the tidy-up cannot drop it now)."""
        alive = (
            await uow.execute(sa.select(backups.c.backup_id).where(backups.c.backup_id == backup_id, ~backups.c.ready).with_for_update(read=True))
        ).first()
        if alive is None:  # left unready for so long that the tidy-up removed it
            raise Unavailable("the backup took too long to complete; send it again", reason="BACKUP_ABANDONED")

    async def _make_ready(
        self, account: uuid.UUID, backup_id: uuid.UUID, device_id: str, manifest: Manifest
    ) -> tuple[Any, list[uuid.UUID]]:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            await self._lock(uow, account)
            row = (
                await uow.execute(
                    sa.update(backups)
                    .where(backups.c.backup_id == backup_id, ~backups.c.ready)
                    # Its time is when it is complete: a slow check must not make it the oldest
                    # of the device's backups, pruned by the very step that makes it ready.
                    .values(ready=True, created_at=now, entry_count=manifest.entries, total_size=manifest.total_size)
                    .returning(*backups.c)
                )
            ).first()
            if row is None:  # left unready for so long that the tidy-up removed it
                raise Unavailable("the backup took too long to complete; send it again", reason="BACKUP_ABANDONED")
            # A released file this backup uses again is not deleted after all.
            await uow.execute(_KEEP_USED_AGAIN, {"backup_id": backup_id, "account_id": account})
            doomed = (
                await uow.execute(
                    sa.select(backups.c.backup_id)
                    .where(backups.c.account_id == account, backups.c.device_id == device_id, backups.c.ready)
                    .order_by(backups.c.created_at.desc(), backups.c.backup_id)
                    .offset(self.settings.backups_kept)
                )
            ).scalars().all()
            await self._remove(uow, list(doomed), now)
            await uow.commit()
        log.info("backup_created", backup_id=str(backup_id), entries=manifest.entries, pruned=len(doomed))
        return row, list(doomed)

    async def _discard(self, backup_id: uuid.UUID) -> None:
        """A backup whose making failed, with its entries; if even that fails, the tidy-up
        drops it once it is ABANDONED_AFTER old."""
        try:
            async with self.db.unit_of_work() as uow:
                await uow.execute(sa.delete(backups).where(backups.c.backup_id == backup_id, ~backups.c.ready))
                await uow.commit()
        except Exception:
            log.warning("unready_backup_left", backup_id=str(backup_id))

    @staticmethod
    async def _being_deleted(uow: UnitOfWork, account: uuid.UUID, file_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        going: set[uuid.UUID] = set()
        for start in range(0, len(file_ids), ENTRY_CHUNK):
            going.update(
                (
                    await uow.execute(
                        sa.select(released_files.c.file_id).where(
                            released_files.c.account_id == account,
                            released_files.c.deleting_since.is_not(None),
                            released_files.c.file_id.in_(file_ids[start : start + ENTRY_CHUNK]),
                        )
                    )
                ).scalars()
            )
        return going

    async def _check_files(self, account: uuid.UUID, entries: list[Entry], first: int) -> None:
        if not entries:
            return
        stored = await self.blobs.live_files(str(account), list({str(e.file_id) for e in entries}))
        for i, entry in enumerate(entries, first):
            found = stored.get(str(entry.file_id))
            if found is None:
                raise FailedPrecondition(
                    f"entries[{i}].file_id: no such file in the account (upload the bytes through BlobService first)",
                    reason="BACKUP_FILE_MISSING", metadata={"field": f"entries[{i}].file_id"},
                )
            if found.size != entry.size or found.sha256 != entry.sha256:
                raise FailedPrecondition(
                    f"entries[{i}]: the stored file's size or SHA-256 differs from the entry's",
                    reason="BACKUP_FILE_MISMATCH", metadata={"field": f"entries[{i}]"},
                )

    @staticmethod
    async def _lock(uow: UnitOfWork, account: uuid.UUID) -> None:
        await uow.execute(sa.select(sa.func.pg_advisory_xact_lock(account_lock_key(account))))

    async def _remove(self, uow: UnitOfWork, doomed: list[uuid.UUID], now: Any) -> None:
        if not doomed:
            return
        await uow.execute(_RELEASE, {"doomed": doomed, "now": now})
        await uow.execute(sa.delete(backups).where(backups.c.backup_id.in_(doomed)))

    # --- reading ----------------------------------------------------------------------

    async def of_account(self, account: uuid.UUID, device_id: str) -> list[Any]:
        query = sa.select(backups).where(backups.c.account_id == account, backups.c.ready)
        if device_id:
            query = query.where(backups.c.device_id == rules.check_device(device_id, "device_id"))
        async with self.db.read() as conn:
            return list((await conn.execute(query.order_by(backups.c.created_at.desc(), backups.c.backup_id))).all())

    async def get(self, account: uuid.UUID, backup_id: str) -> Any:
        target = parse_id(backup_id, "backup_id", "a backup id")
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(backups).where(backups.c.backup_id == target, backups.c.account_id == account, backups.c.ready)
                )
            ).first()
        if row is None:
            raise NotFound("no such backup", reason="BACKUP_NOT_FOUND")
        return row

    async def entries(self, account: uuid.UUID, backup_id: str, size: int, token: str) -> tuple[list[Any], str]:
        backup = await self.get(account, backup_id)
        limit = page_size(size, default=1000, maximum=5000)
        query = (
            sa.select(backup_entries)
            .where(backup_entries.c.backup_id == backup.backup_id)
            .order_by(backup_entries.c.path)
            .limit(limit + 1)
        )
        if token:
            (after,) = decode_token(token, str)
            query = query.where(backup_entries.c.path > after)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return list(rows), encode_token([rows[-1].path]) if more else ""

    # --- deleting ---------------------------------------------------------------------

    async def delete(self, account: uuid.UUID, backup_id: str) -> None:
        backup = await self.get(account, backup_id)
        async with self.db.unit_of_work() as uow:
            await self._lock(uow, account)
            await self._remove(uow, [backup.backup_id], self.clock.now())
            await uow.commit()

    async def release_files(self) -> int:
        """Has the blob service delete files no backup needs any more, account by account.
        The files are taken under the account's lock (marked as being deleted, so a new
        backup cannot count on them), deleted outside any transaction, then forgotten. A held
        account's files stay (and stay listed) until released; so do those of an account the
        blob service did not answer for, while the others' go on."""
        now = self.clock.now()
        async with self.db.read() as conn:
            accounts = (
                await conn.execute(
                    sa.select(released_files.c.account_id)
                    .where(
                        sa.or_(released_files.c.retry_at.is_(None), released_files.c.retry_at <= now),
                        # Blob would refuse a held account's deletion: do not ask.
                        self.holds.not_held(released_files.c.account_id),
                    )
                    .distinct()
                    .limit(100)
                )
            ).scalars().all()
        deleted = 0
        for account in accounts:
            file_ids = await self._take_released(account, now)
            if not file_ids:
                continue
            try:
                deleted += await self.blobs.delete(str(account), [str(f) for f in file_ids], reason="backup pruned")
            except CumuloError as err:
                log.warning("backup_files_not_released", account_id=str(account), reason=err.reason)
                await self._settle_released(account, file_ids, deleted=False)
                continue
            await self._settle_released(account, file_ids, deleted=True)
        return deleted

    async def _take_released(self, account: uuid.UUID, now: dt.datetime) -> list[uuid.UUID]:
        """Due files no backup points to (an unready one may use a released file again), marked
        as being deleted and not due again before RELEASE_RETRY (should this round not end)."""
        due = (
            sa.select(released_files.c.file_id)
            .where(
                released_files.c.account_id == account,
                sa.or_(released_files.c.retry_at.is_(None), released_files.c.retry_at <= now),
                ~sa.exists().where(backup_entries.c.account_id == account, backup_entries.c.file_id == released_files.c.file_id),
            )
            .limit(RELEASE_BATCH)
            .scalar_subquery()
        )
        async with self.db.unit_of_work() as uow:
            await self._lock(uow, account)
            taken = (
                await uow.execute(
                    sa.update(released_files)
                    .where(released_files.c.account_id == account, released_files.c.file_id.in_(due))
                    .values(deleting_since=now, retry_at=now + RELEASE_RETRY)
                    .returning(released_files.c.file_id)
                )
            ).scalars().all()
            await uow.commit()
        return list(taken)

    async def _settle_released(self, account: uuid.UUID, file_ids: list[uuid.UUID], *, deleted: bool) -> None:
        taken = sa.and_(released_files.c.account_id == account, released_files.c.file_id.in_(file_ids))
        async with self.db.unit_of_work() as uow:
            await self._lock(uow, account)
            if deleted:
                await uow.execute(sa.delete(released_files).where(taken))
            else:  # still there: usable again, and tried again after RELEASE_RETRY
                await uow.execute(sa.update(released_files).where(taken).values(deleting_since=None))
            await uow.commit()

    async def drop_abandoned(self) -> int:
        """Unready backups whose making stopped half-way (a crash between the steps). Their
        files are not released: any of them may be a file of the user's own."""
        async with self.db.unit_of_work() as uow:
            gone = (
                await uow.execute(
                    sa.delete(backups).where(~backups.c.ready, backups.c.created_at < self.clock.now() - ABANDONED_AFTER)
                )
            ).rowcount or 0
            await uow.commit()
        return gone

    async def purge(self, account: uuid.UUID) -> int:
        """Every backup of the account (the blob service purges the files themselves)."""
        items = 0
        while True:
            async with self.db.unit_of_work() as uow:
                doomed = (
                    await uow.execute(sa.select(backups.c.backup_id).where(backups.c.account_id == account).limit(100))
                ).scalars().all()
                if not doomed:
                    break
                items += (await uow.execute(sa.delete(backup_entries).where(backup_entries.c.backup_id.in_(doomed)))).rowcount or 0
                items += (await uow.execute(sa.delete(backups).where(backups.c.backup_id.in_(doomed)))).rowcount or 0
                await uow.commit()
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.delete(released_files).where(released_files.c.account_id == account))
            await uow.commit()
        return items
