"""A real browser for the console's tests: Debian's Chromium (`make browser` installs it;
Playwright cannot download one here) driven by Playwright, headless, with a fresh profile."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import tempfile
from collections.abc import AsyncIterator

from playwright.async_api import Browser, async_playwright

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
