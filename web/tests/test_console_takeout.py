"""Take-out in a real browser: the owner asks for an export, watches it finish, downloads the
archive (its file inside, byte for byte); another person sees none of it."""

from __future__ import annotations

import pathlib
import tarfile

from playwright.async_api import Page, expect

from cumulo_devstack.testing.accounts import Person

from .conftest import sign_in


async def test_an_owner_exports_and_downloads_their_data(page: Page, person: Person, people, tmp_path: pathlib.Path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 a photo " * 1000)
    await person.client.files.upload(photo)

    await sign_in(page, person, "/takeout")
    await expect(page.get_by_text("No export yet.")).to_be_visible()
    await page.get_by_role("button", name="Export my data").click()
    await expect(page.get_by_role("status").filter(has_text="Ready:")).to_be_visible(timeout=60_000)
    archive = page.get_by_role("button", name="Download cumulo-takeout-")
    async with page.expect_download() as waiting:
        await archive.first.click()
    download = await waiting.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    with tarfile.open(saved) as tar:
        (member,) = [m for m in tar.getmembers() if m.name.endswith("/files/photo.jpg")]
        data = tar.extractfile(member)
        assert data is not None and data.read() == photo.read_bytes()
    # One at a time: asking again while none runs works; the button waits while one does.
    await expect(page.get_by_role("button", name="Export my data")).to_be_enabled()

    other = await people.new()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await sign_in(page, other, "/takeout")
    await expect(page.get_by_text("No export yet.")).to_be_visible()
