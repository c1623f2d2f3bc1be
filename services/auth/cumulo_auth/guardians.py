"""A guardian's link to a minor's account, as its owner sees it: who had access, since when,
until when. The link ends by itself when the minor comes of age (`ages.comes_of_age`, said in
`account.created` so that every service holding the link stops honouring it then); an adult
may end it at once (`guardian.revoked`). A minor cannot end their guardian's access."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts
from cumulo_auth.config import AuthSettings
from cumulo_auth.domain import rules
from cumulo_auth.live_sessions import LiveSessions
from cumulo_auth.recovery import password_set_by_another_way
from cumulo_platform import ages
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import NotFound, PermissionDenied, parse_id
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.logging import get_logger
from cumulo_platform.passwords import Passwords
from cumulo_platform.tokens import Principal, require_recent_password

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class GuardianLink:
    guardian_account_id: uuid.UUID
    login: str
    since: dt.datetime
    until: dt.datetime
    revoked_at: dt.datetime | None
    active: bool


def link_of(row: Any, guardian: Any, *, now: dt.datetime, settings: AuthSettings) -> GuardianLink:
    until = ages.comes_of_age(row.birth_date, settings.time_zone)
    return GuardianLink(
        guardian_account_id=row.guardian_account_id,
        login=(guardian.email or guardian.phone or "") if guardian is not None and guardian.status != "deleted" else "",
        since=row.guardian_consent_at or row.created_at,
        until=until,
        revoked_at=row.guardian_revoked_at,
        active=row.guardian_revoked_at is None and now < until,
    )


def created_event_until(born: dt.date, settings: AuthSettings) -> Any:
    """`account.created`'s `guardian_until` for a minor born on `born`."""
    return timestamp(ages.comes_of_age(born, settings.time_zone))


@dataclasses.dataclass(frozen=True)
class MinorInCare:
    account_id: uuid.UUID
    login: str
    until: dt.datetime


class Guardians:
    def __init__(self, *, db: Database, clock: Clock, settings: AuthSettings, live: LiveSessions, passwords: Passwords) -> None:
        self.live = live
        self.db = db
        self.clock = clock
        self.settings = settings
        self.passwords = passwords

    async def minors(self, principal: Principal) -> list[MinorInCare]:
        """The accounts in the caller's care now (the link neither revoked nor past the 18th birthday)."""
        me = uuid.UUID(principal.account_id)
        now = self.clock.now()
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(accounts).where(accounts.c.guardian_account_id == me, accounts.c.status != "deleted").order_by(accounts.c.created_at)
                )
            ).all()
        links = [(row, link_of(row, None, now=now, settings=self.settings)) for row in rows]
        return [MinorInCare(row.account_id, row.email or row.phone or "", link.until) for row, link in links if link.active]

    async def set_minor_password(self, principal: Principal, minor_account_id: str, new_password: str, *, address: str) -> None:
        """A guardian's new password for a minor in their care: the minor's sessions end and
        the minor is told. NOT_FOUND for any other account (whether it exists is nobody's business)."""
        require_recent_password(
            principal, now=self.clock.now(), within=self.settings.contact_change_password_window, action="setting a minor's password"
        )
        me = uuid.UUID(principal.account_id)
        minor = parse_id(minor_account_id, "minor_account_id", "an account id (UUID)")

        def in_my_care(row: Any, now: dt.datetime) -> bool:
            return row is not None and row.guardian_account_id == me and row.status != "deleted" and link_of(row, None, now=now, settings=self.settings).active

        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.account_id == minor))).first()
        if row is None or not in_my_care(row, self.clock.now()):
            raise NotFound("no minor in your care has this account id", reason="MINOR_NOT_FOUND")
        normalized = rules.check_password(new_password, field="new_password", contacts=(row.email or "", row.phone or ""))
        new_hash = await self.passwords.hash(normalized)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            if not in_my_care(await account_table.load(uow, minor, lock=True), now):  # ended meanwhile
                raise NotFound("no minor in your care has this account id", reason="MINOR_NOT_FOUND")
            await password_set_by_another_way(uow, self.live, minor, new_hash, now=now, address=address)
            await uow.commit()
        log.info("minor_password_set", account_id=str(minor), guardian_account_id=str(me))

    async def list(self, principal: Principal) -> list[GuardianLink]:
        me = uuid.UUID(principal.account_id)
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, me)
            if row.guardian_account_id is None:
                return []
            guardian = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == row.guardian_account_id))).first()
        return [link_of(row, guardian, now=self.clock.now(), settings=self.settings)]

    async def revoke(self, principal: Principal, guardian_account_id: str) -> GuardianLink:
        me = uuid.UUID(principal.account_id)
        guardian_id = parse_id(guardian_account_id, "guardian_account_id", "an account id (UUID)")
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, me, lock=True)
            if row.guardian_account_id != guardian_id:
                raise NotFound("this account has no such guardian", reason="GUARDIAN_NOT_FOUND")
            if ages.is_minor(row.birth_date, ages.local_date(now, self.settings.time_zone)):
                raise PermissionDenied(
                    "a minor cannot end their guardian's access; it ends by itself at 18", reason="MINOR_CANNOT_REVOKE_GUARDIAN"
                )
            if row.guardian_revoked_at is None:
                row = (
                    await uow.execute(
                        sa.update(accounts)
                        .where(accounts.c.account_id == me)
                        .values(guardian_revoked_at=now, updated_at=now)
                        .returning(*accounts.c)
                    )
                ).one()
                self.live.forget_after_commit(uow, me)
                uow.emit(
                    "guardian.revoked",
                    events_pb2.GuardianRevoked(account_id=str(me), guardian_account_id=str(guardian_id), revoked_at=timestamp(now)),
                    account_id=str(me),
                )
                log.info("guardian_revoked", account_id=str(me), guardian_account_id=str(guardian_id))
            guardian = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == guardian_id))).first()
            await uow.commit()
        return link_of(row, guardian, now=now, settings=self.settings)
