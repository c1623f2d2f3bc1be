"""The console's main pages, as a person sees them, on a desktop and a phone-sized screen: each
renders its content with nothing cut off sideways. `make screenshots` keeps the pictures in
docs/screenshots/ (the README shows them); otherwise they go to the test's scratch folder."""

from __future__ import annotations

import os
import pathlib

import pytest
from playwright.async_api import Browser, Page, expect

from cumulo_devstack.testing.accounts import Person
from cumulo_devstack.testing.browser import console_context

from .conftest import sign_in
from .test_console_devices import _phone

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def shots(tmp_path: pathlib.Path) -> pathlib.Path:
    return DOCS if os.environ.get("CUMULO_SCREENSHOTS") == "1" else tmp_path


async def _take(page: Page, folder: pathlib.Path, name: str) -> None:
    # Nothing wider than the screen: a phone never scrolls sideways.
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    wide = await page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)"
        ".map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40))"
    )
    assert overflow <= 0, f"{name}: {overflow}px wider than the screen: {wide[:5]}"
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000


@pytest.mark.parametrize("size", sorted(SIZES))
async def test_the_main_pages(browser: Browser, console: str, person: Person, shots: pathlib.Path, tmp_path: pathlib.Path, size: str):
    context = await console_context(browser, console, viewport=SIZES[size], device_scale_factor=1)
    try:
        page = await context.new_page()
        await page.goto("/signin")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await _take(page, shots, f"signin-{size}")

        await person.client.files.mkdir("", "Holidays 2026")
        for name, size_bytes in (("beach.jpg", 2_400_000), ("notes.txt", 1_200), ("tax-return.pdf", 380_000)):
            (tmp_path / name).write_bytes(os.urandom(size_bytes))
            await person.client.files.upload(tmp_path / name)
        await _phone(person)
        await sign_in(page, person)
        await expect(page.get_by_role("row").filter(has_text="tax-return.pdf")).to_be_visible()
        await _take(page, shots, f"files-{size}")

        await page.get_by_role("button", name="Share beach.jpg").click()
        await page.get_by_role("button", name="Create link").click()
        address = await page.get_by_label("Link address").input_value()
        await _take(page, shots, f"share-{size}")

        await page.goto("/devices")
        await expect(page.get_by_role("img", name="The last day's track: 3 positions")).to_be_visible()
        await _take(page, shots, f"devices-{size}")

        await page.goto("/account")
        await expect(page.get_by_text(f"Signed in as {person.email}")).to_be_visible()
        await _take(page, shots, f"account-{size}")

        stranger = await console_context(browser, console, viewport=SIZES[size], device_scale_factor=1)
        try:
            link_page = await stranger.new_page()
            await link_page.goto(address)
            await expect(link_page.get_by_role("button", name="Download")).to_be_visible()
            await _take(link_page, shots, f"link-{size}")
        finally:
            await stranger.close()
    finally:
        await context.close()
