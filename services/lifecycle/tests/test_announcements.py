"""The operator's announcements queued as notices in batches, on a lifecycle database of the
test's own (accounts written straight into it): every account that can still be told gets one
notice per verified channel, in its language; one with no contact is recorded as such; deleted
accounts get none; a batch that was interrupted is taken up after the last that committed,
and nothing is queued twice; bad announcements are refused naming the field."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from cumulo_lifecycle import bootstrap as lifecycle_bootstrap
from cumulo_lifecycle.adapters.tables import accounts, announcements, notices
from cumulo_lifecycle.announcements import Announcements
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_platform.clock import SystemClock
from cumulo_platform.db import Database, create_engine
from cumulo_platform.errors import InvalidArgument

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=30)


@pytest.fixture
async def own(infra) -> AsyncIterator[tuple[Database, LifecycleSettings]]:
    settings = LifecycleSettings.from_env(infra.service_environ())
    await asyncio.to_thread(lifecycle_bootstrap.migrate, settings)
    db = Database(create_engine(settings.platform.database_url), schema="lifecycle", producer="lifecycle", clock=SystemClock())
    try:
        yield db, settings
    finally:
        await db.dispose()


async def seed(db: Database, rows: list[dict]) -> None:
    async with db.unit_of_work() as uow:
        for row in rows:
            await uow.execute(
                sa.insert(accounts).values(
                    account_id=row.get("account_id", uuid.uuid4()), state=row.get("state", "active"), last_access_at=NOW,
                    email=row.get("email"), phone=row.get("phone"), locale=row.get("locale", "zh-CN"), updated_at=NOW,
                )
            )
        await uow.commit()


async def queued(db: Database, kind: str = "terms_changed") -> list:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(notices).where(notices.c.kind == kind).order_by(notices.c.account_id, notices.c.channel))).all())


async def test_every_account_that_can_be_told_gets_one_notice_per_channel_in_its_language(own) -> None:
    db, settings = own
    people = [
        {"email": "ann@example.com", "locale": "en"},
        {"email": "li@example.com", "phone": "+8613800000000", "locale": "zh-CN"},
        {"phone": "+8613900000000", "locale": "fr"},  # a language the notices do not speak: zh-CN
        {"state": "frozen", "email": "frozen@example.com", "locale": "en"},
        {},  # no verified contact
    ]
    gone = [{"state": "deleted"}, {"state": "deleting", "email": "going@example.com"}]
    await seed(db, people + gone)
    made = Announcements(db, settings, SystemClock(), batch=2)  # batches smaller than the accounts
    row = await made.announce("terms", "2027-01", starts_at=LATER, ends_at=None, message_en="Shorter.", message_zh="更简短。", actor="ops")
    assert await made.fan_out() == len(people)

    found = await queued(db)
    by_address = {n.destination: n for n in found if n.channel != "none"}
    assert set(by_address) == {"ann@example.com", "li@example.com", "+8613800000000", "+8613900000000", "frozen@example.com"}
    assert by_address["ann@example.com"].subject.startswith("cumulo's terms of service change on")
    assert "version 2027-01" in by_address["ann@example.com"].body and "Shorter." in by_address["ann@example.com"].body
    assert by_address["li@example.com"].subject.startswith("cumulo 服务条款将于") and "更简短。" in by_address["li@example.com"].body
    assert by_address["+8613900000000"].locale == "zh-CN"
    assert all(n.status == "pending" and n.cycle == "terms:2027-01" for n in by_address.values())
    (nobody,) = [n for n in found if n.channel == "none"]
    assert (nobody.status, nobody.last_error) == ("undeliverable", "no verified contact method on record")
    assert "going@example.com" not in by_address
    async with db.read() as conn:
        done = (await conn.execute(sa.select(announcements).where(announcements.c.announcement_id == row.announcement_id))).one()
    assert done.accounts_queued == len(people) and done.queued_at is not None
    # Asked again (the operator's command twice): the same announcement, nothing queued again.
    again = await made.announce("terms", "2027-01", starts_at=LATER, ends_at=None, message_en="", message_zh="", actor="ops")
    assert again.announcement_id == row.announcement_id
    assert await made.fan_out() == 0
    assert len(await queued(db)) == len(found)


async def test_an_interrupted_fan_out_goes_on_after_the_last_batch_and_queues_nothing_twice(own) -> None:
    db, settings = own
    await seed(db, [{"email": f"p{i}@example.com", "locale": "en"} for i in range(10)])
    made = Announcements(db, settings, SystemClock(), batch=3)
    await made.announce("maintenance", "db-upgrade", starts_at=LATER, ends_at=LATER + dt.timedelta(hours=2), message_en="", message_zh="",
                        actor="ops")
    assert await made._next_batch() == 3  # then the replica dies
    assert len(await queued(db, "maintenance")) == 3
    # Its cursor lost too (as if the batch committed but not the cursor's move): the notices
    # already queued are not queued again.
    async with db.unit_of_work() as uow:
        await uow.execute(sa.update(announcements).values(cursor=None, accounts_queued=0))
        await uow.commit()
    await made.fan_out()
    found = await queued(db, "maintenance")
    assert len(found) == 10 and len({n.account_id for n in found}) == 10
    assert found[0].subject.startswith("cumulo maintenance from")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"kind": "news"}, "kind"),
        ({"reference": ""}, "reference"),
        ({"reference": "x" * 65}, "reference"),
        ({"reference": "bad\nline"}, "reference"),
        ({"starts_at": None}, "starts_at"),
        ({"kind": "maintenance", "ends_at": None}, "ends_at"),
        ({"kind": "maintenance", "ends_at": LATER - dt.timedelta(hours=1)}, "ends_at"),
        ({"message_en": "x" * 1001}, "message_en"),
        ({"actor": " "}, "actor"),
    ],
)
async def test_a_bad_announcement_is_refused_naming_the_field(own, changes, field) -> None:
    db, settings = own
    made = Announcements(db, settings, SystemClock())
    wanted = {"kind": "terms", "reference": "2027-01", "starts_at": LATER, "ends_at": None, "message_en": "", "message_zh": "", "actor": "ops"}
    wanted.update(changes)
    kind, reference = wanted.pop("kind"), wanted.pop("reference")
    with pytest.raises(InvalidArgument) as refused:
        await made.announce(kind, reference, **wanted)
    assert refused.value.field == field
    async with db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(announcements))).scalar_one() == 0
