"""Deciding a case, and carrying the decision out in the service that owns the data.

A decision that another service carries out (block, delete, suspend, terminate, or the
dismissal of an automatic block) is an effect (effects.py): the case is locked, checked and
the effect recorded as pending, with the decision in the audit log; then, outside any unit of
work, the other service acts; then the case is recorded as decided, with the effect's audit
entry, the owner's notice and (for a copyright takedown) a strike. So the trail reads cause
first: `decision.block`, then `effect.block` (or `effect.refused`). Deciding again carries a
pending decision out again; `Effects.resume_due` finishes one that was interrupted. Decisions
nobody else acts on are recorded in one unit of work."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_moderation import audit
from cumulo_moderation.adapters.tables import cases, strikes
from cumulo_moderation.cases import Cases, case_id_of, not_about_self
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.domain import notices
from cumulo_moderation.domain.notices import Place
from cumulo_moderation.effects import DONE, KEPT, NOTES, Effects, account_subject, blocked_elsewhere, content_subject, did
from cumulo_moderation.owner_notices import OwnerNotices
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, Unavailable
from cumulo_platform.logging import get_logger

log = get_logger(__name__)
# Decisions carried out by another service, and how.
ACTIONS = {"block": "block", "delete": "delete", "suspend": "suspend", "terminate": "terminate"}
# Decisions the owner does not hear of: a dismissal.
SILENT = {"dismiss"}


def decided_reference(case_id: Any) -> str:
    """The owner's notice of a case's decision (delivered once per reference)."""
    return f"case:{case_id}:decided"


class Decisions:
    def __init__(
        self, db: Database, settings: ModerationSettings, clock: Clock, cases: Cases, effects: Effects, owners: OwnerNotices
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.cases = cases
        self.effects = effects
        self.owners = owners
        effects.on_done("decision", self._carried_out, tells=lambda effect: effect.decision not in SILENT)

    def _check_duration(self, decision: str, suspend_seconds: int) -> None:
        if decision == "suspend":
            if not 0 < suspend_seconds <= self.settings.max_suspension.total_seconds():
                raise InvalidArgument(
                    "suspend_seconds", f"a suspension lasts from 1 second to {int(self.settings.max_suspension.total_seconds())} seconds"
                )
        elif suspend_seconds:
            raise InvalidArgument("suspend_seconds", "only a SUSPEND decision has a duration")

    @staticmethod
    def _check(row: Any, moderator: str, decision: str) -> None:
        if row.state == "decided":
            raise FailedPrecondition("this case has been decided", reason="CASE_DECIDED")
        not_about_self(row, moderator)
        if row.claimed_by and row.claimed_by != moderator:
            raise FailedPrecondition("another moderator has claimed this case; take it over first", reason="CASE_CLAIMED")
        if decision in ("block", "delete") and row.node_id is None:
            raise InvalidArgument("decision", "this case is about an account, not a file: it can be dismissed, warned, suspended or terminated")
        if decision == "delete" and row.node_kind == "folder":
            raise InvalidArgument(
                "decision", "this case is about a shared folder's link: block it (the link is disconnected), or delete its files in cases of their own"
            )

    async def decide(self, case_id: str, moderator: str, *, decision: str, reason: str, suspend_seconds: int, allow_export: bool = False) -> Any:
        target = case_id_of(case_id)
        self._check_duration(decision, suspend_seconds)
        if allow_export and decision != "terminate":
            raise InvalidArgument("allow_export", "only a TERMINATE decision leaves the owner a window to take their data out")
        if allow_export and self.settings.termination_export_window <= dt.timedelta(0):
            raise InvalidArgument("allow_export", "this server gives terminated accounts no window to take their data out")
        summary: Any = None
        async with self.db.unit_of_work() as uow:
            row = await self.cases.locked(uow, target)
            self._check(row, moderator, decision)
            pending = await self.effects.of_case(uow, target)
            if pending is not None:
                if pending.purpose != "decision" or pending.decision != decision:
                    raise FailedPrecondition(
                        f"a decision to {pending.decision or pending.action} this case is being carried out", reason="DECISION_PENDING"
                    )
                effect = await self.effects.take_up(uow, pending.effect_id)  # deciding again carries it out again
            else:
                effect = await self._record(
                    uow, row, moderator, decision=decision, reason=reason, suspend_seconds=suspend_seconds, allow_export=allow_export
                )
                if effect is None:
                    summary = await self.cases.summary(uow, target)
            await uow.commit()
        if effect is None:  # decided here; the owner's notice waits for the file's path
            log.info("case_decided", case_id=str(target), decision=decision)
            await self.owners.send(decided_reference(target))
            return summary
        # The effect, in the service that owns the data. If it fails, the case stays undecided:
        # refused, the decision is dropped; interrupted, it stays pending (decide again, or
        # `resume_due` finishes it).
        await self.effects.run(effect)
        log.info("case_decided", case_id=str(target), decision=decision)
        return await self.cases.summary_of(target)

    async def _record(
        self, uow: UnitOfWork, row: Any, moderator: str, *, decision: str, reason: str, suspend_seconds: int, allow_export: bool = False
    ) -> Any | None:
        """The pending effect of a decision, or None when nobody else has anything to do (the
        decision is then recorded here)."""
        now = self.clock.now()
        action = ACTIONS.get(decision) or ("unblock" if decision == "dismiss" and row.auto_blocked else None)
        subject, outcome = "", DONE
        if action is not None:
            subject = account_subject(row.account_id) if action in ("suspend", "terminate") else content_subject(row)
            if not await self.effects.claim(uow, subject):
                raise Unavailable("another decision about this content or account is being carried out; try again", reason="EFFECT_PENDING")
            if action == "unblock" and await blocked_elsewhere(uow, row):
                action, outcome = None, KEPT
        until = now + dt.timedelta(seconds=suspend_seconds) if decision == "suspend" else None
        account = str(row.account_id)
        # The decision is on record before another service acts, whatever happens next: its
        # effect's entry follows it (or one saying the effect was refused).
        await audit.record(
            uow, at=now, actor=moderator, action=f"decision.{decision}", account_id=account, case_id=row.case_id,
            target=audit.case_target(row), reason=reason + NOTES[outcome],
        )
        if action is None:
            await self._decided(uow, row, decision=decision, moderator=moderator, reason=reason, at=now, until=until, place=None)
            return None
        return await self.effects.record(
            uow, purpose="decision", case_id=row.case_id, subject=subject, action=action, account_id=account, node_id=row.node_id,
            link_id=row.link_id, decision=decision, actor=moderator, reason=reason, call_reason=f"case {row.case_id}: {reason}",
            suspended_until=until, at=now, export_until=now + self.settings.termination_export_window if allow_export else None,
        )

    async def _carried_out(self, uow: UnitOfWork, effect: Any, outcome: str, place: Place | None) -> None:
        row = await self.cases.locked(uow, effect.case_id)
        if row.state != "decided":
            await audit.record(
                uow, at=self.clock.now(), actor=effect.actor, action=f"effect.{effect.action}", account_id=row.account_id,
                case_id=row.case_id, target=effect.subject, reason=did(effect, outcome),
            )
            await self._decided(
                uow, row, decision=effect.decision, moderator=effect.actor, reason=effect.reason, at=effect.created_at,
                until=effect.suspended_until, place=place, export_until=effect.export_until,
            )

    async def _decided(
        self, uow: UnitOfWork, row: Any, *, decision: str, moderator: str, reason: str, at: dt.datetime, until: dt.datetime | None,
        place: Place | None, export_until: dt.datetime | None = None,
    ) -> None:
        """`at`: when the moderator decided (a suspension runs from then). `place`: where the
        case's content is, None when not looked up (the notice then waits for it)."""
        account = str(row.account_id)
        await uow.execute(
            sa.update(cases)
            .where(cases.c.case_id == row.case_id)
            .values(
                state="decided", decision=decision, decided_by=moderator, decided_at=at, reason=reason, suspended_until=until,
                claimed_by=moderator, claimed_at=row.claimed_at or at,
            )
        )
        if decision not in SILENT:
            args = {
                "decision": decision, "category": row.category, "reason": reason, "case_id": str(row.case_id),
                "until": self.owners.local(until) if until else "", "counter_wait": notices.span(self.settings.counter_notice_wait),
                "node_kind": row.node_kind or "file", "export_until": self.owners.local(export_until) if export_until else "",
            }
            await self.owners.tell(
                uow, account_id=account, reference=decided_reference(row.case_id), kind="decided", args=args,
                about=self.owners.about(row), node_id=row.node_id, place=place,
            )
        if row.category == "copyright" and decision in ("block", "delete"):
            await self._strike(uow, row.account_id, row.case_id, self.clock.now())

    async def _strike(self, uow: UnitOfWork, account_id: uuid.UUID, case_id: uuid.UUID, now: dt.datetime) -> None:
        """An upheld copyright takedown; at the threshold, a termination review is queued."""
        await uow.execute(pg_insert(strikes).values(case_id=case_id, account_id=account_id, at=now).on_conflict_do_nothing())
        active = (
            await uow.execute(
                sa.select(sa.func.count()).select_from(strikes).where(strikes.c.account_id == account_id, strikes.c.withdrawn_at.is_(None))
            )
        ).scalar_one()
        if active >= self.settings.repeat_infringer_strikes:
            await self.cases.open(
                uow, kind="repeat_infringer", category="copyright", target_kind="account", account_id=account_id,
                actor="system:repeat-infringer", reason=f"{active} upheld copyright takedowns (threshold {self.settings.repeat_infringer_strikes})",
            )
