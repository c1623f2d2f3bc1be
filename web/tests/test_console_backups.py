"""Sync and backups in a real browser: a phone's backup (made by the SDK, as the phone does)
shows with its device, date, file count and size, and synced zones with their record counts;
another person sees none of it."""

from __future__ import annotations

import pathlib

from playwright.async_api import Page, expect

from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.testing.accounts import Person

from .conftest import sign_in


async def test_backups_and_synced_data_show_to_their_owner_only(page: Page, person: Person, people, tmp_path: pathlib.Path):
    phone = tmp_path / "phone"
    phone.mkdir()
    for name, size in (("IMG_1.jpg", 20_000), ("IMG_2.jpg", 30_000), ("notes.txt", 500)):
        (phone / name).write_bytes(name.encode() * (size // len(name)))
    await person.client.backups.create(phone, device_id="phone-1", device_name="Ann's phone")
    await person.client.sync.push("contacts", [sync_pb2.RecordSave(record_id=f"c{i}", record_type="contact", payload=b"{}") for i in range(3)])

    await sign_in(page, person, "/backups")
    row = page.get_by_role("row").filter(has_text="Ann's phone")
    await expect(row).to_contain_text("3")
    await expect(page.get_by_text("contacts · 3 record(s)")).to_be_visible()
    await expect(page.get_by_text("cumulo backup restore BACKUP_ID FOLDER")).to_be_visible()

    other = await people.new()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await sign_in(page, other, "/backups")
    await expect(page.get_by_text("No device has been backed up yet.")).to_be_visible()
    await expect(page.get_by_text("Nothing is synced yet.")).to_be_visible()
