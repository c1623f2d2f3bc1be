"""Effects another service carries out for moderation: blocking or unblocking content (a file,
or a shared folder's link), deleting a file, suspending or terminating an account, putting
blocklist entries into blob or taking them out (in every account).

No call to another service is made while a unit of work is open: it would hold row locks (and
a connection) for as long as the other service takes. So an effect goes in three steps:
1. recorded as pending (`effects`), in the unit of work that decides it, with its purpose (a
   case's decision, a takedown's restore, a blocklist match) and what the purpose needs later;
2. carried out by the other service, outside any unit of work (every call is idempotent);
3. finished in a new unit of work by its purpose's finisher (the case recorded as decided, the
   content as restored, the match queued), which also removes the pending record. When the
   owner is to be told, the finisher is handed where the content is (its path as the owner
   sees it): looked up once the effect is carried out (a failed attempt asks nothing), or
   before a delete (after it, the file has no path) and then kept with the effect, so that a
   retry does not ask again.
An effect that is refused, or given up, leaves an entry in the audit log saying so.
A pending effect whose step 2 or 3 was interrupted (a crash, an outage) is taken up again by
`resume_due` once its lease is over. One effect at a time acts on a subject (a file, a link,
an account, a blocklist entry's digest), so that a block and an unblock of the same content
never cross on their way."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cumulo_moderation import audit
from cumulo_moderation.adapters.services import Services, StoredCopy
from cumulo_moderation.adapters.tables import cases, effects
from cumulo_moderation.domain import notices
from cumulo_moderation.domain.notices import Place
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, is_outage
from cumulo_platform.logging import get_logger

log = get_logger(__name__)
# Answers that no retry changes: the effect is dropped and the refusal passed on.
REFUSALS = (NotFound, FailedPrecondition, PermissionDenied, InvalidArgument)
MAX_BACKOFF = dt.timedelta(minutes=5)
# Failures that are not outages (a bug, an INTERNAL answer) are tried this many times, then the
# effect is dropped: it must not keep its content or account taken for ever.
MAX_ATTEMPTS = 8

# How an effect ended, and what the audit log adds to the decision's reason.
DONE, GONE, CLOSED, KEPT, LISTED = "done", "gone", "closed", "kept", "listed"
NOTES = {
    DONE: "",
    GONE: " (the content no longer exists)",
    CLOSED: " (the account was closed already; its deletion runs)",
    KEPT: " (it stays blocked: another case's decision blocks it)",
    LISTED: " (it stays blocked: its content is on the blocklist)",
}
# Effects on blocklist entries: by their digests, in every account.
CONTENT_ACTIONS = frozenset({"block_content", "unblock_content"})

# (the unit of work, the pending effect, how it ended, where its content was or None):
# records what the effect was for.
Finisher = Callable[[UnitOfWork, Any, str, Place | None], Awaitable[None]]
# (the unit of work, the pending effect on blocklist entries, the stored copies it reached,
# whether it reached more than blob named): records what the effect was for.
ContentFinisher = Callable[[UnitOfWork, Any, list[StoredCopy], bool], Awaitable[None]]
# The stored copies an effect on blocklist entries reached, and whether there were more.
Reached = tuple[list[StoredCopy], bool]
NOTHING_REACHED: Reached = ([], False)
# (account id, node id): where the owner's file or folder is; never raises.
Locator = Callable[[Any, Any], Awaitable[Place]]
# (the pending effect): whether its finisher tells the owner about the content.
Tells = Callable[[Any], bool]
# What an effect did, for the audit log: by action, and whether it acted on a link.
DID = {
    ("block", False): "file blocked; its share links disconnected",
    ("block", True): "share link disconnected",
    ("unblock", False): "file unblocked; the share links the block disconnected reconnected",
    ("unblock", True): "share link reconnected",
    ("delete", False): "file deleted",
    ("suspend", False): "account suspended",
    ("terminate", False): "account closed; the lifecycle deletes its data",
    ("block_content", False): "uploads of the content refused in every account; its stored copies blocked, their share links disconnected",
    ("unblock_content", False): "uploads of the content allowed again; its stored copies that no account's own block holds unblocked",
}


def did(effect: Any, outcome: str) -> str:
    """What the effect did, for its audit entry."""
    text = DID.get((effect.action, effect.subject.startswith("link:")), effect.action)
    if effect.action == "suspend" and effect.suspended_until:
        text += f" until {audit.when(effect.suspended_until)}"
    return text + NOTES[outcome]


def content_subject(row: Any) -> str:
    """What blocking a case's content acts on: a shared folder is blocked by its link."""
    return f"link:{row.link_id}" if row.node_kind == "folder" else f"file:{row.node_id}"


