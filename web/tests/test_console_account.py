"""Signing up, in and out in a real browser: the whole way through the gateway to auth, a
minor sent to the guardian flow, a wrong password told as such, and every tab of the browser
signed out together."""

from __future__ import annotations

from playwright.async_api import BrowserContext, Page, expect

from cumulo_devstack.testing.accounts import PASSWORD, Person
from cumulo_devstack.testing.browser import console_context
from cumulo_devstack.testing.values import unique_email

from .conftest import sign_in


async def _sign_up(page: Page, email: str, birth: str) -> None:
    await page.goto("/signup")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Date of birth").fill(birth)
    await page.get_by_label("I accept the terms of service").check()
    await page.get_by_role("button", name="Create account").click()


async def test_sign_up_then_sign_in_then_sign_out(page: Page):
    email = unique_email()
    await _sign_up(page, email, "1990-05-17")
    await expect(page.get_by_role("status")).to_have_text("Your account is ready. Sign in to start.")
    assert page.url.endswith("/signin?created=1")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My files")).to_be_visible()
    assert page.url.endswith("/files")
    await expect(page.get_by_text("Nothing here yet.")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('cumulo.session')") is None
    # Signed out means out: the files page asks for a sign-in again.
    await page.goto("/files")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_a_minor_is_shown_the_guardian_flow_and_no_account_is_made(page: Page):
    email = unique_email()
    await _sign_up(page, email, "2016-03-01")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("parent or guardian")
    assert await alert.get_attribute("data-reason") == "GUARDIAN_REQUIRED"
    assert page.url.endswith("/signup")


async def test_a_taken_address_and_a_bad_field_are_named(page: Page, person: Person):
    await _sign_up(page, person.email, "1990-05-17")
    await expect(page.get_by_role("alert")).to_have_attribute("data-reason", "ACCOUNT_EXISTS")
    await _sign_up(page, "not an address", "1990-05-17")
    await expect(page.locator("#email-error")).to_be_visible()


async def test_a_wrong_password_is_refused_and_the_right_one_still_works(page: Page, person: Person):
    await page.goto("/signin")
    await page.get_by_label("E-mail").fill(person.email)
    await page.get_by_label("Password").fill("not the password at all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_attribute("data-reason", "INVALID_CREDENTIALS")
    assert await page.evaluate("localStorage.getItem('cumulo.session')") is None
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My files")).to_be_visible()


async def test_every_tab_signs_out_together(context: BrowserContext, person: Person):
    first = await context.new_page()
    await sign_in(first, person)
    second = await context.new_page()
    await second.goto("/files")
    await expect(second.get_by_role("heading", name="My files")).to_be_visible()  # one session for the browser
    await first.get_by_role("button", name="Sign out").click()
    await expect(second.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_a_session_ended_elsewhere_signs_the_console_out(page: Page, person: Person):
    await sign_in(page, person)
    stored = await page.evaluate("JSON.parse(localStorage.getItem('cumulo.session'))")
    # The session is revoked from the person's phone.
    await person.client.revoke_session(stored["sessionId"])
    # The next refresh of the console's token is refused: it signs out rather than retrying.
    await page.evaluate("(() => { const s = JSON.parse(localStorage.getItem('cumulo.session')); s.accessExpires = 0;"
                        " localStorage.setItem('cumulo.session', JSON.stringify(s)); })()")
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_the_console_follows_the_browser_language_and_can_switch(browser, console: str):
    chinese = await console_context(browser, console, locale="zh-CN")
    try:
        page = await chinese.new_page()
        await page.goto("/signin")
        await expect(page.get_by_role("heading", name="登录")).to_be_visible()
        assert await page.evaluate("document.documentElement.lang") == "zh-CN"
        await page.get_by_label("语言").select_option("en")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        await chinese.close()
