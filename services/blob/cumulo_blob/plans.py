"""Quota from plans (R1.4, §7.2): the free tier plus what active purchases add. Prices are
versioned; a purchase records the version (and amount) the user agreed to, and a purchase
at a price that has changed since is refused until the user has seen the new one."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cumulo_blob.adapters.tables import plan_prices, purchases
from cumulo_blob.config import BlobSettings
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, parse_id

GIB = 1024**3
# The catalog a development start-up offers (prices in fen).
DEVELOPMENT_CATALOG = [
    ("cumulo-50g", "50 GB", 50 * GIB, 600, "CNY", 30),
    ("cumulo-200g", "200 GB", 200 * GIB, 2100, "CNY", 30),
    ("cumulo-2t", "2 TB", 2048 * GIB, 6800, "CNY", 30),
]


class Plans:
    def __init__(self, db: Database, settings: BlobSettings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    async def quota_of(self, conn: Any, account: uuid.UUID) -> int:
        now = self.clock.now()
        granted = (
            await conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(purchases.c.bytes), 0)).where(
                    purchases.c.account_id == account, purchases.c.starts_at <= now, purchases.c.ends_at > now
                )
            )
        ).scalar_one()
        return self.settings.free_quota_bytes + int(granted)

    async def current(self) -> list[Any]:
        latest = (
            sa.select(plan_prices.c.plan_id, sa.func.max(plan_prices.c.version).label("version"))
            .group_by(plan_prices.c.plan_id)
            .subquery()
        )
        async with self.db.read() as conn:
            return list(
                await conn.execute(
                    sa.select(plan_prices)
                    .join(latest, sa.and_(plan_prices.c.plan_id == latest.c.plan_id, plan_prices.c.version == latest.c.version))
                    .order_by(plan_prices.c.bytes)
                )
            )

    async def set_price(
        self, *, plan_id: str, name: str, size: int, price: int, currency: str, period_days: int
    ) -> Any:
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", plan_id):
            raise InvalidArgument("plan_id", "must be 1-63 lower-case letters, digits or '-'")
        if not name.strip():
            raise InvalidArgument("name", "must not be empty")
        if size <= 0:
            raise InvalidArgument("bytes", "must be positive")
        if price < 0:
            raise InvalidArgument("price_minor_units", "must not be negative")
        if not re.match(r"^[A-Z]{3}$", currency):
            raise InvalidArgument("currency", "must be an ISO 4217 code like CNY")
        if not 1 <= period_days <= 3660:
            raise InvalidArgument("period_days", "must be between 1 and 3660")
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"plan:{plan_id}"})
            version = (
                await uow.execute(sa.select(sa.func.coalesce(sa.func.max(plan_prices.c.version), 0)).where(plan_prices.c.plan_id == plan_id))
            ).scalar_one() + 1
            row = (
                await uow.execute(
                    sa.insert(plan_prices)
                    .values(plan_id=plan_id, version=version, name=name.strip(), bytes=size, price_minor_units=price,
                            currency=currency, period_days=period_days, created_at=self.clock.now())
                    .returning(*plan_prices.c)
                )
            ).one()
            await uow.commit()
        return row

    async def seed_development_catalog(self) -> None:
        if await self.current():
            return
        for plan_id, name, size, price, currency, days in DEVELOPMENT_CATALOG:
            await self.set_price(plan_id=plan_id, name=name, size=size, price=price, currency=currency, period_days=days)

    async def record_purchase(self, account_id: str, plan_id: str, price_version: int, payment_reference: str) -> Any:
        account = parse_id(account_id, "account_id", "an account id (UUID)")
        if not payment_reference.strip():
            raise InvalidArgument("payment_reference", "must name the payment, so a retry records it once")
        async with self.db.unit_of_work() as uow:
            existing = (
                await uow.execute(sa.select(purchases).where(purchases.c.payment_reference == payment_reference))
            ).first()
            if existing is not None:
                if existing.account_id != account:
                    raise FailedPrecondition("this payment belongs to another purchase", reason="PAYMENT_REUSED")
                return existing
            versions = (
                await uow.execute(
                    sa.select(plan_prices).where(plan_prices.c.plan_id == plan_id).order_by(plan_prices.c.version.desc())
                )
            ).all()
            if not versions:
                raise NotFound("no such plan", reason="PLAN_NOT_FOUND")
            agreed = next((v for v in versions if v.version == price_version), None)
            if agreed is None:
                raise InvalidArgument("price_version", "is not a price this plan ever had")
            if agreed.version != versions[0].version:
                raise FailedPrecondition(
                    "the price changed; the user must see and accept the new price first",
                    reason="PRICE_CHANGED",
                    metadata={"current_price_version": str(versions[0].version)},
                )
            now = self.clock.now()
            # A new purchase of a plan the account holds extends it; otherwise it starts now.
            running = (
                await uow.execute(
                    sa.select(sa.func.max(purchases.c.ends_at)).where(
                        purchases.c.account_id == account, purchases.c.plan_id == plan_id, purchases.c.ends_at > now
                    )
                )
            ).scalar_one()
            starts = running or now
            try:
                row = (
                    await uow.execute(
                        sa.insert(purchases)
                        .values(
                            purchase_id=uuid.uuid4(), account_id=account, plan_id=plan_id, price_version=agreed.version,
                            bytes=agreed.bytes, price_minor_units=agreed.price_minor_units, currency=agreed.currency,
                            payment_reference=payment_reference, starts_at=starts,
                            ends_at=starts + dt.timedelta(days=agreed.period_days), created_at=now,
                        )
                        .returning(*purchases.c)
                    )
                ).one()
            except IntegrityError:
                raise FailedPrecondition("this payment was recorded at the same moment; retry", reason="PAYMENT_REUSED") from None
            await uow.commit()
        return row

    async def purchases_of(self, account: uuid.UUID) -> list[Any]:
        async with self.db.read() as conn:
            return list(
                await conn.execute(sa.select(purchases).where(purchases.c.account_id == account).order_by(purchases.c.starts_at))
            )