def account_subject(account_id: Any) -> str:
    return f"account:{account_id}"


async def blocked_elsewhere(uow: UnitOfWork, row: Any) -> bool:
    """Whether another case keeps this case's content blocked: a block that stands, or an
    automatic block that was not dismissed. One case's dismissal or restore does not undo
    another case's block — nor that of a case about another file of the same bytes in the
    account (blob blocks a file's content in its account, every copy of it)."""
    if row.node_kind == "folder":
        same = cases.c.link_id == row.link_id
    else:
        same = cases.c.node_id == row.node_id
        if row.sha256:
            twin = sa.and_(cases.c.account_id == row.account_id, cases.c.sha256 == row.sha256, cases.c.node_kind != "folder")
            same = sa.or_(same, twin)
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


class Effects:
    def __init__(self, db: Database, clock: Clock, services: Services, *, lease: dt.timedelta, locate: Locator) -> None:
        self.db = db
        self.clock = clock
        self.services = services
        self.locate = locate
        # How long whoever records or takes up an effect has to carry it out before
        # `resume_due` considers it interrupted (a few call deadlines).
        self.lease = lease
        self._finishers: dict[str, Finisher] = {}
        self._content_finishers: dict[str, ContentFinisher] = {}
        self._tells: dict[str, Tells] = {}

    def on_done(self, purpose: str, finish: Finisher, *, tells: Tells = lambda effect: True) -> None:
        """`tells`: whether the finisher of an effect tells the owner about its content (the
        content's place is looked up only then)."""
        self._finishers[purpose] = finish
        self._tells[purpose] = tells

    def on_content_done(self, purpose: str, finish: ContentFinisher) -> None:
        """The finisher of effects on blocklist entries, handed the stored copies reached."""
        self._content_finishers[purpose] = finish
        self._tells[purpose] = lambda effect: False

    # --- step 1 ---------------------------------------------------------------------------------

    async def claim(self, uow: UnitOfWork, subject: str) -> bool:
        """Takes the subject until the unit of work ends (another claim waits) and answers
        whether no effect is pending on it: the caller may then look at the content's state
        and record an effect, with nothing changing in between."""
        await uow.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"moderation-effect:{subject}", 0))))
        return (await uow.execute(sa.select(effects.c.effect_id).where(effects.c.subject == subject))).first() is None

    async def claim_digests(self, uow: UnitOfWork, digests: list[str]) -> bool:
        """`claim` for blocklist entries: whether no pending effect names any of the digests.
        Changes to the blocklist take one lock, so that two never both find none."""
        await uow.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended("moderation-effect:blocklist", 0))))
        named = effects.c.digests.overlap(sa.cast(digests, postgresql.ARRAY(sa.Text)))
        return (await uow.execute(sa.select(effects.c.effect_id).where(named).limit(1))).first() is None

    async def of_case(self, uow: UnitOfWork, case_id: uuid.UUID) -> Any | None:
        return (await uow.execute(sa.select(effects).where(effects.c.case_id == case_id).with_for_update())).first()

    async def record(
        self, uow: UnitOfWork, *, purpose: str, subject: str, action: str, account_id: Any, actor: str, reason: str,
        call_reason: str, case_id: uuid.UUID | None = None, node_id: Any = None, link_id: Any = None, sha256: str = "",
        decision: str = "", suspended_until: dt.datetime | None = None, due_now: bool = False, at: dt.datetime | None = None,
        digests: list[str] | None = None, export_until: dt.datetime | None = None,
    ) -> Any:
        """The pending effect, after `claim` (`claim_digests` for blocklist entries, which name
        no account and give their `digests`). `reason` is the purpose's own (a moderator's,
        a blocklist entry's), `call_reason` what the other service records. `due_now`: no
        caller carries it out now; `resume_due` does. `at`: when it was decided (now)."""
        now = at or self.clock.now()
        return (
            await uow.execute(
                sa.insert(effects)
                .values(
                    effect_id=uuid.uuid4(), purpose=purpose, case_id=case_id, subject=subject, action=action,
                    account_id=uuid.UUID(str(account_id)) if account_id else None, node_id=uuid.UUID(str(node_id)) if node_id else None,
                    link_id=uuid.UUID(str(link_id)) if link_id else None, sha256=sha256, decision=decision, actor=actor,
                    reason=reason, call_reason=call_reason, suspended_until=suspended_until, export_until=export_until, created_at=now,
                    due_at=now if due_now else now + self.lease, digests=digests,
                )
                .returning(*effects.c)
            )
        ).one()

    async def take_up(self, uow: UnitOfWork, effect_id: uuid.UUID) -> Any:
        """A pending effect, leased to the caller who carries it out now."""
        return (
            await uow.execute(
                sa.update(effects).where(effects.c.effect_id == effect_id).values(due_at=self.clock.now() + self.lease).returning(*effects.c)
            )
        ).one()

    # --- steps 2 and 3 ----------------------------------------------------------------------

    async def run(self, effect: Any) -> bool:
        """Carries the effect out and finishes it; answers False when someone else finished
        it meanwhile. A refusal (the content or account is not as the effect needs it) drops
        the pending effect and is raised; any other failure (an outage) leaves it pending for
        `resume_due`, a little later each time, and is raised: for as long as an outage lasts,
        `MAX_ATTEMPTS` times for anything else."""
        tells = effect.node_id is not None and self._tells[effect.purpose](effect)
        place = Place(**effect.place) if effect.place else None
        if tells and place is None and effect.action == "delete":
            place = await self.locate(effect.account_id, effect.node_id)
        try:
            outcome, reached = await self._carry_out(effect)
        except REFUSALS as err:
            await self._drop(effect, "effect.refused", f"not carried out: {err.reason or type(err).__name__}: {err.message}")
            log.warning("effect_refused", effect_id=str(effect.effect_id), purpose=effect.purpose, action=effect.action, reason=err.reason)
            raise
        except Exception as exc:
            if not is_outage(exc) and effect.attempts + 1 >= MAX_ATTEMPTS:
                why = f"not carried out: given up after {effect.attempts + 1} attempts ({type(exc).__name__})"
                await self._drop(effect, "effect.given_up", why)
                log.error("effect_given_up", effect_id=str(effect.effect_id), purpose=effect.purpose, action=effect.action, error=type(exc).__name__)
            else:
                await self._postpone(effect, place)
            raise
        if tells and place is None:
            place = notices.GONE if outcome == GONE else await self.locate(effect.account_id, effect.node_id)
        return await self._finish(effect, outcome, place, reached)

    async def _carry_out(self, effect: Any) -> tuple[str, Reached]:
        """How the effect ended, and (blocklist entries) the stored copies it reached."""
        account, told, actor = str(effect.account_id), effect.call_reason, effect.actor
        if effect.action in CONTENT_ACTIONS:
            blocked = effect.action == "block_content"
            return DONE, await self.services.block_content(list(effect.digests), blocked=blocked, reason=told, actor=actor)
        if effect.action in ("block", "unblock"):
            blocked = effect.action == "block"
            try:
                if effect.subject.startswith("link:"):
                    await self.services.block_link(str(effect.link_id), blocked=blocked, reason=told, actor=actor)
                elif await self.services.block(account, str(effect.node_id), blocked=blocked, reason=told, actor=actor) and not blocked:
                    return LISTED, NOTHING_REACHED  # unblocked, the file stays blocked: its content is listed
            except NotFound:
                return GONE, NOTHING_REACHED
        elif effect.action == "delete":
            await self.services.delete_file(account, str(effect.node_id), reason=told, actor=actor)
        elif effect.action == "suspend":
            await self.services.suspend(account, effect.suspended_until, reason=told, actor=actor)
        elif effect.action == "terminate":
            try:
                await self.services.terminate(account, reason=told, actor=actor, export_until=effect.export_until)
            except FailedPrecondition as err:
                if err.reason != "ACCOUNT_CLOSED":
                    raise
                return CLOSED, NOTHING_REACHED
        else:
            raise ValueError(f"no such effect: {effect.action}")
        return DONE, NOTHING_REACHED

    async def _finish(self, effect: Any, outcome: str, place: Place | None, reached: Reached) -> bool:
        async with self.db.unit_of_work() as uow:
            # The finisher locks its case first, as step 1 does: the two never deadlock.
            if effect.purpose in self._content_finishers:
                await self._content_finishers[effect.purpose](uow, effect, *reached)
            else:
                await self._finishers[effect.purpose](uow, effect, outcome, place)
            gone = (await uow.execute(sa.delete(effects).where(effects.c.effect_id == effect.effect_id))).rowcount
            if not gone:
                return False  # finished (or dropped) by someone else: what was done here rolls back
            await uow.commit()
        log.info("effect_done", effect_id=str(effect.effect_id), purpose=effect.purpose, action=effect.action, outcome=outcome)
        return True

    async def _drop(self, effect: Any, action: str, why: str) -> None:
        async with self.db.unit_of_work() as uow:
            gone = (await uow.execute(sa.delete(effects).where(effects.c.effect_id == effect.effect_id))).rowcount
            if gone:
                await audit.record(
                    uow, at=self.clock.now(), actor=effect.actor, action=action, account_id=effect.account_id, case_id=effect.case_id,
                    target=effect.subject, reason=f"{effect.action} {why}",
                )
            await uow.commit()

    async def _postpone(self, effect: Any, place: Place | None) -> None:
        """`place`: where the content was found before acting; kept when known, so that a
        retry names it as it was (a delete) without asking blob again."""
        delay = min(dt.timedelta(seconds=2 ** min(effect.attempts + 1, 10)), MAX_BACKOFF)
        kept = dataclasses.asdict(place) if place is not None and place.known else effects.c.place
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(effects)
                .where(effects.c.effect_id == effect.effect_id)
                .values(attempts=effects.c.attempts + 1, due_at=self.clock.now() + delay, place=kept)
            )
            await uow.commit()

    # --- the job --------------------------------------------------------------------------------

    async def resume_due(self) -> int:
        """Takes up the pending effects whose lease is over, one at a time; replicas share
        them (SKIP LOCKED). Answers how many it finished."""
        finished = 0
        while True:
            async with self.db.unit_of_work() as uow:
                due = (
                    await uow.execute(
                        sa.select(effects.c.effect_id)
                        .where(effects.c.due_at <= self.clock.now())
                        .order_by(effects.c.due_at)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).scalar_one_or_none()
                if due is None:
                    return finished
                effect = await self.take_up(uow, due)
                await uow.commit()
            try:
                finished += await self.run(effect)
            except Exception as exc:  # the effect is dropped or postponed; the next one goes on
                log.warning("effect_not_done", effect_id=str(effect.effect_id), purpose=effect.purpose, error=type(exc).__name__)
