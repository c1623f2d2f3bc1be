"""The freeze notice's link, as a person follows it: a real notice mail from the lifecycle,
its link opened in a browser with no session, the account's state and exact deletion time
shown, one click keeps the account. Links that are no link's, or already used, say so."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from cumulo_devstack.testing.accounts import Person
from cumulo_devstack.testing.aging import Ages
from cumulo_devstack.testing.waiting import eventually


async def test_the_freeze_notices_link_shows_the_deletion_time_and_keeps_the_account(
    page: Page, person: Person, lifecycle, auth, blob, infra, mail, console: str
):
    ages = Ages(lifecycle, (auth, blob), infra.nats.url)
    row = await ages.freeze(person.account_id)

    async def notice():
        found = [m for m in mail.messages() if m["To"] == person.email and "frozen" in m["Subject"].lower()]
        return found[-1] if found else None

    message = await eventually(notice, timeout=30, what="the freeze notice")
    link = re.search(r"https://\S+/reactivate\?token=[A-Za-z0-9_-]+", message.get_content())
    assert link, message.get_content()
    assert link.group(0).startswith(f"{console}/reactivate?token=")  # the lifecycle points at the console

    await page.goto(link.group(0))
    frozen = page.get_by_text("Your account is frozen because it was not used.")
    await expect(frozen).to_be_visible()
    # The exact deletion time, to the minute, in the person's time zone (the browser's: UTC here).
    minute = row.delete_at.strftime("%-I:%M")
    await expect(frozen).to_contain_text(minute)
    await expect(frozen).to_contain_text(str(row.delete_at.year))

    await page.get_by_role("button", name="Keep my account").click()
    await expect(page.get_by_role("status")).to_contain_text("your account is active again")
    state = await lifecycle.app.cases.reports.state_of(person.account_id)
    assert state.state == "active"

    # The link has done its work: opened again it says so, and nothing changes.
    await page.reload()
    await expect(page.get_by_role("alert")).to_contain_text("This link is not valid")


async def test_a_link_that_is_no_links_is_refused_without_a_hint(page: Page):
    for token in ("nothing-at-all-0123456789", "", "x" * 500):
        await page.goto(f"/reactivate?token={token}")
        await expect(page.get_by_role("alert")).to_contain_text("This link is not valid")
        await expect(page.get_by_role("button", name="Keep my account")).to_have_count(0)
