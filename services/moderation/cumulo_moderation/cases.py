"""The review queue and a case's course around its decision (decisions.py): cases opened by
complaints and automatic checks, listed and claimed by moderators, shown to the owners they
concern; copyright takedowns disputed by a counter-notice and restored after the waiting
period unless the complainant reports legal action."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_moderation import audit
from cumulo_moderation.adapters.tables import cases, complaints, effects, strikes
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.domain import notices
from cumulo_moderation.domain.notices import Place
from cumulo_moderation.domain.rules import receipt_hash
from cumulo_moderation.effects import KEPT, LISTED, NOTES, Effects, blocked_elsewhere, content_subject
from cumulo_moderation.notify import notify
from cumulo_moderation.owner_notices import OwnerNotices
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import FailedPrecondition, NotFound, PermissionDenied, Unavailable, parse_id
from cumulo_platform.logging import get_logger
from cumulo_platform.paging import decode_token, encode_token, page_size, token_time

log = get_logger(__name__)
QUEUE_STATES = ("open", "claimed")
COUNTER_ACTOR = "system:counter-notice"


def case_id_of(value: str) -> uuid.UUID:
    return parse_id(value, "case_id", "a case id (UUID)")


def restored_reference(case_id: Any) -> str:
    return f"case:{case_id}:restored"


def not_about_self(row: Any, moderator: str) -> None:
    if row.account_id is not None and str(row.account_id) == moderator:
        raise PermissionDenied("a case about your own account or content is for another moderator", reason="CONFLICT_OF_INTEREST")


def _complaint_count() -> Any:
    return sa.select(sa.func.count()).select_from(complaints).where(complaints.c.case_id == cases.c.case_id).scalar_subquery().label("complaints")


class Cases:
    def __init__(self, db: Database, settings: ModerationSettings, clock: Clock, effects: Effects, owners: OwnerNotices) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.effects = effects
        self.owners = owners
        effects.on_done("restore", self._restored)

    # --- opening ---------------------------------------------------------------------------

    async def open(
        self, uow: UnitOfWork, *, kind: str, category: str, target_kind: str, account_id: str | uuid.UUID,
        node_id: str | uuid.UUID | None = None, node_kind: str = "", link_id: str | uuid.UUID | None = None, sha256: str = "",
        auto_blocked: bool = False, actor: str, reason: str, cause: Callable[[uuid.UUID], Awaitable[None]] | None = None,
    ) -> uuid.UUID:
        """The open case for this target and reason, made if there is none: complaints about
        the same file or account in the same category join one case. `cause` records what
        brings the target to the case (a complaint), before the case's opening if it opens."""
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
                if cause is not None:
                    await cause(case_id)
                await audit.record(
                    uow, at=now, actor=actor, action="case.opened", account_id=account_id, case_id=case_id,
                    target=audit.target(target_kind, account_id=account_id, node_id=node_id, node_kind=node_kind, link_id=link_id),
                    reason=reason,
                )
                log.info("case_opened", case_id=str(case_id), kind=kind, category=category)
                return case_id
            found = (
                await uow.execute(sa.select(cases.c.case_id).where(cases.c.open_key == open_key, cases.c.state != "decided"))
            ).scalar_one_or_none()
            if found is not None:  # else it was decided in between: open a new one
                if auto_blocked:
                    await uow.execute(sa.update(cases).where(cases.c.case_id == found).values(auto_blocked=True))
                if cause is not None:
                    await cause(found)
                return found
        raise Unavailable("the review queue is busy; try again", reason="QUEUE_BUSY")

    # --- the queue --------------------------------------------------------------------------

    async def queue(self, *, state: str | None, size: int, token: str) -> tuple[list[Any], str]:
        limit = page_size(size, default=50, maximum=500)
        query = (
            sa.select(cases, _complaint_count())
            .where(cases.c.state.in_((state,) if state else QUEUE_STATES))
            .order_by(cases.c.created_at, cases.c.case_id)
            .limit(limit + 1)
        )
        if token:
            created, case_id = decode_token(token, str, str)
            after = (token_time(created), parse_id(case_id, "page_token", "a token from a previous page"))
            query = query.where(sa.tuple_(cases.c.created_at, cases.c.case_id) > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        async with self.db.read() as conn:
            rows = list((await conn.execute(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_token([rows[-1].created_at.isoformat(), str(rows[-1].case_id)]) if more else ""

    async def get(self, case_id: str) -> tuple[Any, list[Any], list[Any]]:
        target = case_id_of(case_id)
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(cases, _complaint_count()).where(cases.c.case_id == target))).first()
            if row is None:
                raise NotFound("no such case", reason="CASE_NOT_FOUND")
            filed = list((await conn.execute(sa.select(complaints).where(complaints.c.case_id == target).order_by(complaints.c.created_at))).all())
        trail, _ = await audit.entries(self.db, case_id=str(target), size=1000)
        return row, filed, trail

    @staticmethod
    async def locked(uow: UnitOfWork, case_id: uuid.UUID) -> Any:
        row = (await uow.execute(sa.select(cases).where(cases.c.case_id == case_id).with_for_update())).first()
        if row is None:
            raise NotFound("no such case", reason="CASE_NOT_FOUND")
        return row

    @staticmethod
    async def summary(uow: UnitOfWork, case_id: uuid.UUID) -> Any:
        return (await uow.execute(sa.select(cases, _complaint_count()).where(cases.c.case_id == case_id))).one()

    async def summary_of(self, case_id: uuid.UUID) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(sa.select(cases, _complaint_count()).where(cases.c.case_id == case_id))).one()

    async def claim(self, case_id: str, moderator: str, *, take_over: bool) -> Any:
        target = case_id_of(case_id)
        async with self.db.unit_of_work() as uow:
            row = await self.locked(uow, target)
            if row.state == "decided":
                raise FailedPrecondition("this case has been decided", reason="CASE_DECIDED")
            not_about_self(row, moderator)
            if row.claimed_by and row.claimed_by != moderator and not take_over:
                raise FailedPrecondition("another moderator has claimed this case; take it over explicitly", reason="CASE_CLAIMED")
            now = self.clock.now()
            await uow.execute(sa.update(cases).where(cases.c.case_id == target).values(state="claimed", claimed_by=moderator, claimed_at=now))
            await audit.record(
                uow, at=now, actor=moderator, action="case.claimed", account_id=row.account_id, case_id=target,
                reason=f"taken over from {row.claimed_by}" if row.claimed_by and row.claimed_by != moderator else "",
            )
            summary = await self.summary(uow, target)
            await uow.commit()
        return summary

    # --- the owner's side -------------------------------------------------------------------------

    async def mine(self, owner: uuid.UUID) -> list[Any]:
        """What was done to the owner's content and account (dismissed complaints are not shown)."""
        query = (
            sa.select(cases, _complaint_count())
            .where(cases.c.account_id == owner, sa.or_(sa.and_(cases.c.state == "decided", cases.c.decision != "dismiss"), cases.c.auto_blocked))
            .order_by(cases.c.created_at.desc())
            .limit(500)
        )
        async with self.db.read() as conn:
            return list((await conn.execute(query)).all())

    async def counter_notice(self, owner: uuid.UUID, case_id: str, notice: dict[str, Any]) -> Any:
        target = case_id_of(case_id)
        async with self.db.unit_of_work() as uow:
            row = await self.locked(uow, target)
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
                target=audit.case_target(row), reason=f"restore at {audit.when(restore_at)} unless legal action is reported",
            )
            filed = (
                await uow.execute(
                    sa.select(complaints.c.complaint_id, complaints.c.reporter_account_id, complaints.c.contact_address)
                    .where(complaints.c.case_id == target)
                )
            ).all()
            for complaint in filed:
                # Each complainant gets the counter-notice, at their account or their contact address.
                message = notices.counter_notice_filed(str(target), str(complaint.complaint_id), self.owners.local(restore_at), notice)
                reference = f"case:{target}:counter-notice:{complaint.complaint_id}"
                if complaint.reporter_account_id is not None:
                    notify(uow, complaint.reporter_account_id, reference, message)
                elif complaint.contact_address:
                    notify(uow, None, reference, message, address=complaint.contact_address)
            summary = await self.summary(uow, target)
            await uow.commit()
        return summary

    async def legal_action(self, complaint_id: str, receipt: str, description: str) -> None:
        target = parse_id(complaint_id, "complaint_id", "a complaint id (UUID)")
        async with self.db.unit_of_work() as uow:
            complaint = (await uow.execute(sa.select(complaints).where(complaints.c.complaint_id == target))).first()
            # A wrong receipt looks like a missing complaint: nothing to learn by guessing.
            if complaint is None or not hmac.compare_digest(complaint.receipt_hash, receipt_hash(receipt)):
                raise NotFound("no such complaint, or the receipt does not match", reason="COMPLAINT_NOT_FOUND")
            row = await self.locked(uow, complaint.case_id)
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
                case_id=row.case_id, target=audit.case_target(row), reason=description,
            )
            reference = f"case:{row.case_id}:legal-action"
            await self.owners.tell(
                uow, account_id=row.account_id, reference=reference, kind="legal_action", args={"case_id": str(row.case_id)},
                about=self.owners.about(row), node_id=row.node_id,
            )
            await uow.commit()
        await self.owners.send(reference)  # the notice waits for the file's path: looked up now

    # --- restores -------------------------------------------------------------------------------

    async def restore_due(self) -> int:
        """Restores counter-noticed takedowns whose waiting period ended, one at a time;
        replicas share the work (SKIP LOCKED). The unblock is an effect: recorded, carried out
        by blob, then recorded done; an interrupted one is finished by `Effects.resume_due`."""
        restored = 0
        passed: list[uuid.UUID] = []  # busy or failing this round: the next round tries again
        while True:
            async with self.db.unit_of_work() as uow:
                query = sa.select(cases).where(
                    cases.c.counter_state == "waiting",
                    cases.c.restore_at <= self.clock.now(),
                    ~sa.exists().where(effects.c.case_id == cases.c.case_id),
                )
                if passed:
                    query = query.where(cases.c.case_id.not_in(passed))
                row = (await uow.execute(query.order_by(cases.c.restore_at).limit(1).with_for_update(skip_locked=True))).first()
                if row is None:
                    return restored
                subject = content_subject(row)
                if not await self.effects.claim(uow, subject):
                    passed.append(row.case_id)
                    continue
                effect = None
                if await blocked_elsewhere(uow, row):
                    await self._restored(uow, row, KEPT, None)
                else:
                    effect = await self.effects.record(
                        uow, purpose="restore", case_id=row.case_id, subject=subject, action="unblock", account_id=row.account_id,
                        node_id=row.node_id, link_id=row.link_id, actor=COUNTER_ACTOR, reason="",
                        call_reason=f"case {row.case_id}: counter-notice, no legal action reported within the waiting period",
                    )
                await uow.commit()
            if effect is None:  # recorded as restored; its notice waits for the file's path
                await self.owners.send(restored_reference(row.case_id))
                restored += 1
                continue
            try:
                restored += await self.effects.run(effect)
            except Exception as exc:
                passed.append(row.case_id)
                log.warning("restore_not_done", case_id=str(row.case_id), error=type(exc).__name__)

    async def _restored(self, uow: UnitOfWork, done: Any, outcome: str, place: Place | None) -> None:
        """Records a restore (`done`: the case, or its restore effect; `place`: where its
        content is, None when not looked up)."""
        row = await self.locked(uow, done.case_id)
        if row.counter_state != "waiting":
            return
        now = self.clock.now()
        reason = f"case {row.case_id}: counter-notice, no legal action reported within the waiting period" + NOTES[outcome]
        await uow.execute(sa.update(cases).where(cases.c.case_id == row.case_id).values(counter_state="restored"))
        await uow.execute(sa.update(strikes).where(strikes.c.case_id == row.case_id).values(withdrawn_at=now))
        await audit.record(
            uow, at=now, actor=COUNTER_ACTOR, action="content.restored", account_id=row.account_id, case_id=row.case_id,
            target=audit.case_target(row), reason=reason,
        )
        await self.owners.tell(
            uow, account_id=row.account_id, reference=restored_reference(row.case_id), kind="restored",
            args={"case_id": str(row.case_id), "kept": outcome in (KEPT, LISTED), "node_kind": row.node_kind or "file"},
            about=self.owners.about(row), node_id=row.node_id, place=place,
        )
        log.info("content_restored", case_id=str(row.case_id))
