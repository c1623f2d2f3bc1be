"""The console's browser tests: Debian's Chromium driven by Playwright against the session's
gateway (which serves the built console, web/dist) and services. Each test has a browser
context of its own (no storage, cookies or session shared with another test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from cumulo_devstack.testing.accounts import PASSWORD, People, Person
from cumulo_devstack.testing.browser import chromium

# What a page may take to show what a test waits for (an upload hashes and sends megabytes).
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


@pytest.fixture
def console(gateway: str) -> str:
    return f"https://{gateway}"


@pytest.fixture
async def context(browser: Browser, console: str) -> AsyncIterator[BrowserContext]:
    # The development CA is not in Chromium's store: the tests accept the gateway's
    # certificate (TLS itself is tested in gateway/tests/test_tls.py).
    made = await browser.new_context(
        base_url=console, ignore_https_errors=True, locale="en-US", timezone_id="UTC", accept_downloads=True
    )
    made.set_default_timeout(20_000)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
async def person(people: People) -> Person:
    """An adult registered through the gateway (locale "en"), with an SDK session of its own
    (their phone, say); the browser signs in separately."""
    return await people.new("phone")


async def sign_in(page: Page, person: Person, path: str = "/files") -> None:
    await page.goto(path)
    await page.get_by_label("E-mail").fill(person.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_have_count(0)
    await page.wait_for_url(f"**{path}")
