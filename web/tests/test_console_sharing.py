"""Sharing in a real browser: a link with a password opened in a second, signed-out browser
(the wrong password refused, the right one downloads equal bytes), revoked, then dead; a file
shared with a person appears under "shared with me" for them only; a report filed from the
link page opens a moderation case, and once a moderator blocks the file the link page says so."""

from __future__ import annotations

import hashlib
import pathlib

from playwright.async_api import Browser, Page, expect

from cumulo.moderation.v1 import moderation_pb2
from cumulo_devstack.testing.accounts import Person, new_moderator
from cumulo_devstack.testing.browser import console_context
from cumulo_devstack.testing.waiting import eventually

from .conftest import sign_in


async def _upload(person: Person, tmp_path: pathlib.Path, name: str, size: int = 300_000) -> bytes:
    content = hashlib.sha256(name.encode()).digest() * (size // 32)
    (tmp_path / name).write_bytes(content)
    await person.client.files.upload(tmp_path / name)
    return content


async def _make_link(page: Page, name: str, password: str = "") -> str:
    await page.get_by_role("button", name=f"Share {name}").click()
    if password:
        await page.get_by_label("Password for the link (optional)").fill(password)
    await page.get_by_role("button", name="Create link").click()
    address = await page.get_by_label("Link address").input_value()
    assert "/s/" in address
    return address


async def _stranger(browser: Browser, console: str) -> Page:
    return await (await console_context(browser, console)).new_page()


async def test_a_link_with_a_password_opens_signed_out_then_dies_when_revoked(
    page: Page, person: Person, browser: Browser, console: str, tmp_path: pathlib.Path
):
    content = await _upload(person, tmp_path, "beach.jpg")
    await sign_in(page, person)
    address = await _make_link(page, "beach.jpg", password="sand and sea 2026")

    stranger = await _stranger(browser, console)
    try:
        await stranger.goto(address)
        await expect(stranger.get_by_text("This link is protected by a password.")).to_be_visible()
        await stranger.get_by_label("Password").fill("not it")
        await stranger.get_by_role("button", name="Open").click()
        await expect(stranger.get_by_role("alert")).to_have_attribute("data-reason", "LINK_PASSWORD_WRONG")
        await stranger.get_by_label("Password").fill("sand and sea 2026")
        await stranger.get_by_role("button", name="Open").click()
        async with stranger.expect_download() as waiting:
            await stranger.get_by_role("button", name="Download").click()
        saved = tmp_path / "fetched.jpg"
        await (await waiting.value).save_as(saved)
        assert saved.read_bytes() == content
        assert await stranger.evaluate("localStorage.getItem('cumulo.session')") is None  # never signed in

        await page.get_by_role("link", name="Sharing").click()
        await page.get_by_role("button", name="Revoke beach.jpg").click()
        await expect(page.get_by_text("No links yet.")).to_be_visible()
        await stranger.reload()
        await expect(stranger.get_by_role("alert")).to_contain_text("does not work any more")
    finally:
        await stranger.context.close()


async def test_a_file_shared_with_a_person_is_theirs_to_download_and_nobody_elses(
    page: Page, person: Person, people, browser: Browser, console: str, tmp_path: pathlib.Path
):
    content = await _upload(person, tmp_path, "minutes.pdf")
    friend, someone_else = await people.new(), await people.new()
    await sign_in(page, person)
    await page.get_by_role("button", name="Share minutes.pdf").click()
    await page.get_by_label("E-mail or phone of the person").fill(friend.email)
    await page.get_by_role("button", name="Share with this person").click()
    await expect(page.get_by_text(f"Shared with {friend.email}.")).to_be_visible()

    for who, sees in ((friend, True), (someone_else, False)):
        other = await _stranger(browser, console)
        try:
            await sign_in(other, who)
            await other.get_by_role("link", name="Sharing").click()
            shared = other.get_by_role("button", name="minutes.pdf")
            if not sees:
                await expect(other.get_by_text("Nothing is shared with you yet.")).to_be_visible()
                await expect(shared).to_have_count(0)
                continue
            async with other.expect_download() as waiting:
                await shared.click()
            saved = tmp_path / "shared.pdf"
            await (await waiting.value).save_as(saved)
            assert saved.read_bytes() == content
        finally:
            await other.context.close()


async def test_a_report_from_the_link_page_reaches_moderation_and_a_block_shows_on_the_page(
    page: Page, person: Person, people, browser: Browser, console: str, tmp_path: pathlib.Path, auth
):
    await _upload(person, tmp_path, "film.mp4")
    await sign_in(page, person)
    address = await _make_link(page, "film.mp4")

    stranger = await _stranger(browser, console)
    try:
        await stranger.goto(address)
        await expect(stranger.get_by_role("button", name="Download")).to_be_visible()
        await stranger.get_by_role("button", name="Report this").click()
        await stranger.get_by_label("What is wrong").select_option(label="It infringes my copyright")
        await stranger.get_by_label("Tell us more").fill("our film, shared without a licence")
        await stranger.get_by_label("Your e-mail address (for our answer)").fill("rights@studio.example")
        await stranger.get_by_label("Rights holder", exact=True).fill("Studio Example Ltd")
        await stranger.get_by_label("The work that is copied").fill("Example Film (2025)")
        await stranger.get_by_label("I believe in good faith").check()
        await stranger.get_by_label("The information is accurate").check()
        await stranger.get_by_label("Your full name (signature)").fill("Jane Counsel")
        await stranger.get_by_role("button", name="Send the report").click()
        await expect(stranger.get_by_role("status")).to_contain_text("your report was received")

        moderator = await new_moderator(people, auth.target)

        async def case() -> moderation_pb2.CaseSummary | None:
            async for found in moderator.client.moderation.queue(moderation_pb2.CASE_STATE_OPEN):
                if found.account_id == person.account_id and found.category == moderation_pb2.CATEGORY_COPYRIGHT:
                    return found
            return None

        found = await eventually(case, timeout=20, what="the case of the report")
        await moderator.client.moderation.claim(found.case_id)
        await moderator.client.moderation.decide(found.case_id, "block", "the studio's film, no licence")
        await stranger.reload()
        await expect(stranger.get_by_role("alert")).to_contain_text("blocked after a complaint")
        await expect(stranger.get_by_role("button", name="Download")).to_have_count(0)
    finally:
        await stranger.context.close()


async def test_a_shared_folder_lists_its_files_for_a_stranger(
    page: Page, person: Person, browser: Browser, console: str, tmp_path: pathlib.Path
):
    folder = await person.client.files.mkdir("", "Trip")
    for name in ("day1.jpg", "day2.jpg"):
        (tmp_path / name).write_bytes(name.encode() * 5000)
        await person.client.files.upload(tmp_path / name, parent_id=folder.node_id)
    await sign_in(page, person)
    address = await _make_link(page, "Trip")
    stranger = await _stranger(browser, console)
    try:
        await stranger.goto(address)
        listing = stranger.get_by_role("table", name="Trip")
        await expect(listing.get_by_role("row")).to_have_count(2)
        async with stranger.expect_download() as waiting:
            await listing.get_by_role("button", name="Download day2.jpg").click()
        saved = tmp_path / "fetched-day2.jpg"
        await (await waiting.value).save_as(saved)
        assert saved.read_bytes() == (tmp_path / "day2.jpg").read_bytes()
    finally:
        await stranger.context.close()
