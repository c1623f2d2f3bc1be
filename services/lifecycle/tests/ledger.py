"""A lifecycle ledger of a test's own: a fresh database, migrated, with the use cases as a
lifecycle started with given calendar settings would compose them, on a clock the test sets.
For tests whose sweeps or re-timings touch every due account: on the session's ledger they
would act on other tests' accounts (`ledger` fixture, conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from cumulo_lifecycle import bootstrap
from cumulo_lifecycle.adapters.tables import SCHEMA, accounts
from cumulo_lifecycle.bootstrap import UseCases, compose
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.domain.calendar import FROZEN
from cumulo_lifecycle.rows import AccountRows
from cumulo_platform import migrations
from cumulo_platform.clock import FrozenClock
from cumulo_platform.db import Database, create_engine
from cumulo_platform.legal_holds import LegalHolds

NOW = dt.datetime(2026, 12, 4, 6, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class Ledger:
    db: Database
    settings: LifecycleSettings
    clock: FrozenClock
    holds: LegalHolds

    def cases(self, **calendar_changes: Any) -> UseCases:
        """The use cases as a lifecycle started with these calendar settings would have them."""
        settings = dataclasses.replace(self.settings, calendar=dataclasses.replace(self.settings.calendar, **calendar_changes))

        async def no_contacts(account_id: str) -> None:
            return None

        return compose(self.db, settings, self.clock, holds=self.holds, contacts=no_contacts)

    async def add(self, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
        """Accounts with these columns (each gets a new id unless it names one)."""
        values = [{"account_id": uuid.uuid4(), "updated_at": NOW, **row} for row in rows]
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.insert(accounts), values)
            await uow.commit()
        return [value["account_id"] for value in values]

    async def add_frozen(self, count: int, *, frozen_at: dt.datetime, next_due: dt.datetime, reminders_done: int = 0) -> list[uuid.UUID]:
        delete_at = self.settings.calendar.delete_at(frozen_at)
        return await self.add([
            {
                "state": FROZEN, "last_access_at": frozen_at - dt.timedelta(days=400), "freeze_at": frozen_at,
                "frozen_at": frozen_at, "delete_at": delete_at, "next_due_at": next_due, "reminders_done": reminders_done,
            }
            for _ in range(count)
        ])

    async def hold(self, account_id: uuid.UUID) -> None:
        async with self.db.unit_of_work() as uow:
            await self.holds.record(uow, account_id, True, NOW)
            await uow.commit()

    async def due_times(self, ids: list[uuid.UUID]) -> set[dt.datetime | None]:
        async with self.db.read() as conn:
            return set((await conn.execute(sa.select(accounts.c.next_due_at).where(accounts.c.account_id.in_(ids)))).scalars())

    async def rows(self) -> list[Any]:
        """Every account, with `held`, as the sweeper reads them."""
        async with self.db.read() as conn:
            return list((await conn.execute(AccountRows(self.holds, self.clock).select())).all())

    async def states(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        async with self.db.read() as conn:
            found = await conn.execute(sa.select(accounts.c.account_id, accounts.c.state).where(accounts.c.account_id.in_(ids)))
            return {row.account_id: row.state for row in found}


@contextlib.asynccontextmanager
async def open_ledger(environ: dict[str, str], revision: str = "head") -> AsyncIterator[Ledger]:
    """A ledger on the fresh database `environ` names (infra.service_environ()), migrated up to
    `revision`."""
    settings = LifecycleSettings.from_env(environ)
    await migrate(settings, revision)
    db = Database(create_engine(settings.platform.database_url, pool_size=2), schema=SCHEMA, producer="lifecycle")
    try:
        yield Ledger(db, settings, FrozenClock(NOW), LegalHolds(db))
    finally:
        await db.dispose()


async def migrate(settings: LifecycleSettings, revision: str = "head") -> None:
    await asyncio.to_thread(migrations.upgrade, settings.platform.database_url, SCHEMA, bootstrap.MIGRATIONS, revision)
