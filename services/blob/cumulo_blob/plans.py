"""Quota from plans (R1.4, §7.2): the free tier plus what active purchases add. Prices are
versioned; a purchase records the version (and amount) the user agreed to, and a purchase
at a price that has changed since is refused until the user has seen the new one.

A price change is announced before it applies: a plan with subscribers gets a new price no
sooner than `price_notice` from now, and a job tells each subscriber (the lifecycle's notice
path, once per subscriber and version). A subscriber's renewals keep the price they bought at
until they accept a newer one (AcceptPrice, recorded with when and from which app)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from cumulo.events.v1 import events_pb2
from cumulo_blob.adapters.tables import plan_prices, price_acceptances, purchases
from cumulo_blob.config import BlobSettings
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, parse_id
from cumulo_platform.logging import get_logger

log = get_logger(__name__)
NOTICE_BATCH = 500  # subscribers told per transaction

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
        """Each plan at the price that applies now."""
        return [now for now, _ in await self.catalog()]

    async def catalog(self) -> list[tuple[Any, Any | None]]:
        """Each plan at its price now, with the newest price announced and not applying yet."""
        now = self.clock.now()
        async with self.db.read() as conn:
            rows = list((await conn.execute(sa.select(plan_prices).order_by(plan_prices.c.plan_id, plan_prices.c.version))).all())
        plans: dict[str, list[Any]] = {}
        for row in rows:
            plans.setdefault(row.plan_id, []).append(row)
        found = []
        for versions in plans.values():
            applied = [v for v in versions if v.applies_at <= now]
            coming = [v for v in versions if v.applies_at > now]
            if applied:
                found.append((applied[-1], coming[-1] if coming else None))
        return sorted(found, key=lambda pair: pair[0].bytes)

    async def versions_of(self, account: uuid.UUID) -> dict[str, tuple[int, int]]:
        """Plan -> (the price version of the account's running purchase, the newest price it accepted)."""
        now = self.clock.now()
        async with self.db.read() as conn:
            bought = (
                await conn.execute(
                    sa.select(purchases.c.plan_id, sa.func.max(purchases.c.price_version))
                    .where(purchases.c.account_id == account, purchases.c.ends_at > now)
                    .group_by(purchases.c.plan_id)
                )
            ).all()
            accepted = (
                await conn.execute(
                    sa.select(price_acceptances.c.plan_id, sa.func.max(price_acceptances.c.version))
                    .where(price_acceptances.c.account_id == account)
                    .group_by(price_acceptances.c.plan_id)
                )
            ).all()
        found: dict[str, tuple[int, int]] = {}
        for plan_id, version in bought:
            found[plan_id] = (int(version), 0)
        for plan_id, version in accepted:
            found[plan_id] = (found.get(plan_id, (0, 0))[0], int(version))
        return found

    async def set_price(
        self, *, plan_id: str, name: str, size: int, price: int, currency: str, period_days: int, applies_at: dt.datetime | None = None
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
            now = self.clock.now()
            subscribed = (
                await uow.execute(sa.select(purchases.c.purchase_id).where(purchases.c.plan_id == plan_id, purchases.c.ends_at > now).limit(1))
            ).first() is not None
            # Subscribers are told before a new price applies; a plan nobody holds changes at once.
            earliest = now + self.settings.price_notice if subscribed else now
            if applies_at is None:
                applies_at = earliest
            elif applies_at < earliest:
                raise InvalidArgument(
                    "applies_at", f"must leave the plan's subscribers {self.settings.price_notice} of notice: {earliest.isoformat()} at the earliest"
                )
            row = (
                await uow.execute(
                    sa.insert(plan_prices)
                    .values(plan_id=plan_id, version=version, name=name.strip(), bytes=size, price_minor_units=price,
                            currency=currency, period_days=period_days, created_at=now, applies_at=applies_at,
                            notified_at=None if subscribed else now)
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
            now = self.clock.now()
            applying = next((v for v in versions if v.applies_at <= now), None)
            if applying is None:
                raise FailedPrecondition("this plan has no price in force yet", reason="PRICE_NOT_IN_FORCE")
            if agreed.version != applying.version and not await self._renews_at(uow, account, plan_id, agreed.version):
                raise FailedPrecondition(
                    "the price changed; the user must see and accept the new price first",
                    reason="PRICE_CHANGED",
                    metadata={"current_price_version": str(applying.version)},
                )
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

    async def _renews_at(self, uow: Any, account: uuid.UUID, plan_id: str, version: int) -> bool:
        """Whether a purchase at `version` renews the account's own: it bought the plan at that
        price, and has accepted no newer one since (then its renewals are at that one)."""
        # A running purchase at that price, or one that ended within a period (a renewal paid late).
        bought = (
            await uow.execute(
                sa.select(purchases.c.purchase_id)
                .where(
                    purchases.c.account_id == account, purchases.c.plan_id == plan_id, purchases.c.price_version == version,
                    purchases.c.ends_at + (purchases.c.ends_at - purchases.c.starts_at) > self.clock.now(),
                )
                .limit(1)
            )
        ).first()
        newer = (
            await uow.execute(
                sa.select(price_acceptances.c.version).where(
                    price_acceptances.c.account_id == account, price_acceptances.c.plan_id == plan_id, price_acceptances.c.version > version
                ).limit(1)
            )
        ).first()
        return bought is not None and newer is None

    async def accept_price(self, account: uuid.UUID, plan_id: str, version: int, client_id: str) -> Any:
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(sa.select(plan_prices).where(plan_prices.c.plan_id == plan_id, plan_prices.c.version == version))
            ).first()
            if row is None:
                raise NotFound("no such price of this plan", reason="PRICE_NOT_FOUND")
            await uow.execute(
                pg_insert(price_acceptances)
                .values(account_id=account, plan_id=plan_id, version=version, accepted_at=self.clock.now(), client_id=client_id)
                .on_conflict_do_nothing()
            )
            await uow.commit()
        log.info("price_accepted", account_id=str(account), plan_id=plan_id, version=version)
        return row

    async def notify_price_changes(self) -> int:
        """Tells the subscribers of each plan with a new price not yet told (a batch of
        subscribers per transaction, each a notice.requested event: the lifecycle queues one
        notice per subscriber and version, so a retry after a crash tells nobody twice)."""
        told = 0
        async with self.db.read() as conn:
            pending = (await conn.execute(sa.select(plan_prices).where(plan_prices.c.notified_at.is_(None)).order_by(plan_prices.c.created_at))).all()
        for price in pending:
            async with self.db.read() as conn:
                before = (
                    await conn.execute(
                        sa.select(plan_prices).where(plan_prices.c.plan_id == price.plan_id, plan_prices.c.version < price.version)
                        .order_by(plan_prices.c.version.desc()).limit(1)
                    )
                ).first()
            after: uuid.UUID | None = None
            while True:
                async with self.db.unit_of_work() as uow:
                    query = (
                        sa.select(purchases.c.account_id)
                        .where(purchases.c.plan_id == price.plan_id, purchases.c.ends_at > self.clock.now())
                        .group_by(purchases.c.account_id)
                        .order_by(purchases.c.account_id)
                        .limit(NOTICE_BATCH)
                    )
                    if after is not None:
                        query = query.where(purchases.c.account_id > after)
                    batch = (await uow.execute(query)).scalars().all()
                    for account_id in batch:
                        uow.emit(
                            "notice.requested",
                            events_pb2.NoticeRequested(
                                account_id=str(account_id), reference=f"price:{price.plan_id}:{price.version}", kind="price_changed",
                                values={
                                    "plan": price.name, "currency": price.currency, "period_days": str(price.period_days),
                                    "old_price": str(before.price_minor_units) if before is not None else "",
                                    "new_price": str(price.price_minor_units), "applies_at": price.applies_at.isoformat(),
                                },
                            ),
                            account_id=str(account_id),
                        )
                    if len(batch) < NOTICE_BATCH:
                        await uow.execute(
                            sa.update(plan_prices)
                            .where(plan_prices.c.plan_id == price.plan_id, plan_prices.c.version == price.version)
                            .values(notified_at=self.clock.now())
                        )
                    await uow.commit()
                told += len(batch)
                if len(batch) < NOTICE_BATCH:
                    break
                after = batch[-1]
            log.info("price_change_notified", plan_id=price.plan_id, version=price.version)
        return told

    async def purchases_of(self, account: uuid.UUID) -> list[Any]:
        async with self.db.read() as conn:
            return list(
                await conn.execute(sa.select(purchases).where(purchases.c.account_id == account).order_by(purchases.c.starts_at))
            )
