"""Two-step sign-in in a real browser: turned on from the account page with the password, a QR
code and the app's code (computed here with pyotp on auth's clock), recovery codes shown once;
the next sign-in asks for a code, and a wrong one is named."""

from __future__ import annotations

import datetime as dt

import pyotp
from playwright.async_api import Page, expect

from cumulo_devstack.testing.accounts import PASSWORD, Person
from cumulo_devstack.testing.browser import console_context

from .conftest import sign_in


async def test_two_step_sign_in_is_turned_on_and_asked_at_the_next_sign_in(page: Page, person: Person, clock, browser, console) -> None:
    await sign_in(page, person, "/account")
    await expect(page.get_by_text("Off: your password alone signs in.")).to_be_visible()
    await page.get_by_label("Your password (for two-step sign-in)").fill(PASSWORD)
    await page.get_by_role("button", name="Turn on two-step sign-in").click()
    await expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = (await page.locator("form code").inner_text()).strip()
    await page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).at(clock.now()))
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_text("Two-step sign-in is on.")).to_be_visible()
    await expect(page.locator(".recovery-codes li")).to_have_count(10)
    assert (await person.client.whoami()).account.two_step

    # Another browser signs in.
    other = await console_context(browser, console)
    page = await other.new_page()
    await page.goto("/files")
    await page.get_by_label("E-mail").fill(person.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    code = page.get_by_label("Code from your authenticator app (or a recovery code)")
    await expect(code).to_be_visible()
    await code.fill("000000" if pyotp.TOTP(secret).at(clock.now() + dt.timedelta(seconds=30)) != "000000" else "111111")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#second-error")).to_be_visible()
    clock.advance(dt.timedelta(seconds=30))  # the next step's code (the one confirmed is spent)
    await code.fill(pyotp.TOTP(secret).at(clock.now()))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My files")).to_be_visible()
    await other.close()
