"""Stored content and its objects: each account's content is counted by reference; when the
last reference goes, the space is given back and the S3 object is doomed — deleted right
after the commit, or by the sweeper if the process died first. Objects of an account under a
legal hold stay, whatever happened to its files."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_blob.adapters.tables import contents, doomed_objects, usage
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger
from cumulo_platform.storage import Storage

log = get_logger(__name__)


class StoredContent:
    def __init__(self, *, db: Database, storage: Storage, clock: Clock, holds: LegalHolds) -> None:
        self.db = db
        self.storage = storage
        self.clock = clock
        self.holds = holds

    async def release(self, uow: UnitOfWork, account: uuid.UUID, sha256: str, refs: int = 1) -> None:
        """Drops references; the last one frees the space and dooms the stored object."""
        row = (
            await uow.execute(
                sa.update(contents)
                .where(contents.c.account_id == account, contents.c.sha256 == sha256)
                .values(refcount=contents.c.refcount - refs)
                .returning(contents.c.refcount, contents.c.size, contents.c.s3_key)
            )
        ).one()
        if row.refcount > 0:
            return
        await uow.execute(sa.delete(contents).where(contents.c.account_id == account, contents.c.sha256 == sha256))
        await uow.execute(sa.update(usage).where(usage.c.account_id == account).values(used=usage.c.used - row.size))
        await self.doom(uow, account, row.s3_key)

    async def doom(self, uow: UnitOfWork, account: uuid.UUID, key: str) -> None:
        await uow.execute(
            pg_insert(doomed_objects).values(key=key, account_id=account, created_at=self.clock.now()).on_conflict_do_nothing()
        )

    async def delete_doomed(self, account: uuid.UUID | None = None, batch_size: int = 100) -> int:
        """Deletes stored objects nothing references any more; replicas share the work."""
        deleted = 0
        async with self.db.unit_of_work() as uow:
            query = (
                sa.select(doomed_objects.c.account_id, doomed_objects.c.key)
                .where(self.holds.not_held(doomed_objects.c.account_id))
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
            if account is not None:
                query = query.where(doomed_objects.c.account_id == account)
            doomed = (await uow.execute(query)).all()
            for owner, key in doomed:
                try:
                    await self.storage.delete(key)
                except Exception as exc:  # S3 away: the sweeper tries again later
                    log.warning("doomed_object_kept", error=type(exc).__name__)
                    break
                await uow.execute(
                    sa.delete(doomed_objects).where(doomed_objects.c.account_id == owner, doomed_objects.c.key == key)
                )
                deleted += 1
            await uow.commit()
        return deleted
