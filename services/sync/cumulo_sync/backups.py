"""Device backups: manifests whose entries point at blob files of the account. The newest
N of a device are kept; files no kept backup needs any more are released, and a job has
the blob service delete them. No transaction stays open over a call to the blob service;
an account lock orders the steps of backup creation against the job's, so a file a new
backup uses is never deleted under it: the backup's entries are stored (unready) before its
files are checked, and the job neither takes a file an entry points to nor lets a backup use
a file it is deleting."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import CumuloError, FailedPrecondition, InvalidArgument, NotFound, Unavailable, parse_id
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import check_sha256, decode_token, encode_token, page_size
from cumulo_sync.adapters.blobs import RemoteBlobs
from cumulo_sync.adapters.tables import SCHEMA, backup_entries, backups, released_files
from cumulo_sync.config import SyncSettings
from cumulo_sync.domain import rules

log = get_logger(__name__)

ENTRY_CHUNK = 5000
RELEASE_BATCH = 1000
RELEASE_RETRY = dt.timedelta(minutes=10)
# An unready backup this old will never be completed: its CreateBackup call ended long ago.
ABANDONED_AFTER = dt.timedelta(hours=1)

_INSERT_ENTRIES = sa.text(
    f"""
    INSERT INTO {SCHEMA}.backup_entries (backup_id, path, account_id, file_id, size, sha256)
    SELECT :backup_id, e.path, :account_id, e.file_id, e.size, e.sha256
    FROM unnest(CAST(:paths AS text[]), CAST(:file_ids AS uuid[]), CAST(:sizes AS bigint[]), CAST(:sha256s AS text[]))
         AS e(path, file_id, size, sha256)
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


@dataclasses.dataclass(frozen=True)
class Entry:
    path: str
    file_id: uuid.UUID
    size: int
    sha256: str


class Backups:
    def __init__(self, db: Database, settings: SyncSettings, clock: Clock, blobs: RemoteBlobs, holds: LegalHolds) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.blobs = blobs
        self.holds = holds

    # --- creating ---------------------------------------------------------------------

    async def read_manifest(self, messages: AsyncIterator[Any]) -> tuple[str, str, list[Entry]]:
        """The client stream: a header first, then entries. Each entry is checked as it comes."""
        device_id = device_name = None
        entries: list[Entry] = []
        paths: set[str] = set()
        async for message in messages:
            kind = message.WhichOneof("item")
            if kind == "header":
                if device_id is not None:
                    raise InvalidArgument("header", "comes once, first")
                device_id = rules.check_device(message.header.device_id, "header.device_id", empty=False)
                device_name = rules.check_device(message.header.device_name, "header.device_name") or device_id
                continue
            if kind != "entries":
                raise InvalidArgument("item", "each message is a header or entries")
            if device_id is None:
                raise InvalidArgument("header", "must come first")
            for item in message.entries.entries:
                i = len(entries)
                field = f"entries[{i}]"
                if i >= self.settings.max_backup_entries:
                    raise InvalidArgument("entries", f"a backup holds at most {self.settings.max_backup_entries} entries")
                path = rules.check_path(item.path, f"{field}.path")
                if path in paths:
                    raise InvalidArgument(f"{field}.path", "appears more than once in this backup")
                paths.add(path)
                if item.size < 0:
                    raise InvalidArgument(f"{field}.size", "must not be negative")
                entries.append(
                    Entry(path, parse_id(item.file_id, f"{field}.file_id", "a blob file id"), item.size, check_sha256(item.sha256, f"{field}.sha256"))
                )
        if device_id is None or device_name is None:
            raise InvalidArgument("header", "a backup starts with a header naming the device")
        return device_id, device_name, entries

    async def create(self, account: uuid.UUID, device_id: str, device_name: str, entries: list[Entry]) -> tuple[Any, list[uuid.UUID]]:
        """Stored unready first (its entries keep their files from being released from now
        on), then its files are checked with the blob service outside any transaction, then
        it is made ready and the device's oldest backups beyond the kept number go."""
        backup_id = await self._store_unready(account, device_id, device_name, entries)
        try:
            await self._check_files(account, entries)
        except Exception:
            async with self.db.unit_of_work() as uow:
                await uow.execute(sa.delete(backups).where(backups.c.backup_id == backup_id))
                await uow.commit()
            raise
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            await self._lock(uow, account)
            row = (
                await uow.execute(
                    sa.update(backups)
                    .where(backups.c.backup_id == backup_id, ~backups.c.ready)
                    # Its time is when it is complete: a slow check must not make it the oldest
                    # of the device's backups, pruned by the very step that makes it ready.
                    .values(ready=True, created_at=now)
                    .returning(*backups.c)
                )
            ).first()
            if row is None:  # left unready for so long that the tidy-up removed it
                raise Unavailable("the backup took too long to complete; send it again", reason="BACKUP_ABANDONED")
            # A released file this backup uses again is not deleted after all.
            file_ids = list({e.file_id for e in entries})
            for start in range(0, len(file_ids), ENTRY_CHUNK):
                await uow.execute(
                    sa.delete(released_files).where(
                        released_files.c.account_id == account, released_files.c.file_id.in_(file_ids[start : start + ENTRY_CHUNK])
                    )
                )
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
        log.info("backup_created", backup_id=str(backup_id), entries=len(entries), pruned=len(doomed))
        return row, list(doomed)

    async def _store_unready(self, account: uuid.UUID, device_id: str, device_name: str, entries: list[Entry]) -> uuid.UUID:
        """Under the account's lock, which orders it against the release job: a file the job
        is deleting right now cannot be used; any other file is safe once this commits."""
        backup_id = uuid.uuid4()
        async with self.db.unit_of_work() as uow:
            await self._lock(uow, account)
            going = await self._being_deleted(uow, account, list({e.file_id for e in entries}))
            for i, entry in enumerate(entries):
                if entry.file_id in going:
                    raise FailedPrecondition(
                        f"entries[{i}].file_id: the file is being deleted (no backup needed it any more); upload it again",
                        reason="BACKUP_FILE_MISSING", metadata={"field": f"entries[{i}].file_id"},
                    )
            await uow.execute(
                sa.insert(backups).values(
                    backup_id=backup_id, account_id=account, device_id=device_id, device_name=device_name,
                    created_at=self.clock.now(), entry_count=len(entries), total_size=sum(e.size for e in entries), ready=False,
                )
            )
            for start in range(0, len(entries), ENTRY_CHUNK):
                chunk = entries[start : start + ENTRY_CHUNK]
                await uow.execute(
                    _INSERT_ENTRIES,
                    {
                        "backup_id": backup_id, "account_id": account,
                        "paths": [e.path for e in chunk], "file_ids": [e.file_id for e in chunk],
                        "sizes": [e.size for e in chunk], "sha256s": [e.sha256 for e in chunk],
                    },
                )
            await uow.commit()
        return backup_id

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

    async def _check_files(self, account: uuid.UUID, entries: list[Entry]) -> None:
        stored = await self.blobs.live_files(str(account), list({str(e.file_id) for e in entries}))
        for i, entry in enumerate(entries):
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
