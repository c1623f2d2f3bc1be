"""Commands to a device: durable, queued → delivered → succeeded | failed, or expired after
their time to live. Delivery is at least once (a command not acknowledged is sent again on
the device's next stream or poll); devices skip command ids they have already run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo_locator.adapters.tables import SCHEMA, commands, devices
from cumulo_locator.config import LocatorSettings
from cumulo_locator.devices import Devices
from cumulo_locator.domain import rules
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, parse_id
from cumulo_platform.fanout import Fanout
from cumulo_platform.logging import get_logger
from cumulo_platform.tokens import Principal, require_recent_password

log = get_logger(__name__)

LOCATE, RING, LOST_MODE, WIPE = "locate", "ring", "lost_mode", "wipe"
FINAL = ("succeeded", "failed", "expired")
MAX_LIST = 500

# Pending commands of a device, oldest first, each marked delivered once more. One being
# acknowledged right now is skipped (its ack wins), and the state is checked again on the
# row updated, so a delivery never undoes an acknowledgement.
_DELIVER = sa.text(
    f"""
    UPDATE {SCHEMA}.commands SET state = 'delivered', delivered_at = :now, deliveries = deliveries + 1
    WHERE state IN ('queued', 'delivered') AND command_id IN (
        SELECT command_id FROM {SCHEMA}.commands
        WHERE device_key = :key AND state IN ('queued', 'delivered') AND expires_at > :now
          AND command_id <> ALL(CAST(:skip AS uuid[]))
        ORDER BY created_at LIMIT 100
        FOR UPDATE SKIP LOCKED)
    RETURNING *
    """
)


@dataclasses.dataclass(frozen=True)
class NewCommand:
    kind: str
    ring_seconds: int = 0
    lost_enabled: bool = False
    lost_message: str = ""
    lost_phone: str = ""


class Commands:
    def __init__(self, db: Database, settings: LocatorSettings, clock: Clock, devices: Devices, fanout: Fanout) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.devices = devices
        self.fanout = fanout

    def ttl(self, seconds: int) -> dt.timedelta:
        if seconds == 0:
            return self.settings.command_ttl
        low, high = self.settings.min_command_ttl.total_seconds(), self.settings.max_command_ttl.total_seconds()
        if not low <= seconds <= high:
            raise InvalidArgument(
                "ttl_seconds",
                f"must be between {int(self.settings.min_command_ttl.total_seconds())} and "
                f"{int(self.settings.max_command_ttl.total_seconds())} seconds",
            )
        return dt.timedelta(seconds=seconds)

    async def send(
        self, principal: Principal, account: uuid.UUID, device_id: str, command: NewCommand, ttl: dt.timedelta
    ) -> Any:
        """Queues a command (and tells the device's stream). Lost mode takes effect for the
        owner at once: a report from the device from now on marks it found."""
        if command.kind == WIPE:
            if str(account) != principal.account_id:
                raise PermissionDenied("only the device's owner may wipe it", reason="NOT_YOUR_DEVICES")
            require_recent_password(principal, now=self.clock.now(), within=self.settings.password_window, action="wiping a device")
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            await self.devices.states.admit_write(uow, account)  # a purge that has begun gets nothing new
            device = await self.devices.find(uow, account, device_id, lock=command.kind == LOST_MODE)
            row = (
                await uow.execute(
                    sa.insert(commands)
                    .values(
                        command_id=uuid.uuid4(), account_id=account, device_key=device.device_key, device_id=device.device_id,
                        kind=command.kind, state="queued", ring_seconds=command.ring_seconds, lost_enabled=command.lost_enabled,
                        lost_message=command.lost_message, lost_phone=command.lost_phone, sent_by=uuid.UUID(principal.account_id),
                        created_at=now, expires_at=now + ttl,
                    )
                    .returning(*commands.c)
                )
            ).one()
            if command.kind == LOST_MODE:
                values: dict[str, Any] = (
                    {"lost_mode": True, "lost_message": command.lost_message, "lost_phone": command.lost_phone,
                     "lost_since": now, "found_at": None}
                    if command.lost_enabled
                    else {"lost_mode": False, "lost_message": "", "lost_phone": "", "lost_since": None, "found_at": None}
                )
                await uow.execute(sa.update(devices).where(devices.c.device_key == device.device_key).values(**values))
            await uow.commit()
        await self.fanout.publish(str(device.device_key), b"command")
        log.info("command_queued", command_id=str(row.command_id), kind=command.kind)
        return row

    async def of_device(self, account: uuid.UUID, device_id: str, limit: int) -> list[Any]:
        if not 0 <= limit <= MAX_LIST:
            raise InvalidArgument("limit", f"must be between 0 and {MAX_LIST}")
        async with self.db.read() as conn:
            device = await self.devices.find(conn, account, device_id)
            return list(
                (
                    await conn.execute(
                        sa.select(commands)
                        .where(commands.c.device_key == device.device_key)
                        .order_by(commands.c.created_at.desc())
                        .limit(limit or 50)
                    )
                ).all()
            )

    async def get(self, account: uuid.UUID, command_id: str) -> Any:
        target = parse_id(command_id, "command_id", "a command id")
        async with self.db.read() as conn:
            row = (
                await conn.execute(sa.select(commands).where(commands.c.command_id == target, commands.c.account_id == account))
            ).first()
        if row is None:
            raise NotFound("no such command", reason="COMMAND_NOT_FOUND")
        return row

    # --- the device's side ------------------------------------------------------------

    async def deliver(self, device_key: uuid.UUID, skip: set[uuid.UUID]) -> list[Any]:
        """The device's pending commands not yet sent on this stream, marked delivered."""
        async with self.db.unit_of_work() as uow:
            rows = (await uow.execute(_DELIVER, {"key": device_key, "now": self.clock.now(), "skip": list(skip)})).all()
            await uow.commit()
        return sorted(rows, key=lambda r: r.created_at)

    async def ack(self, account: uuid.UUID, device_id: str, command_id: str, *, succeeded: bool, detail: str) -> Any:
        target = parse_id(command_id, "command_id", "a command id")
        detail = rules.check_detail(detail)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            device = await self.devices.find(uow, account, device_id)
            row = (
                await uow.execute(
                    sa.select(commands).where(commands.c.command_id == target, commands.c.device_key == device.device_key).with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound("no such command for this device", reason="COMMAND_NOT_FOUND")
            if row.state in FINAL:
                if row.state == "expired":
                    raise FailedPrecondition("the command expired before it was acknowledged", reason="COMMAND_EXPIRED")
                return row  # acknowledged before: the same answer again
            if row.expires_at <= now:
                row = await self._expire(uow, row.command_id, now)
                await uow.commit()
                raise FailedPrecondition("the command expired before it was acknowledged", reason="COMMAND_EXPIRED")
            row = (
                await uow.execute(
                    sa.update(commands)
                    .where(commands.c.command_id == target)
                    .values(state="succeeded" if succeeded else "failed", completed_at=now, detail=detail)
                    .returning(*commands.c)
                )
            ).one()
            if row.kind == WIPE and succeeded:
                await uow.execute(sa.update(devices).where(devices.c.device_key == device.device_key).values(wiped_at=now))
            await uow.commit()
        return row

    @staticmethod
    async def _expire(uow: Any, command_id: uuid.UUID, now: dt.datetime) -> Any:
        return (
            await uow.execute(
                sa.update(commands).where(commands.c.command_id == command_id).values(state="expired", completed_at=now).returning(*commands.c)
            )
        ).one()

    async def expire(self) -> int:
        """Commands past their time to live, in batches; any replica may run it."""
        expired = 0
        while (count := await self._expire_batch()) > 0:
            expired += count
        return expired

    async def _expire_batch(self) -> int:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            count = (
                await uow.execute(
                    sa.text(
                        f"""UPDATE {SCHEMA}.commands SET state = 'expired', completed_at = :now WHERE command_id IN (
                            SELECT command_id FROM {SCHEMA}.commands
                            WHERE state IN ('queued', 'delivered') AND expires_at <= :now
                            LIMIT 1000 FOR UPDATE SKIP LOCKED)"""
                    ),
                    {"now": now},
                )
            ).rowcount or 0
            await uow.commit()
        return count
