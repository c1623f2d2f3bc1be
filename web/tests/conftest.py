"""The console's browser tests: Debian's Chromium driven by Playwright against the session's
gateway (which serves the built console, web/dist) and services. Each test has a browser
context of its own (no storage, cookies or session shared with another test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from cumulo_devstack.testing.accounts import PASSWORD, People, Person
from cumulo_devstack.testing.browser import chromium, console_context
from cumulo_devstack.testing.browser import sign_in as signing_in

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
    made = await console_context(browser, console)
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
    await signing_in(page, person.email, PASSWORD, path)
