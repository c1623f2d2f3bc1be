"""The account purge: everything of an account goes — open uploads (their S3 parts aborted),
files and folders, content and its blocks, usage, every stored object, and other users' shares
with it. It runs in short transactions and is safe to run again after a crash at any point;
objects the storage could not delete yet make it ask to be run again (`PurgeNotYet`).

The lifecycle's deletion saga reaches it through the platform's purge participant
(`cumulo_platform.purge`: the account refused first, the completion reported after); the
internal PurgeAccount RPC takes the same steps, and refuses a held account (LEGAL_HOLD)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from cumulo_blob.adapters.storage import object_key
from cumulo_blob.adapters.tables import (
    content_blocks,
    contents,
    doomed_objects,
    nodes,
    price_acceptances,
    upload_writers,
    uploads,
    usage,
    user_shares,
)
from cumulo_blob.config import SERVICE
from cumulo_blob.contents import StoredContent
from cumulo_blob.domain.errors import LegalHold
from cumulo_blob.takeout import Takeout
from cumulo_platform.account_states import AccountStates
from cumulo_platform.db import Database, delete_in_batches
from cumulo_platform.errors import parse_id
from cumulo_platform.legal_holds import LegalHolds
from cumulo_platform.logging import get_logger
from cumulo_platform.purge import PurgeNotYet, refuse, report
from cumulo_platform.storage import Storage

log = get_logger(__name__)
PURGE_BATCH = 500


class Purge:
    def __init__(
        self, *, db: Database, storage: Storage, contents: StoredContent, holds: LegalHolds, states: AccountStates, takeout: Takeout
    ) -> None:
        self.db = db
        self.storage = storage
        self.contents = contents
        self.holds = holds
        self.states = states
        self.takeout = takeout

    async def account(self, account: uuid.UUID, reason: str = "") -> int:
        """The purge participant's `purge_account`: how many items went."""
        items, _ = await self.purge(account)
        return items

    async def purge_and_report(self, account_id: str) -> tuple[int, int]:
        """The internal PurgeAccount RPC: the participant's steps, for a caller that is not the
        lifecycle (so the hold is checked here)."""
        account = parse_id(account_id, "account_id", "an account id (UUID)")
        if await self.holds.held(account):
            raise LegalHold("the account is under a legal hold; nothing is deleted")
        await refuse(self.states, account)
        items, objects = await self.purge(account)
        async with self.db.unit_of_work() as uow:
            report(uow, SERVICE, account, items)
            await uow.commit()
        return items, objects

    async def purge(self, account: uuid.UUID) -> tuple[int, int]:
        """(items deleted, stored objects deleted)."""
        items = await self._uploads(account) + await self._nodes(account) + await self._shares_to(account)
        items += await self.takeout.purge(account)
        async with self.db.unit_of_work() as uow:
            items += (await uow.execute(sa.delete(price_acceptances).where(price_acceptances.c.account_id == account))).rowcount or 0
            await uow.commit()
        await self._contents(account)
        objects = 0
        while deleted := await self.contents.delete_doomed(account):
            objects += deleted
        async with self.db.read() as conn:
            left = (
                await conn.execute(sa.select(sa.func.count()).select_from(doomed_objects).where(doomed_objects.c.account_id == account))
            ).scalar_one()
        if left:  # the storage refused or was away: nothing to blame the request for
            raise PurgeNotYet(f"{left} stored objects could not be deleted yet; purge again", reason="PURGE_INCOMPLETE")
        log.info("blob_account_purged", account_id=str(account), items=items, objects=objects)
        return items, objects

    async def _uploads(self, account: uuid.UUID) -> int:
        """Open uploads: their S3 parts aborted, then forgotten."""
        async with self.db.read() as conn:
            open_uploads = (
                await conn.execute(
                    sa.select(uploads.c.upload_id, uploads.c.s3_upload_id)
                    .where(uploads.c.account_id == account, uploads.c.state == "open")
                )
            ).all()
        async with self.db.unit_of_work() as uow:
            # A stream still writing one is not waited for: its next record or its completion
            # finds the upload gone and ends UPLOAD_CLOSED, never as a new file (writer_lock).
            for upload in open_uploads:
                if upload.s3_upload_id:
                    await self.storage.abort_multipart(object_key(str(account), str(upload.upload_id)), upload.s3_upload_id)
            deleted = (await uow.execute(sa.delete(uploads).where(uploads.c.account_id == account))).rowcount or 0
            await uow.execute(sa.delete(upload_writers).where(upload_writers.c.account_id == account))
            await uow.commit()
        return int(deleted)

    async def _shares_to(self, account: uuid.UUID) -> int:
        """Live users' shares with the account: they go, and with them its id and address in
        their owners' rows (its own shares went with its files)."""
        return await delete_in_batches(self.db, user_shares.fullname, "recipient_id = :account", {"account": account}, batch=PURGE_BATCH)

    async def _nodes(self, account: uuid.UUID) -> int:
        """Files and folders: leaves first, in batches, so no statement grows with the account."""
        deleted = 0
        while True:
            async with self.db.unit_of_work() as uow:
                batch = (
                    await uow.execute(
                        sa.select(nodes.c.node_id)
                        .where(
                            nodes.c.account_id == account,
                            ~sa.exists().where(nodes.alias("child").c.parent_id == nodes.c.node_id),
                        )
                        .limit(PURGE_BATCH)
                    )
                ).scalars().all()
                if not batch:
                    return deleted
                deleted += (await uow.execute(sa.delete(nodes).where(nodes.c.node_id.in_(batch)))).rowcount or 0
                await uow.commit()

    async def _contents(self, account: uuid.UUID) -> None:
        """Every stored object of the account is doomed; then its usage goes, and the blocks
        of its content (the blocklist is nobody's: it stays)."""
        async with self.db.unit_of_work() as uow:
            keys = (
                await uow.execute(sa.delete(contents).where(contents.c.account_id == account).returning(contents.c.s3_key))
            ).scalars().all()
            for key in keys:
                await self.contents.doom(uow, account, key)
            await uow.execute(sa.delete(usage).where(usage.c.account_id == account))
            await uow.execute(sa.delete(content_blocks).where(content_blocks.c.account_id == account))
            await uow.commit()
