"""What the operator tells every account (§7.1 terms changes, §6.2 maintenance): announced
once (the same kind and reference again answers the first), then queued by a job as the
lifecycle's notices — one per account and channel, in each account's language — in batches:
one INSERT … SELECT over the next `batch` accounts by id per transaction, the last id kept as
the announcement's cursor. No transaction per account, and a restart (or another replica, the
announcement's row is taken with SKIP LOCKED) goes on after the last batch that committed;
a notice already queued is not queued twice (notices are unique per kind, occurrence and
channel). Delivery is the notifier's, as for every notice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_lifecycle.adapters.tables import SCHEMA, announcements
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.domain import notices as texts
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument, NotFound, parse_id
from cumulo_platform.logging import get_logger
from cumulo_platform.text import local_time

log = get_logger(__name__)

KINDS = {"terms": "terms_changed", "maintenance": "maintenance"}  # announcement kind -> notice kind
MESSAGE_MAX = 1000
REFERENCE_MAX = 64
NO_CONTACT = "no verified contact method on record"

# One batch: the next accounts by id (deleted ones have no one to tell), their channels, and
# a notice each in the account's language. Answers the batch's last id and its size.
_FAN_OUT = sa.text(
    f"""
    WITH batch AS (
        SELECT account_id, email, phone, CASE WHEN locale = 'en' THEN 'en' ELSE 'zh-CN' END AS locale
        FROM {SCHEMA}.accounts
        WHERE account_id > :after AND state IN ('active', 'frozen')
        ORDER BY account_id
        LIMIT :batch
    ), targets AS (
        SELECT b.account_id, b.locale, c.channel, c.destination
        FROM batch b CROSS JOIN LATERAL (VALUES ('email', b.email), ('sms', b.phone)) AS c (channel, destination)
        WHERE c.destination IS NOT NULL
        UNION ALL
        SELECT account_id, locale, 'none', '' FROM batch WHERE email IS NULL AND phone IS NULL
    ), queued AS (
        INSERT INTO {SCHEMA}.notices
            (notice_id, account_id, kind, cycle, channel, destination, locale, subject, body, status, attempts,
             next_attempt_at, last_error, created_at)
        SELECT gen_random_uuid(), account_id, :kind, :cycle, channel, destination, locale,
               CASE WHEN locale = 'en' THEN :subject_en ELSE :subject_zh END,
               CASE WHEN channel = 'none' THEN '' WHEN locale = 'en' THEN :body_en ELSE :body_zh END,
               CASE WHEN channel = 'none' THEN 'undeliverable' ELSE 'pending' END, 0,
               CASE WHEN channel = 'none' THEN NULL ELSE CAST(:now AS timestamptz) END,
               CASE WHEN channel = 'none' THEN :no_contact ELSE '' END, :now
        FROM targets
        ON CONFLICT DO NOTHING
    )
    SELECT (SELECT account_id FROM batch ORDER BY account_id DESC LIMIT 1) AS last, (SELECT count(*) FROM batch) AS size
    """
)
FIRST = uuid.UUID(int=0)


@dataclasses.dataclass(frozen=True)
class Wording:
    subject_en: str
    body_en: str
    subject_zh: str
    body_zh: str


class Announcements:
    def __init__(self, db: Database, settings: LifecycleSettings, clock: Clock, *, batch: int = 5000) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.batch = batch

    async def announce(
        self, kind: str, reference: str, *, starts_at: dt.datetime | None, ends_at: dt.datetime | None, message_en: str,
        message_zh: str, actor: str,
    ) -> Any:
        if kind not in KINDS:
            raise InvalidArgument("kind", "must be terms or maintenance")
        reference = reference.strip()
        if not reference or len(reference) > REFERENCE_MAX or not reference.isprintable():
            raise InvalidArgument("reference", f"must be 1 to {REFERENCE_MAX} printable characters")
        if starts_at is None:
            raise InvalidArgument("starts_at", "is needed: when the terms apply, or the maintenance begins")
        if kind == "maintenance" and (ends_at is None or ends_at <= starts_at):
            raise InvalidArgument("ends_at", "must come after starts_at")
        for field, text in (("message_en", message_en), ("message_zh", message_zh)):
            if len(text) > MESSAGE_MAX:
                raise InvalidArgument(field, f"is longer than {MESSAGE_MAX} characters")
        if not actor.strip():
            raise InvalidArgument("actor", "names who announces, for the audit trail")
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                pg_insert(announcements)
                .values(
                    announcement_id=uuid.uuid4(), kind=kind, reference=reference, starts_at=starts_at,
                    ends_at=ends_at if kind == "maintenance" else None, message_en=message_en.strip(), message_zh=message_zh.strip(),
                    actor=actor.strip(), created_at=self.clock.now(),
                )
                .on_conflict_do_nothing(constraint="announcements_once")
            )
            row = (await uow.execute(sa.select(announcements).where(announcements.c.kind == kind, announcements.c.reference == reference))).one()
            await uow.commit()
        log.info("announced", kind=kind, reference=reference, announcement_id=str(row.announcement_id), actor=row.actor)
        return row

    async def get(self, announcement_id: str) -> Any:
        wanted = parse_id(announcement_id, "announcement_id", "an announcement id (UUID)")
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(announcements).where(announcements.c.announcement_id == wanted))).first()
        if row is None:
            raise NotFound("no such announcement", reason="ANNOUNCEMENT_NOT_FOUND")
        return row

    async def current(self) -> list[Any]:
        """Maintenance not over yet, terms not in force yet: what a banner shows."""
        now = self.clock.now()
        async with self.db.read() as conn:
            query = (
                sa.select(announcements)
                .where(
                    sa.or_(
                        sa.and_(announcements.c.kind == "maintenance", announcements.c.ends_at > now),
                        sa.and_(announcements.c.kind == "terms", announcements.c.starts_at > now),
                    )
                )
                .order_by(announcements.c.starts_at)
                .limit(20)
            )
            return list((await conn.execute(query)).all())

    def wording(self, row: Any) -> Wording:
        tz = self.settings.calendar.time_zone
        rendered = {}
        for locale in ("en", "zh-CN"):
            message = row.message_en if locale == "en" else row.message_zh
            values = {
                "reference": row.reference,
                "starts_at": local_time(row.starts_at, tz),
                "ends_at": local_time(row.ends_at, tz) if row.ends_at else "",
                "message": f"\n\n{message}" if message else "",
            }
            rendered[locale] = texts.render(KINDS[row.kind], locale, values)
        return Wording(rendered["en"].subject, rendered["en"].body, rendered["zh-CN"].subject, rendered["zh-CN"].body)

    async def fan_out(self) -> int:
        """Queues the notices of every announcement not yet queued; answers how many accounts."""
        total = 0
        while True:
            done = await self._next_batch()
            if done is None:
                return total
            total += done

    async def _next_batch(self) -> int | None:
        """One batch of one announcement, in one transaction; None when none is waiting."""
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.select(announcements)
                    .where(announcements.c.queued_at.is_(None))
                    .order_by(announcements.c.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return None
            words = self.wording(row)
            now = self.clock.now()
            last, size = (
                await uow.execute(
                    _FAN_OUT,
                    {
                        "after": row.cursor or FIRST, "batch": self.batch, "kind": KINDS[row.kind], "cycle": f"{row.kind}:{row.reference}",
                        "subject_en": words.subject_en, "body_en": words.body_en, "subject_zh": words.subject_zh,
                        "body_zh": words.body_zh, "now": now, "no_contact": NO_CONTACT,
                    },
                )
            ).one()
            finished = size < self.batch
            await uow.execute(
                sa.update(announcements)
                .where(announcements.c.announcement_id == row.announcement_id)
                .values(
                    cursor=last if last is not None else row.cursor, accounts_queued=announcements.c.accounts_queued + size,
                    queued_at=now if finished else None,
                )
            )
            await uow.commit()
        if finished:
            log.info("announcement_queued", announcement_id=str(row.announcement_id), kind=row.kind, accounts=row.accounts_queued + size)
        return int(size)
