"""The account page and the trash in a real browser: another session ended from here is refused
at once, a password change wants the current one, cancelling wants the typed phrase and the
password and then signs out for good; the trash restores and empties."""

from __future__ import annotations

import pathlib

import grpc
import pytest
from playwright.async_api import Page, expect

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing.accounts import PASSWORD, Person
from cumulo_devstack.testing.values import unique_email
from cumulo_sdk.errors import CumuloRpcError

from .conftest import sign_in


async def test_a_session_ended_from_the_console_is_refused_at_once(page: Page, person: Person):
    await sign_in(page, person)
    await page.get_by_role("link", name="Account").click()
    await expect(page.get_by_text(f"Signed in as {person.email}")).to_be_visible()
    await expect(page.get_by_text("(this browser)")).to_be_visible()
    await expect(page.get_by_text("The free storage (no plan bought).")).to_be_visible()
    plans = await person.client.call(person.client.files.stub.ListPlans, blob_pb2.ListPlansRequest())
    assert plans.plans
    for plan in plans.plans:  # the plans on offer, with their prices
        await expect(page.locator(".plans")).to_contain_text(plan.name)
    await page.get_by_role("button", name="Sign out there phone").click()
    await expect(page.get_by_role("status")).to_have_text("That session has ended.")
    with pytest.raises(CumuloRpcError) as refused:
        await person.client.whoami()
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


async def test_a_password_change_wants_the_current_one(page: Page, person: Person, people):
    await sign_in(page, person)
    await page.goto("/account")
    await page.get_by_label("Current password").fill("not my password")
    await page.get_by_label("New password").fill("a much longer passphrase 2027")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password").fill("a much longer passphrase 2027")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("status")).to_contain_text("Your password was changed")
    again = await people.login(person.email, password="a much longer passphrase 2027")
    assert again.account_id == person.account_id


async def test_cancelling_wants_the_phrase_and_the_password_then_signs_out_for_good(page: Page, person: Person, people):
    await sign_in(page, person)
    await page.goto("/account")
    await page.get_by_role("button", name="Cancel my account").click()
    await expect(page.get_by_text("deletes all of its cloud content for good")).to_be_visible()
    confirm = page.get_by_role("button", name="Cancel the account and delete its data")
    await expect(confirm).to_be_disabled()
    await page.get_by_label("Type").fill("delete my account")
    await page.get_by_label("Password", exact=True).fill("wrong password here")
    await confirm.click()
    await expect(page.get_by_role("alert")).to_be_visible()
    assert (await person.client.whoami()).account.account_id == person.account_id  # nothing happened
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await confirm.click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    with pytest.raises(CumuloRpcError):
        await people.login(person.email)


async def test_the_trash_restores_and_empties(page: Page, person: Person, tmp_path: pathlib.Path):
    for name in ("keep.txt", "gone.txt"):
        (tmp_path / name).write_text(name * 100)
        await person.client.files.upload(tmp_path / name)
    await sign_in(page, person)
    for name in ("keep.txt", "gone.txt"):
        await page.get_by_role("button", name=f"Move to trash {name}").click()
        await expect(page.get_by_role("row").filter(has_text=name)).to_have_count(0)
    await page.get_by_role("link", name="Trash").click()
    await page.get_by_role("button", name="Restore keep.txt").click()
    await expect(page.get_by_role("button", name="Restore keep.txt")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Empty trash").click()
    await expect(page.get_by_text("The trash is empty.")).to_be_visible()
    await page.get_by_role("link", name="Files").click()
    await expect(page.get_by_role("row").filter(has_text="keep.txt")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="gone.txt")).to_have_count(0)


async def test_a_guardian_creates_a_childs_account_that_can_sign_in(page: Page, person: Person, people):
    child = unique_email()
    await sign_in(page, person, "/account")
    await page.get_by_label("The child's e-mail").fill(child)
    await page.get_by_label("The child's password").fill("a child's long passphrase 2026")
    await page.get_by_label("Date of birth").fill("2016-03-01")
    await page.get_by_role("button", name="Create the child's account").click()
    await expect(page.get_by_role("status")).to_have_count(0)  # no consent given: not sent
    await page.get_by_label("I am the child's parent or guardian").check()
    await page.get_by_role("button", name="Create the child's account").click()
    await expect(page.get_by_role("status")).to_contain_text(f"The account {child} is ready")
    signed_in = await people.login(child, password="a child's long passphrase 2026")
    account = (await signed_in.client.whoami()).account
    assert account.minor and account.guardian_account_id == person.account_id


async def test_signing_in_by_keyboard_alone(page: Page, person: Person):
    await page.goto("/signin")
    await page.keyboard.press("Tab")  # the skip link comes first
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.get_by_label("E-mail").focus()
    await page.keyboard.type(person.email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="My files")).to_be_visible()
