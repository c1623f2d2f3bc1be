"""Contacts in a real browser: an account with no verified contact is reminded on every page;
the code sent to the address verifies it (and the reminder goes); changing a contact wants the
password, and the new one starts unverified."""

from __future__ import annotations

import datetime as dt

from playwright.async_api import Page, expect

from cumulo_devstack.testing.accounts import PASSWORD, Person, code_sent_to
from cumulo_devstack.testing.browser import sign_in
from cumulo_devstack.testing.values import unique_email, unique_phone
from cumulo_sdk import Cumulo

REMINDER = "No contact of your account is verified"


async def test_the_reminder_shows_until_the_code_from_the_mail_verifies_the_address(page: Page, gateway: str, mail) -> None:
    email = unique_email()
    async with Cumulo(gateway) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
    await sign_in(page, email, PASSWORD)
    await expect(page.get_by_text(REMINDER)).to_be_visible()
    await page.get_by_role("link", name="Verify one now").click()
    await expect(page.get_by_text("not verified: no notice goes here yet")).to_be_visible()
    await page.get_by_role("button", name="Send a code").click()
    await expect(page.get_by_text(f"A code went to {email[0]}***@example.com.")).to_be_visible()
    # A wrong code is named on its field; the one from the mail verifies.
    code = await code_sent_to(mail, email)
    await page.get_by_label("Code").fill(f"{(int(code) + 1) % 10**6:06d}")
    await page.get_by_role("button", name="Verify", exact=True).click()
    await expect(page.locator("#email-code-error")).to_be_visible()
    await page.get_by_label("Code").fill(code)
    await page.get_by_role("button", name="Verify", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Verified: notices reach it from now on.")
    await expect(page.get_by_text("✓ verified")).to_be_visible()
    await expect(page.get_by_text(REMINDER)).to_be_hidden()
    await page.get_by_role("link", name="Files").click()
    await expect(page.get_by_text(REMINDER)).to_be_hidden()


async def test_changing_a_contact_wants_the_password_and_the_new_one_starts_unverified(page: Page, person: Person) -> None:
    await sign_in(page, person.email, PASSWORD, "/account")
    await expect(page.get_by_text("✓ verified")).to_be_visible()  # the person's address (people verify theirs)
    await expect(page.get_by_text(REMINDER)).to_be_hidden()
    phone = unique_phone()
    await page.get_by_label("Phone number").fill(phone)
    await page.get_by_label("Your password (to change a contact)").fill("not my password")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    assert not (await person.client.whoami()).account.phone
    await page.get_by_label("Your password (to change a contact)").fill(PASSWORD)
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Saved. A new contact gets notices once you verify it.")
    await expect(page.get_by_text(f"Phone number: {phone} not verified")).to_be_visible()
    mine = (await person.client.whoami()).account
    assert mine.phone == phone and not mine.phone_verified and mine.email_verified
