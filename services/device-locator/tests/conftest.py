"""Fixtures of the locator's tests, against the session's real servers and services.

- `owner`: a new account logged in twice: `owner.client` (the owner's app) and
  `owner.phone` (the device, its own session), with `owner.device_id` registered.
- `stranger`: another account, logged in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo_devstack.testing import PASSWORD, Person, unique_email
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore
from cumulo_sdk.devices import DeviceAgent


@dataclasses.dataclass
class Owner:
    client: Cumulo
    phone: Cumulo
    agent: DeviceAgent
    email: str
    account_id: str
    device_id: str


def point(latitude: float = 31.2304, longitude: float = 121.4737, *, ago: dt.timedelta = dt.timedelta(0), at: dt.datetime | None = None,
          **values: Any) -> pb.Location:
    """A GPS fix measured `ago` before now (or `at`); `values` set or override the other fields."""
    fields: dict[str, Any] = {"accuracy": 12.0, "battery": 80, "source": pb.LOCATION_SOURCE_GPS}
    fields.update(values)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at or dt.datetime.now(dt.UTC) - ago)
    return pb.Location(latitude=latitude, longitude=longitude, measured_at=stamp, **fields)


def agent(person: Person) -> DeviceAgent:
    """The device side of the locator, as one of `people`'s sessions."""
    return DeviceAgent(person.client)


async def signup(gateway: str, folder: pathlib.Path) -> str:
    email = unique_email()
    folder.mkdir(parents=True, exist_ok=True)
    async with Cumulo(gateway, store=TokenStore(folder / "signup.json")) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    return email


async def login(gateway: str, folder: pathlib.Path, email: str, name: str) -> Cumulo:
    folder.mkdir(parents=True, exist_ok=True)
    client = Cumulo(gateway, store=TokenStore(folder / "credentials.json"))
    await client.login(email, PASSWORD, device_name=name)
    return client


@pytest.fixture
async def owner(gateway: str, locator, tmp_path: pathlib.Path) -> AsyncIterator[Owner]:
    email = await signup(gateway, tmp_path)
    app = await login(gateway, tmp_path / "app", email, "laptop")
    phone = await login(gateway, tmp_path / "phone", email, "phone")
    agent = DeviceAgent(phone)
    device_id = f"phone-{uuid.uuid4().hex[:6]}"
    await agent.register(device_id, name="Ann's phone", model="Pixel", platform="android")
    try:
        yield Owner(app, phone, agent, email, phone.store.tokens.account_id, device_id)
    finally:
        await app.close()
        await phone.close()


@pytest.fixture
async def stranger(gateway: str, locator, tmp_path: pathlib.Path) -> AsyncIterator[Cumulo]:
    email = await signup(gateway, tmp_path / "stranger-signup")
    client = await login(gateway, tmp_path / "stranger", email, "stranger")
    try:
        yield client
    finally:
        await client.close()
