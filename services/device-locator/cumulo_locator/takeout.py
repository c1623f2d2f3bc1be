"""The locator's part of a take-out: the account's devices, each device's location history,
and the commands sent to them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import sqlalchemy as sa

from cumulo_locator.adapters.tables import commands, devices, locations
from cumulo_platform.db import Database
from cumulo_platform.evidence import paged
from cumulo_platform.takeout import Part, exported_columns


class LocatorTakeout:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def parts(self, account: uuid.UUID) -> AsyncIterator[Part]:
        mine = devices.c.account_id == account
        yield "devices/devices.jsonl", paged(self.db, sa.select(*exported_columns(devices)).where(mine), [devices.c.device_key], kind="device")
        history = sa.select(*exported_columns(locations, leave_out=("account_id",))).where(locations.c.account_id == account)
        yield "devices/locations.jsonl", paged(self.db, history, [locations.c.device_key, locations.c.measured_at], kind="location")
        sent = sa.select(*exported_columns(commands)).where(commands.c.account_id == account)
        yield "devices/commands.jsonl", paged(self.db, sent, [commands.c.command_id], kind="command")
