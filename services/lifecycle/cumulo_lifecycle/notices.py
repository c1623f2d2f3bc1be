"""Notices queued for delivery (the notifier sends them): the lifecycle's own, rendered in the
account's language to every contact method on record, and those other services ask for."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any
from urllib.parse import quote, urljoin

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_lifecycle.adapters.tables import SCHEMA, accounts, notices, reactivation_links
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.domain import notices as texts
from cumulo_lifecycle.domain.calendar import DELETED
from cumulo_platform.clock import Clock
from cumulo_platform.db import UnitOfWork
from cumulo_platform.logging import get_logger
from cumulo_platform.text import local_time

log = get_logger(__name__)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def known_locale(value: str) -> str:
    return value if value in texts.LOCALES else texts.LOCALES[0]


def _targets(row: Any) -> list[tuple[str, str]]:
    return [(channel, to) for channel, to in (("email", row.email), ("sms", row.phone)) if to]




class Notices:
    def __init__(self, settings: LifecycleSettings, clock: Clock) -> None:
        self.settings = settings
        self.cal = settings.calendar
        self.clock = clock
        self._guardians_ready = False  # the schema has the guardians' columns (migration 0009)

    async def _guardian_targets(self, uow: UnitOfWork, row: Any) -> list[tuple[str, str]]:
        """A minor's guardian, while the guardian's access lasts: on channels of their own (a
        notice goes once per channel), told in the notice that they receive it as the guardian.
        Nobody before migration 0009 has run (a new release's replicas may start first)."""
        if not self._guardians_ready:
            found = await uow.execute(
                sa.text(
                    "SELECT 1 FROM information_schema.columns WHERE table_schema = :schema AND table_name = 'accounts' "
                    "AND column_name = 'guardian_until'"
                ),
                {"schema": SCHEMA},
            )
            if found.first() is None:
                return []
            self._guardians_ready = True
        c = accounts.c
        guardian = (
            await uow.execute(sa.select(c.guardian_email, c.guardian_phone, c.guardian_until).where(c.account_id == row.account_id))
        ).first()
        if guardian is None or guardian.guardian_until is None or guardian.guardian_until <= self.clock.now():
            return []
        mine = {row.email, row.phone}
        return [
            (channel, to)
            for channel, to in (("guardian_email", guardian.guardian_email), ("guardian_sms", guardian.guardian_phone))
            if to and to not in mine
        ]

    async def queue(
        self, uow: UnitOfWork, account_id: uuid.UUID, kind: str, cycle: str, locale: str, subject: str, body: str,
        targets: list[tuple[str, str]], *, none_because: str = "no verified contact method on record",
    ) -> None:
        """One notice per channel, once per kind and occurrence; with no contact method, a
        record that it could not be sent (the lifecycle goes on regardless)."""
        now = self.clock.now()
        common = {"account_id": account_id, "kind": kind, "cycle": cycle, "locale": locale, "subject": subject, "created_at": now}
        values = [
            {
                "notice_id": uuid.uuid4(), "channel": channel, "destination": to, "status": "pending", "next_attempt_at": now,
                "body": texts.GUARDIAN_NOTE[locale] + body if channel.startswith("guardian_") else body,
            }
            for channel, to in targets
        ] or [{"notice_id": uuid.uuid4(), "channel": "none", "body": "", "status": "undeliverable", "last_error": none_because}]
        for value in values:
            await uow.execute(pg_insert(notices).values(**common, **value).on_conflict_do_nothing())

    async def notify(
        self, uow: UnitOfWork, row: Any, kind: str, *, cycle: str, link: bool = False, at: dt.datetime | None = None
    ) -> None:
        """Queues one notice per contact method (once per kind and occurrence); with `link`,
        it carries a reactivation link of its own."""
        tz = self.cal.time_zone
        token = ""
        if link:
            token = secrets.token_urlsafe(32)
            await uow.execute(
                sa.insert(reactivation_links).values(token_hash=token_hash(token), account_id=row.account_id, created_at=self.clock.now())
            )
        locale = known_locale(row.locale)

        def when(value: dt.datetime | None) -> str:
            return local_time(value, tz) if value else ""

        values = {
            "last_access_at": when(row.last_access_at),
            "freeze_at": when(row.freeze_at),
            "delete_at": when(row.delete_at),
            # An exact grace ends at a time, not with a day: the notices say only the time.
            "last_day": self.cal.last_day_of_grace(row.delete_at).isoformat() if row.delete_at and not self.cal.exact_grace else "",
            "deleted_at": when(row.deleted_at),
            "at": when(at),
            "grace": texts.describe_duration(self.cal.grace.months, self.cal.grace.fixed, locale),
            "reactivate_link": f"{self.settings.reactivate_url}?token={token}" if token else self.settings.reactivate_url,
        }
        rendered = texts.render(kind, locale, values)
        targets = _targets(row) + await self._guardian_targets(uow, row)
        await self.queue(uow, row.account_id, kind, cycle, locale, rendered.subject, rendered.body, targets)

    async def contact_changed(self, uow: UnitOfWork, event_id: str, changed: events_pb2.ContactChanged, at: dt.datetime) -> None:
        """The old contacts hear that they are no longer the account's (a stolen session
        redirecting the notices is then no secret): the copy kept here still holds them."""
        row = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(changed.account_id)))).first()
        if row is None or row.state == DELETED:
            return
        locale = known_locale(row.locale)
        for channel, old in (("email", row.email), ("phone", row.phone)):
            if channel in changed.changed and old:
                values = {"what": texts.CONTACT[locale][channel], "at": local_time(at, self.cal.time_zone)}
                rendered = texts.render("contact_changed", locale, values)
                target = ("email" if channel == "email" else "sms", old)
                await self.queue(uow, row.account_id, "contact_changed", f"{event_id}:{channel}", locale, rendered.subject, rendered.body, [target])

    async def requested(self, uow: UnitOfWork, wanted: events_pb2.NoticeRequested) -> None:
        """Another service's message to an account's owner (moderation), queued like the
        lifecycle's own notices, once per reference and channel."""
        if wanted.account_id:
            recipient = uuid.UUID(wanted.account_id)
            # Shared with the deletion's transition (which cancels what is pending): a notice
            # for an account deleted meanwhile is not queued after it.
            row = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == recipient).with_for_update(read=True))).first()
            if row is not None and row.state == DELETED:
                log.info("notice_for_deleted_account_dropped", account_id=str(recipient), kind=wanted.kind or "service")
                return
            targets = _targets(row) if row is not None else []
            if wanted.kind in texts.EMAIL_ONLY_KINDS:
                targets = [(channel, to) for channel, to in targets if channel == "email"]
        else:
            # Someone without an account: the notice is filed under an id derived from the address.
            row = None
            address = wanted.address.strip()
            recipient = uuid.uuid5(uuid.NAMESPACE_URL, f"cumulo:contact:{address.lower()}")
            targets = [("email" if "@" in wanted.address else "sms", address)] if address else []
        locale = known_locale(row.locale) if row is not None else texts.LOCALES[0]
        subject, body = wanted.subject, wanted.body
        if wanted.kind:
            if await self._over_cap(uow, recipient, wanted.kind):
                log.warning("notices_capped", account_id=str(recipient), kind=wanted.kind)
                await self.queue(
                    uow, recipient, wanted.kind, wanted.reference, locale, "", "", [],
                    none_because=f"not sent: more than {texts.PER_HOUR[wanted.kind]} of this kind in an hour",
                )
                return
            rendered = await self._render_service_kind(uow, wanted, locale)
            if rendered is None:
                return
            subject, body = rendered.subject, rendered.body
        await self.queue(uow, recipient, wanted.kind or "service", wanted.reference, locale, subject, body, targets)

    async def _over_cap(self, uow: UnitOfWork, recipient: uuid.UUID, kind: str) -> bool:
        """Whether the recipient has had as many notices of `kind` this hour as a person wants
        (texts.PER_HOUR): a flood of shares to one address stops reaching its inbox."""
        cap = texts.PER_HOUR.get(kind)
        if cap is None:
            return False
        since = self.clock.now() - dt.timedelta(hours=1)
        sent = (
            await uow.execute(
                sa.select(sa.func.count(sa.distinct(notices.c.cycle))).where(
                    notices.c.account_id == recipient, notices.c.kind == kind, notices.c.created_at > since, notices.c.channel != "none"
                )
            )
        ).scalar_one()
        return int(sent) >= cap

    async def _render_service_kind(self, uow: UnitOfWork, wanted: events_pb2.NoticeRequested, locale: str) -> texts.Rendered | None:
        """A notice of a kind the lifecycle words (texts.SERVICE_KINDS); None for an unknown one."""
        names = texts.SERVICE_KINDS.get(wanted.kind)
        if names is None:
            log.warning("notice_kind_unknown", kind=wanted.kind)
            return None
        values = {name: texts.as_typed(wanted.values.get(name, "")) for name in names}
        try:
            values["at"] = local_time(dt.datetime.fromisoformat(wanted.values.get("at", "")), self.cal.time_zone)
        except ValueError:
            values["at"] = local_time(self.clock.now(), self.cal.time_zone)
        if wanted.kind == "new_session":
            # The link's token comes from auth whole (never shown as typed text, never cut).
            token = wanted.values.get("revoke_token", "")
            values["revoke_link"] = (
                urljoin(self.settings.reactivate_url, "/revoke-session") + "?token=" + quote(token)
                if token else {"en": "see below", "zh-CN": "见下"}[locale]
            )
        if wanted.kind == "price_changed":
            values.update(texts.price_values(wanted.values, locale, lambda when: local_time(when, self.cal.time_zone)))
        if wanted.kind == "export_ready":
            values.update(texts.export_values(wanted.values, locale, lambda when: local_time(when, self.cal.time_zone)))
        if wanted.kind == "shared_with_you":
            values["what"] = texts.WHAT[locale].get(values["what"], values["what"])
            owner = wanted.values.get("owner_account_id", "")
            found = None
            if owner:
                try:
                    found = (await uow.execute(sa.select(accounts.c.email, accounts.c.phone).where(accounts.c.account_id == uuid.UUID(owner)))).first()
                except ValueError:
                    found = None
            values["owner"] = (found.email or found.phone) if found is not None and (found.email or found.phone) else texts.SOMEONE[locale]
        return texts.render(wanted.kind, locale, values)
