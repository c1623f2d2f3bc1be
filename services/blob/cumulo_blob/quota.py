"""Usage against the quota: what the account's content uses, what its open uploads reserve,
and its quota (the free tier plus its plans). An upload that does not fit is refused before
any byte flows."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_blob.adapters.tables import usage
from cumulo_blob.plans import Plans
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import ResourceExhausted


class Quota:
    def __init__(self, *, db: Database, plans: Plans) -> None:
        self.db = db
        self.plans = plans

    async def usage(self, account: uuid.UUID) -> tuple[int, int, int]:
        """(used, reserved, quota) in bytes."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(usage).where(usage.c.account_id == account))).first()
            quota = await self.plans.quota_of(conn, account)
        used, reserved = (row.used, row.reserved) if row else (0, 0)
        return used, reserved, quota

    async def lock(self, uow: UnitOfWork, account: uuid.UUID) -> Any:
        """The account's usage row, created if need be and locked: reservations and completions
        of one account happen one at a time."""
        await uow.execute(pg_insert(usage).values(account_id=account).on_conflict_do_nothing())
        return (await uow.execute(sa.select(usage).where(usage.c.account_id == account).with_for_update())).one()

    async def check(self, account: uuid.UUID, size: int, *, uow: UnitOfWork | None = None) -> None:
        """QUOTA_EXCEEDED unless `size` more bytes fit (in `uow`, after `lock`, for certain)."""
        query = sa.select(usage.c.used, usage.c.reserved).where(usage.c.account_id == account)
        if uow is None:
            async with self.db.read() as conn:
                row = (await conn.execute(query)).first()
                quota = await self.plans.quota_of(conn, account)
        else:
            row = (await uow.execute(query)).first()
            quota = await self.plans.quota_of(uow, account)
        used, reserved = (row.used, row.reserved) if row else (0, 0)
        if used + reserved + size > quota:
            raise ResourceExhausted(
                f"this upload needs {size} bytes; {max(quota - used - reserved, 0)} of your {quota} are free",
                reason="QUOTA_EXCEEDED",
                metadata={"quota": str(quota), "used": str(used), "reserved": str(reserved)},
            )

    async def reserve(self, uow: UnitOfWork, account: uuid.UUID, size: int) -> None:
        await uow.execute(sa.update(usage).where(usage.c.account_id == account).values(reserved=usage.c.reserved + size))

    async def release(self, uow: UnitOfWork, account: uuid.UUID, size: int) -> None:
        """An upload's reservation ends (it completed, or never will)."""
        await uow.execute(sa.update(usage).where(usage.c.account_id == account).values(reserved=usage.c.reserved - size))

    async def use(self, uow: UnitOfWork, account: uuid.UUID, size: int) -> None:
        """New content is stored: its bytes count as used."""
        await uow.execute(sa.update(usage).where(usage.c.account_id == account).values(used=usage.c.used + size))
