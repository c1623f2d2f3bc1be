"""Files in a real browser: an upload cut off after its first part resumes after a page reload
from where it stopped (the parts already kept are not sent again), the download (a signed URL,
a plain link) gives back equal bytes, and folders, rename and trash work; another person's
folder is not reachable by its address."""

from __future__ import annotations

import hashlib
import os
import pathlib
import re

from playwright.async_api import Page, Request, Route, expect

from cumulo_devstack.testing.accounts import Person
from cumulo_devstack.testing.values import png

from .conftest import sign_in

MIB = 1024 * 1024
PART = 8 * MIB  # blob's part size in the session (the default)
PUT_PART = "**/cumulo.blob.v1.BlobService/PutUploadPart"


async def test_an_upload_resumes_after_a_reload_and_downloads_equal(page: Page, person: Person, tmp_path: pathlib.Path):
    content = os.urandom(2 * PART + 12345)  # three parts
    source = tmp_path / "holiday.bin"
    source.write_bytes(content)
    await sign_in(page, person)

    sent: list[str] = []

    async def cut_after_the_first(route: Route, request: Request) -> None:
        sent.append(request.url)
        if len(sent) == 1:
            await route.continue_()
        else:
            await route.abort("connectionreset")  # the network drops under the second part

    await page.route(PUT_PART, cut_after_the_first)
    await page.get_by_test_id("upload-input").set_input_files(str(source))
    await expect(page.locator(".transfers .alert")).to_be_visible()
    assert len(sent) == 2

    # A reload: the console remembers the upload and asks for the file again.
    await page.unroute(PUT_PART)
    await page.reload()
    await expect(page.get_by_text("holiday.bin: paused at")).to_be_visible()
    after: list[str] = []

    async def count(route: Route, request: Request) -> None:
        after.append(request.url)
        await route.continue_()

    await page.route(PUT_PART, count)
    await page.get_by_test_id("upload-input").set_input_files(str(source))
    row = page.get_by_role("row").filter(has_text="holiday.bin")
    await expect(row).to_be_visible(timeout=60_000)
    assert len(after) == 2  # the two parts the first attempt did not land; the first is kept

    async with page.expect_download() as waiting:
        await row.get_by_role("button", name="Download holiday.bin").click()
    download = await waiting.value
    saved = tmp_path / "back.bin"
    await download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(content).digest()
    assert download.suggested_filename == "holiday.bin"


async def test_folders_rename_and_trash(page: Page, person: Person, tmp_path: pathlib.Path):
    await sign_in(page, person)
    await page.get_by_role("button", name="New folder").click()
    await page.get_by_label("Folder name").fill("Photos 2026")
    await page.get_by_role("button", name="Create").click()
    await page.get_by_role("link", name="Photos 2026").click()
    await expect(page.get_by_role("heading", name="Photos 2026")).to_be_visible()
    files = []
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(os.urandom(1000))
        files.append(str(tmp_path / name))
    await page.get_by_test_id("upload-input").set_input_files(files)  # many at once
    await expect(page.get_by_role("row").filter(has_text="b.jpg")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="a.jpg")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept("c.jpg"))
    await page.get_by_role("button", name="Rename a.jpg").click()
    await expect(page.get_by_role("row").filter(has_text="c.jpg")).to_be_visible()
    await page.get_by_role("button", name="Move to trash b.jpg").click()
    await expect(page.get_by_role("row").filter(has_text="b.jpg")).to_have_count(0)
    await page.get_by_role("link", name="My files").first.click()
    await expect(page.get_by_role("link", name="Photos 2026")).to_be_visible()


async def test_another_persons_folder_is_not_reachable_by_its_address(page: Page, person: Person, people):
    other = await people.new()
    folder = await other.client.files.mkdir("", "private")
    await sign_in(page, person)
    await page.goto(f"/files/{folder.node_id}")
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_text("private")).to_have_count(0)


async def test_photos_show_small_thumbnails_and_other_files_none(page: Page, person: Person, tmp_path: pathlib.Path):
    (tmp_path / "sunset.png").write_bytes(png(400, 300))
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 not a photo" * 100)
    await person.client.files.upload(tmp_path / "sunset.png", content_type="image/png")
    await person.client.files.upload(tmp_path / "report.pdf")
    await sign_in(page, person)
    photo = page.get_by_role("row").filter(has_text="sunset.png").locator(".thumb img")
    await expect(photo).to_have_attribute("src", re.compile(r"^blob:"))
    assert await photo.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [96, 96]  # small, whatever the photo's size
    await expect(page.get_by_role("row").filter(has_text="report.pdf").locator(".thumb")).to_have_count(0)


async def test_moving_into_a_folder_and_back_out(page: Page, person: Person, tmp_path: pathlib.Path):
    await person.client.files.mkdir("", "Archive")
    (tmp_path / "old.txt").write_text("old news " * 50)
    await person.client.files.upload(tmp_path / "old.txt")
    await sign_in(page, person)
    await page.get_by_role("button", name="Move old.txt").click()
    await page.get_by_label("Move to", exact=True).select_option(label="Archive/")
    await page.get_by_role("button", name="Move", exact=True).click()
    await expect(page.get_by_role("row").filter(has_text="old.txt")).to_have_count(0)
    await page.get_by_role("link", name="Archive").click()
    await page.get_by_role("button", name="Move old.txt").click()
    await page.get_by_label("Move to", exact=True).select_option(label="My files")
    await page.get_by_role("button", name="Move", exact=True).click()
    await expect(page.get_by_role("row").filter(has_text="old.txt")).to_have_count(0)
    await page.get_by_role("link", name="My files").first.click()
    await expect(page.get_by_role("row").filter(has_text="old.txt")).to_be_visible()


async def test_a_photo_name_on_bytes_that_are_no_photo_leaves_no_empty_thumbnail(page: Page, person: Person, tmp_path: pathlib.Path):
    (tmp_path / "broken.jpg").write_bytes(os.urandom(20_000))
    (tmp_path / "real.png").write_bytes(png(64, 64))
    await person.client.files.upload(tmp_path / "broken.jpg")
    await person.client.files.upload(tmp_path / "real.png")
    await sign_in(page, person)
    await expect(page.get_by_role("row").filter(has_text="real.png").locator(".thumb img")).to_be_attached()
    await expect(page.get_by_role("row").filter(has_text="broken.jpg").locator(".thumb")).to_have_count(0)
