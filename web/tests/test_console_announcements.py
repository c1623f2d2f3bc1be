"""The operator's announcements on the console: a maintenance window shows on the sign-in page
(no account needed) and on every page once signed in, in the reader's language; once over, it
is gone."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from playwright.async_api import Page, expect

from cumulo_devstack.testing.accounts import Person
from cumulo_lifecycle.adapters.tables import announcements

from .conftest import sign_in


async def test_a_maintenance_window_shows_to_everyone_until_it_is_over(page: Page, console: str, person: Person, lifecycle):
    now = dt.datetime.now(dt.UTC)
    announcement_id = uuid.uuid4()
    # Straight into the lifecycle's table, already queued: the fan-out to the session's
    # accounts is tested on its own (services/lifecycle/tests/test_announcements.py).
    async with lifecycle.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(announcements).values(
                announcement_id=announcement_id, kind="maintenance", reference=f"console-{announcement_id.hex[:8]}",
                starts_at=now + dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=3), message_en="The database moves.",
                message_zh="数据库迁移。", actor="test", created_at=now, queued_at=now,
            )
        )
        await uow.commit()
    try:
        await page.goto(f"{console}/signin")
        banner = page.get_by_role("list", name="Announcements")
        await expect(banner).to_contain_text("Maintenance from")
        await expect(banner).to_contain_text("The database moves.")
        await sign_in(page, person, "/files")
        await expect(page.get_by_role("list", name="Announcements")).to_contain_text("The database moves.")
        await page.get_by_label("Language").select_option("zh-CN")
        await page.reload()
        await expect(page.get_by_role("list", name="公告")).to_contain_text("数据库迁移。")
        await page.get_by_label("语言").select_option("en")
    finally:
        async with lifecycle.app.db.unit_of_work() as uow:
            await uow.execute(sa.delete(announcements).where(announcements.c.announcement_id == announcement_id))
            await uow.commit()
    await page.reload()
    await expect(page.get_by_role("heading", name="Files")).to_be_visible()
    await expect(page.get_by_role("list", name="Announcements")).to_have_count(0)
