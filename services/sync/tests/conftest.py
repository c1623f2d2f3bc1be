"""Fixtures of the sync service's tests, against the session's real servers and services.

- `phone`, `laptop`: two devices of one new account, each its own client through the gateway.
- `stranger`: a device of another account.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from collections.abc import AsyncIterator

import pytest

from cumulo_devstack.testing import PASSWORD, unique_email
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore


@dataclasses.dataclass
class Device:
    client: Cumulo
    email: str
    account_id: str
    name: str


async def _login(gateway: str, folder: pathlib.Path, email: str, name: str) -> Device:
    folder.mkdir(parents=True, exist_ok=True)
    client = Cumulo(gateway, store=TokenStore(folder / "credentials.json"), pending_uploads=folder / "uploads.json")
    account = await client.login(email, PASSWORD, device_name=name)
    return Device(client, email, account.account_id, name)


async def _signup(gateway: str, folder: pathlib.Path) -> str:
    email = unique_email()
    folder.mkdir(parents=True, exist_ok=True)
    async with Cumulo(gateway, store=TokenStore(folder / "signup.json")) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    return email


@pytest.fixture
async def phone_and_laptop(gateway: str, sync, tmp_path: pathlib.Path) -> AsyncIterator[tuple[Device, Device]]:
    email = await _signup(gateway, tmp_path)
    phone = await _login(gateway, tmp_path / "phone", email, "phone")
    laptop = await _login(gateway, tmp_path / "laptop", email, "laptop")
    try:
        yield phone, laptop
    finally:
        await phone.client.close()
        await laptop.client.close()


@pytest.fixture
def phone(phone_and_laptop: tuple[Device, Device]) -> Device:
    return phone_and_laptop[0]


@pytest.fixture
def laptop(phone_and_laptop: tuple[Device, Device]) -> Device:
    return phone_and_laptop[1]


@pytest.fixture
async def stranger(gateway: str, sync, tmp_path: pathlib.Path) -> AsyncIterator[Device]:
    email = await _signup(gateway, tmp_path / "stranger-signup")
    device = await _login(gateway, tmp_path / "stranger", email, "stranger")
    try:
        yield device
    finally:
        await device.client.close()
