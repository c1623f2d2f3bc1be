"""The review queue: cases opened by complaints and automatic checks, claimed and decided by
moderators, with each decision carried out in the service that owns the data. Copyright
takedowns can be disputed by a counter-notice and are restored after the waiting period unless
the complainant reports legal action; upheld ones count towards the repeat-infringer threshold."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_moderation import audit
from cumulo_moderation.adapters.services import Services
from cumulo_moderation.adapters.tables import cases, complaints, counters, strikes
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.domain import notices
from cumulo_moderation.domain.notices import Message
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    parse_id,
)
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import decode_token, encode_token, page_size

log = get_logger(__name__)
# Decisions carried out by another service.
EFFECTS = ("block", "delete", "suspend", "terminate")
QUEUE_STATES = ("open", "claimed")
COUNTER_ACTOR = "system:counter-notice"


def receipt_hash(receipt: str) -> bytes:
    return hashlib.sha256(receipt.encode()).digest()


def _case_id(value: str) -> uuid.UUID:
    return parse_id(value, "case_id", "a case id (UUID)")


def _format(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def notify(uow: UnitOfWork, account_id: Any, reference: str, message: Message, *, address: str = "") -> None:
    """Queues a message to an account's owner, or to a contact address of someone without an
    account (delivered by the lifecycle, once per reference)."""
    account = str(account_id) if account_id else ""
    uow.emit(
        "notice.requested",
        events_pb2.NoticeRequested(account_id=account, reference=reference, subject=message.subject, body=message.body, address=address),
        account_id=account,
    )


async def bump(uow: UnitOfWork, key: str, window: dt.timedelta, now: dt.datetime) -> int:
    """Counts one more in the current fixed window of `key`; answers the count so far."""
    seconds = int(window.total_seconds())
    start = dt.datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, dt.UTC)
    statement = pg_insert(counters).values(key=key, window_start=start, count=1)
    statement = statement.on_conflict_do_update(index_elements=["key", "window_start"], set_={"count": counters.c.count + 1})
    count = (await uow.execute(statement.returning(counters.c.count))).scalar_one()
    await uow.execute(sa.delete(counters).where(counters.c.key == key, counters.c.window_start < start))
    return int(count)


async def prune_counters(db: Database, older_than: dt.datetime) -> int:
    """Forgets counting windows that ended long ago (keys that are never seen again too)."""
    async with db.unit_of_work() as uow:
        gone = (await uow.execute(sa.delete(counters).where(counters.c.window_start < older_than))).rowcount or 0
        await uow.commit()
    return gone


async def within_limit(uow: UnitOfWork, key: str, limit: int, window: dt.timedelta, now: dt.datetime, what: str) -> None:
    if await bump(uow, key, window, now) > limit:
        raise ResourceExhausted(f"too many {what}; try again later", reason="COMPLAINT_RATE_LIMITED")


def _not_about_self(row: Any, moderator: str) -> None:
    if row.account_id is not None and str(row.account_id) == moderator:
        raise PermissionDenied("a case about your own account or content is for another moderator", reason="CONFLICT_OF_INTEREST")


class Cases:
    def __init__(self, db: Database, settings: ModerationSettings, clock: Clock, services: Services) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.services = services

    # --- opening ---------------------------------------------------------------------------

    async def open(
        self, uow: UnitOfWork, *, kind: str, category: str, target_kind: str, account_id: str | uuid.UUID,
        node_id: str | uuid.UUID | None = None, node_kind: str = "", link_id: str | uuid.UUID | None = None, sha256: str = "",
        auto_blocked: bool = False, actor: str, reason: str,
    ) -> uuid.UUID:
        """The open case for this target and reason, made if there is none: complaints about
        the same file or account in the same category join one case."""
        subject = node_id or account_id
        open_key = f"{kind}:{category}:{subject}"
        now = self.clock.now()
        for _ in range(5):
            case_id = (
                await uow.execute(
                    pg_insert(cases)
                    .values(
                        case_id=uuid.uuid4(), kind=kind, category=category, target_kind=target_kind, account_id=uuid.UUID(str(account_id)),
                        node_id=uuid.UUID(str(node_id)) if node_id else None, node_kind=node_kind or ("file" if node_id else ""),
                        link_id=uuid.UUID(str(link_id)) if link_id else None, sha256=sha256, open_key=open_key, state="open",
                        auto_blocked=auto_blocked, created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["open_key"], index_where=sa.text("state <> 'decided'"))
                    .returning(cases.c.case_id)
                )
            ).scalar_one_or_none()
            if case_id is not None:
                await audit.record(
                    uow, at=now, actor=actor, action="case.opened", account_id=account_id, case_id=case_id,
                    target=f"{target_kind}:{subject}", reason=reason,
                )
                log.info("case_opened", case_id=str(case_id), kind=kind, category=category)
                return case_id
            found = (
                await uow.execute(sa.select(cases.c.case_id).where(cases.c.open_key == open_key, cases.c.state != "decided"))
            ).scalar_one_or_none()
            if found is not None:  # else it was decided in between: open a new one
                if auto_blocked:
                    await uow.execute(sa.update(cases).where(cases.c.case_id == found).values(auto_blocked=True))
                return found
        raise Unavailable("the review queue is busy; try again", reason="QUEUE_BUSY")

    # --- the queue --------------------------------------------------------------------------

    async def queue(self, *, state: str | None, size: int, token: str) -> tuple[list[Any], str]:
        limit = page_size(size, default=50, maximum=500)
        query = (
            sa.select(cases, self._complaint_count())
            .where(cases.c.state.in_((state,) if state else QUEUE_STATES))
            .order_by(cases.c.created_at, cases.c.case_id)
            .limit(limit + 1)
        )
        if token:
            created, case_id = decode_token(token, str, str)
            try:
                after = (dt.datetime.fromisoformat(created), uuid.UUID(case_id))
            except ValueError:
                raise InvalidArgument("page_token", "is not a token from a previous page") from None
            query = query.where(sa.tuple_(cases.c.created_at, cases.c.case_id) > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        async with self.db.read() as conn:
            rows = list((await conn.execute(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_token([rows[-1].created_at.isoformat(), str(rows[-1].case_id)]) if more else ""

    @staticmethod
    def _complaint_count() -> Any:
        return (
            sa.select(sa.func.count()).select_from(complaints).where(complaints.c.case_id == cases.c.case_id).scalar_subquery().label("complaints")
        )

    async def get(self, case_id: str) -> tuple[Any, list[Any], list[Any]]:
        target = _case_id(case_id)
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(cases, self._complaint_count()).where(cases.c.case_id == target))).first()
            if row is None:
                raise NotFound("no such case", reason="CASE_NOT_FOUND")
            filed = list((await conn.execute(sa.select(complaints).where(complaints.c.case_id == target).order_by(complaints.c.created_at))).all())
        trail, _ = await audit.entries(self.db, case_id=str(target), size=1000)
        return row, filed, trail

    async def _locked(self, uow: UnitOfWork, case_id: uuid.UUID) -> Any:
        row = (await uow.execute(sa.select(cases).where(cases.c.case_id == case_id).with_for_update())).first()
        if row is None:
            raise NotFound("no such case", reason="CASE_NOT_FOUND")
        return row

    async def _summary(self, uow: UnitOfWork, case_id: uuid.UUID) -> Any:
        return (await uow.execute(sa.select(cases, self._complaint_count()).where(cases.c.case_id == case_id))).one()

    async def claim(self, case_id: str, moderator: str, *, take_over: bool) -> Any:
        target = _case_id(case_id)
        async with self.db.unit_of_work() as uow:
            row = await self._locked(uow, target)
            if row.state == "decided":
                raise FailedPrecondition("this case has been decided", reason="CASE_DECIDED")
            _not_about_self(row, moderator)
            if row.claimed_by and row.claimed_by != moderator and not take_over:
                raise FailedPrecondition("another moderator has claimed this case; take it over explicitly", reason="CASE_CLAIMED")
            now = self.clock.now()
            await uow.execute(sa.update(cases).where(cases.c.case_id == target).values(state="claimed", claimed_by=moderator, claimed_at=now))
            await audit.record(
                uow, at=now, actor=moderator, action="case.claimed", account_id=row.account_id, case_id=target,
                reason=f"taken over from {row.claimed_by}" if row.claimed_by and row.claimed_by != moderator else "",
            )
            summary = await self._summary(uow, target)
            await uow.commit()
        return summary

    # --- deciding ---------------------------------------------------------------------------

    async def decide(self, case_id: str, moderator: str, *, decision: str, reason: str, suspend_seconds: int) -> Any:
        target = _case_id(case_id)
        until: dt.datetime | None = None
        if decision == "suspend":
            if not 0 < suspend_seconds <= self.settings.max_suspension.total_seconds():
                raise InvalidArgument(
                    "suspend_seconds", f"a suspension lasts from 1 second to {int(self.settings.max_suspension.total_seconds())} seconds"
                )
        elif suspend_seconds:
            raise InvalidArgument("suspend_seconds", "only a SUSPEND decision has a duration")
        async with self.db.unit_of_work() as uow:
            row = await self._locked(uow, target)
            if row.state == "decided":
                raise FailedPrecondition("this case has been decided", reason="CASE_DECIDED")
            _not_about_self(row, moderator)
            if row.claimed_by and row.claimed_by != moderator:
                raise FailedPrecondition("another moderator has claimed this case; take it over first", reason="CASE_CLAIMED")
            if decision in ("block", "delete") and row.node_id is None:
                raise InvalidArgument("decision", "this case is about an account, not a file: it can be dismissed, warned, suspended or terminated")
            if decision == "delete" and row.node_kind == "folder":
                raise InvalidArgument(
                    "decision", "this case is about a shared folder's link: block it (the link is disconnected), or delete its files in cases of their own"
                )
            now = self.clock.now()
            account = str(row.account_id)
            audit_reason = f"case {target}: {reason}"
            note = ""
            if decision in EFFECTS or (decision == "dismiss" and row.auto_blocked):
                # The intent is on record before another service acts, whatever happens next.
                async with self.db.unit_of_work() as intent:
                    await audit.record(
                        intent, at=now, actor=moderator, action=f"effect.{decision}", account_id=account, case_id=target,
                        target=f"{row.target_kind}:{row.node_id or account}", reason="carrying out the decision",
                    )
                    await intent.commit()
            # The effect first, in the service that owns the data (each call is idempotent):
            # if it fails, the case stays undecided and deciding again carries it out.
            if decision == "block":
                note = await self._set_blocked(uow, row, blocked=True, reason=audit_reason, actor=moderator)
            elif decision == "delete":
                await self.services.delete_file(account, str(row.node_id), reason=audit_reason, actor=moderator)
            elif decision == "suspend":
                until = now + dt.timedelta(seconds=suspend_seconds)
                await self.services.suspend(account, until, reason=audit_reason, actor=moderator)
            elif decision == "terminate":
                try:
                    await self.services.terminate(account, reason=audit_reason, actor=moderator)
                except FailedPrecondition as err:
                    if err.reason != "ACCOUNT_CLOSED":
                        raise
                    note = " (the account was closed already; its deletion runs)"
            elif decision == "dismiss" and row.auto_blocked:
                note = await self._set_blocked(uow, row, blocked=False, reason=audit_reason, actor=moderator)
            await uow.execute(
                sa.update(cases)
                .where(cases.c.case_id == target)
                .values(
                    state="decided", decision=decision, decided_by=moderator, decided_at=now, reason=reason, suspended_until=until,
                    claimed_by=moderator, claimed_at=row.claimed_at or now,
                )
            )
            await audit.record(
                uow, at=now, actor=moderator, action=f"decision.{decision}", account_id=account, case_id=target,
                target=f"{row.target_kind}:{row.node_id or account}", reason=reason + note,
            )
            message = notices.decided(
                decision, category=row.category, reason=reason, node_id=str(row.node_id or ""), case_id=str(target),
                until=_format(until) if until else "",
            )
            if message is not None:
                notify(uow, account, f"case:{target}:decided", message)
            if row.category == "copyright" and decision in ("block", "delete"):
                await self._strike(uow, row.account_id, target, now)
            summary = await self._summary(uow, target)
            await uow.commit()
        log.info("case_decided", case_id=str(target), decision=decision)
        return summary

    async def _set_blocked(self, uow: UnitOfWork, row: Any, *, blocked: bool, reason: str, actor: str) -> str:
        """Blocks or unblocks what the case is about: a file, or a shared folder's link. One
        case's dismissal or restore does not undo another case's block; the content's lock
        keeps two replicas from deciding that at once. Answers a note for the audit log."""
        subject = row.link_id if row.node_kind == "folder" else row.node_id
        await uow.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"moderation-block:{subject}", 0))))
        if not blocked and await self._blocked_elsewhere(uow, row):
            return " (it stays blocked: another case's decision blocks it)"
        try:
            if row.node_kind == "folder":
                await self.services.block_link(str(row.link_id), blocked=blocked, reason=reason, actor=actor)
            else:
                await self.services.block(str(row.account_id), str(row.node_id), blocked=blocked, reason=reason, actor=actor)
        except NotFound:
            return " (the content no longer exists)"
        return ""

    @staticmethod
    async def _blocked_elsewhere(uow: UnitOfWork, row: Any) -> bool:
        """Whether another case keeps this content blocked: a block that stands, or an
        automatic block that was not dismissed."""
        same = cases.c.link_id == row.link_id if row.node_kind == "folder" else cases.c.node_id == row.node_id
        other = (
            await uow.execute(
                sa.select(cases.c.case_id)
                .where(
                    same,
                    cases.c.case_id != row.case_id,
                    sa.or_(
                        sa.and_(cases.c.decision == "block", cases.c.counter_state != "restored"),
                        sa.and_(cases.c.auto_blocked, cases.c.decision != "dismiss"),
                    ),
                )
                .limit(1)
            )
        ).first()
        return other is not None

    async def _strike(self, uow: UnitOfWork, account_id: uuid.UUID, case_id: uuid.UUID, now: dt.datetime) -> None:
        """An upheld copyright takedown; at the threshold, a termination review is queued."""
        await uow.execute(pg_insert(strikes).values(case_id=case_id, account_id=account_id, at=now).on_conflict_do_nothing())
        active = (
            await uow.execute(
                sa.select(sa.func.count()).select_from(strikes).where(strikes.c.account_id == account_id, strikes.c.withdrawn_at.is_(None))
            )
        ).scalar_one()
        if active >= self.settings.repeat_infringer_strikes:
            await self.open(
                uow, kind="repeat_infringer", category="copyright", target_kind="account", account_id=account_id,
                actor="system:repeat-infringer", reason=f"{active} upheld copyright takedowns (threshold {self.settings.repeat_infringer_strikes})",
            )

    # --- the owner's side -------------------------------------------------------------------------

    async def mine(self, owner: uuid.UUID) -> list[Any]:
        """What was done to the owner's content and account (dismissed complaints are not shown)."""
        async with self.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        sa.select(cases, self._complaint_count())
                        .where(
                            cases.c.account_id == owner,
                            sa.or_(sa.and_(cases.c.state == "decided", cases.c.decision != "dismiss"), cases.c.auto_blocked),
                        )
                        .order_by(cases.c.created_at.desc())
                        .limit(500)
                    )
                ).all()
            )

    async def counter_notice(self, owner: uuid.UUID, case_id: str, notice: dict[str, Any]) -> Any:
        target = _case_id(case_id)
        async with self.db.unit_of_work() as uow:
            row = await self._locked(uow, target)
            if row.account_id != owner:
                raise NotFound("no such case", reason="CASE_NOT_FOUND")
            if row.category != "copyright" or row.decision != "block":
                raise FailedPrecondition("only a copyright takedown that blocked a file can be disputed", reason="NOT_COUNTERABLE")
            if row.counter_state != "none":
                raise FailedPrecondition("a counter-notice has already been filed for this case", reason="COUNTER_NOTICE_FILED")
            now = self.clock.now()
            restore_at = now + self.settings.counter_notice_wait
            await uow.execute(
                sa.update(cases)
                .where(cases.c.case_id == target)
                .values(counter_state="waiting", counter_notice=notice, counter_at=now, restore_at=restore_at)
            )
            await audit.record(
                uow, at=now, actor=str(owner), action="counter_notice.filed", account_id=owner, case_id=target,
                target=f"file:{row.node_id}", reason=f"restore at {_format(restore_at)} unless legal action is reported",
            )
            filed = (
                await uow.execute(
                    sa.select(complaints.c.complaint_id, complaints.c.reporter_account_id, complaints.c.contact_address)
                    .where(complaints.c.case_id == target)
                )
            ).all()
            for complaint in filed:
                # Each complainant gets the counter-notice, at their account or their contact address.
                message = notices.counter_notice_filed(str(target), str(complaint.complaint_id), _format(restore_at), notice)
                reference = f"case:{target}:counter-notice:{complaint.complaint_id}"
                if complaint.reporter_account_id is not None:
                    notify(uow, complaint.reporter_account_id, reference, message)
                elif complaint.contact_address:
                    notify(uow, None, reference, message, address=complaint.contact_address)
            summary = await self._summary(uow, target)
            await uow.commit()
        return summary

    async def legal_action(self, complaint_id: str, receipt: str, description: str) -> None:
        target = parse_id(complaint_id, "complaint_id", "a complaint id (UUID)")
        async with self.db.unit_of_work() as uow:
            complaint = (await uow.execute(sa.select(complaints).where(complaints.c.complaint_id == target))).first()
            # A wrong receipt looks like a missing complaint: nothing to learn by guessing.
            if complaint is None or not hmac.compare_digest(complaint.receipt_hash, receipt_hash(receipt)):
                raise NotFound("no such complaint, or the receipt does not match", reason="COMPLAINT_NOT_FOUND")
            row = await self._locked(uow, complaint.case_id)
            if row.counter_state != "waiting":
                raise FailedPrecondition("no counter-notice is waiting on this complaint", reason="NO_COUNTER_NOTICE")
            now = self.clock.now()
            if row.restore_at is not None and now >= row.restore_at:
                raise FailedPrecondition(
                    "the waiting period after the counter-notice is over; the content is being restored", reason="WAITING_PERIOD_OVER"
                )
            await uow.execute(
                sa.update(complaints).where(complaints.c.complaint_id == target).values(legal_action_at=now, legal_action=description)
            )
            await uow.execute(sa.update(cases).where(cases.c.case_id == row.case_id).values(counter_state="legal_action", restore_at=None))
            await audit.record(
                uow, at=now, actor=f"complainant:{target}", action="counter_notice.legal_action", account_id=row.account_id,
                case_id=row.case_id, target=f"file:{row.node_id}", reason=description,
            )
            notify(uow, row.account_id, f"case:{row.case_id}:legal-action", notices.legal_action(str(row.node_id), str(row.case_id)))
            await uow.commit()

    async def restore_due(self) -> int:
        """Restores counter-noticed takedowns whose waiting period ended, one per transaction;
        replicas share the work (SKIP LOCKED), and a restore interrupted half-way is done again."""
        restored = 0
        while True:
            async with self.db.unit_of_work() as uow:
                row = (
                    await uow.execute(
                        sa.select(cases)
                        .where(cases.c.counter_state == "waiting", cases.c.restore_at <= self.clock.now())
                        .order_by(cases.c.restore_at)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).first()
                if row is None:
                    return restored
                now = self.clock.now()
                reason = f"case {row.case_id}: counter-notice, no legal action reported within the waiting period"
                reason += await self._set_blocked(uow, row, blocked=False, reason=reason, actor=COUNTER_ACTOR)
                await uow.execute(sa.update(cases).where(cases.c.case_id == row.case_id).values(counter_state="restored"))
                await uow.execute(sa.update(strikes).where(strikes.c.case_id == row.case_id).values(withdrawn_at=now))
                await audit.record(
                    uow, at=now, actor=COUNTER_ACTOR, action="content.restored", account_id=row.account_id, case_id=row.case_id,
                    target=f"{row.target_kind}:{row.node_id}", reason=reason,
                )
                notify(uow, row.account_id, f"case:{row.case_id}:restored", notices.restored(str(row.node_id), str(row.case_id)))
                await uow.commit()
            restored += 1
            log.info("content_restored", case_id=str(row.case_id))
