"""The new-session notice's link in a real browser: no sign-in, one click ends that session;
the owner's other sessions go on."""

from __future__ import annotations

import re

import grpc
from playwright.async_api import Page, expect

from cumulo_devstack.testing import eventually, expect_error, lifecycle_has_contact


async def test_the_notice_link_ends_that_session(page: Page, console: str, people, mail, lifecycle):
    owner = await people.new("first phone")
    await lifecycle_has_contact(lifecycle, owner.email)
    intruder = await people.login(owner.email, "unknown tablet")

    async def link() -> str:
        for message in mail.messages():
            text = message.get_content() if message["To"] == owner.email else ""
            if "unknown tablet (cumulo-cli)" in text:
                found = re.search(r"https://\S+/revoke-session\?token=\S+?(?=[ )（]|$)", text)
                if found:
                    return found.group(0)
        return ""

    url = await eventually(link, timeout=30, what="the sign-in notice's link")
    await page.goto(console + url[url.index("/revoke-session"):])
    await page.get_by_role("button", name="End that session").click()
    await expect(page.get_by_role("status")).to_contain_text("The session on unknown tablet")
    await expect_error(intruder.client.whoami(), grpc.StatusCode.UNAUTHENTICATED)
    assert (await owner.client.whoami()).account.email == owner.email
