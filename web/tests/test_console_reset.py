"""A forgotten password in a real browser: from the sign-in page, a code to the verified
address, a new password, every session of the account signed out, and the new password signs
in. A wrong code is named on its field; an address with no account is answered alike."""

from __future__ import annotations

import grpc
import pytest
from playwright.async_api import Page, expect

from cumulo_devstack.testing.accounts import PASSWORD, RESET_SUBJECTS, Person, code_sent_to
from cumulo_devstack.testing.browser import sign_in
from cumulo_devstack.testing.values import unique_email
from cumulo_sdk.errors import CumuloRpcError

NEW = "a fresh passphrase from the console"


async def test_a_forgotten_password_is_set_anew_from_the_sign_in_page(page: Page, person: Person, mail) -> None:
    await page.goto("/signin")
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_label("E-mail or phone number").fill(person.email)
    await page.get_by_role("button", name="Send a code").click()
    await expect(page.get_by_role("status")).to_contain_text(f"If {person.email} is a verified contact")
    code = await code_sent_to(mail, person.email, subjects=RESET_SUBJECTS)
    await page.get_by_label("Code").fill(f"{(int(code) + 1) % 10**8:08d}")
    await page.get_by_label("New password").fill(NEW)
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.locator("#code-error")).to_be_visible()
    await page.get_by_label("Code").fill(code)
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.get_by_role("status")).to_contain_text("Your password is set")
    with pytest.raises(CumuloRpcError) as ended:  # the phone's session has ended
        await person.client.whoami()
    assert ended.value.code == grpc.StatusCode.UNAUTHENTICATED
    await sign_in(page, person.email, NEW)
    await expect(page.get_by_role("heading", name="My files")).to_be_visible()


async def test_an_address_with_no_account_is_answered_alike(page: Page) -> None:
    nobody = unique_email()
    await page.goto("/reset")
    await page.get_by_label("E-mail or phone number").fill(nobody)
    await page.get_by_role("button", name="Send a code").click()
    await expect(page.get_by_role("status")).to_contain_text(f"If {nobody} is a verified contact")
    await page.get_by_label("Code").fill("12345678")
    await page.get_by_label("New password").fill(PASSWORD + " again")
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.locator("#code-error")).to_be_visible()
