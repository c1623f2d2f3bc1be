"""A real browser for the console's tests and benchmarks: Debian's Chromium (`make browser`
installs it; Playwright cannot download one here) driven by Playwright, headless, with a fresh
profile; a fresh context for the console, and signing in the way a person does."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

CHROMIUM = pathlib.Path("/usr/bin/chromium")
# No sandbox (tests run as root in containers), no GPU, and none of Chromium's own traffic to
# Google's hosts, which this machine's closed network refuses.
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():  # noqa: ASYNC240 - once, before anything starts
        raise RuntimeError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium (the browser tests need it)")
    profile = tempfile.mkdtemp(prefix="cumulo-chromium-")
    try:
        async with async_playwright() as playwright:
            # A persistent context is the only way to give Chromium a user-data dir; the tests
            # use fresh contexts of a plain launch instead, and the profile folder holds its crash
            # reports and caches.
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=[*FLAGS, f"--crash-dumps-dir={profile}"]
            )
            try:
                yield browser
            finally:
                await browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def console_context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    """A context of its own (no storage, cookies or session shared) for the console at
    `base_url`: English, UTC, downloads allowed, unless `options` say otherwise. The development
    CA is not in Chromium's store, so the gateway's certificate is accepted (TLS itself is tested
    in gateway/tests/test_tls.py)."""
    settings: dict[str, Any] = {"ignore_https_errors": True, "locale": "en-US", "timezone_id": "UTC", "accept_downloads": True}
    context = await browser.new_context(base_url=base_url, **{**settings, **options})
    context.set_default_timeout(20_000)
    return context


async def sign_in(page: Page, email: str, password: str, path: str = "/files") -> None:
    """The sign-in form at `path` (a page that needs an account shows it), filled and sent;
    back at `path`, signed in."""
    await page.goto(path)
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_have_count(0)
    await page.wait_for_url(f"**{path}")
