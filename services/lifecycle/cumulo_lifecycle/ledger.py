"""The account ledger: last access, the state machine, the sweeper and the deletion saga.

`ACTIVE → FROZEN → (ACTIVE | DELETING → DELETED)`, plus cancellation (`→ DELETING`) and
legal hold (blocks deletion until released). Every transition happens in one transaction
with the account row locked, re-checks its condition there, bumps the row's version, records
the transition, queues its notices and emits `account.state_changed` through the outbox.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_lifecycle.adapters.contacts import ContactLookup
from cumulo_lifecycle.adapters.tables import (
    accounts,
    notices,
    purge_participants,
    purges,
    reactivation_links,
    tombstones,
    transitions,
)
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.domain import notices as texts
from cumulo_lifecycle.domain.calendar import ACTIVE, DELETED, DELETING, FROZEN, Step
from cumulo_platform.account_states import EVENT_TYPE as STATE_EVENT
from cumulo_platform.account_states import AccountDeleted
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import FailedPrecondition, InvalidArgument, NotFound, parse_id, require_audit
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.logging import get_logger

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class Planned:
    account_id: uuid.UUID
    action: str
    due_at: dt.datetime


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _locale(value: str) -> str:
    return value if value in texts.LOCALES else texts.LOCALES[0]


def _from_stamp(stamp: Any) -> dt.datetime:
    return stamp.ToDatetime(tzinfo=dt.UTC)


# Access events, applied in bulk: new accounts appear, active ones move their clock forward
# only (duplicates and late events match nothing), other states are left to the transitions.
_APPLY_ACCESS = sa.text(
    """
    INSERT INTO lifecycle.accounts AS a
        (account_id, state, last_access_at, freeze_at, next_due_at, reminders_done, updated_at)
    SELECT id, 'active', at, freeze_at, next_due, 0, :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:last_access AS timestamptz[]),
                CAST(:freeze_at AS timestamptz[]), CAST(:next_due AS timestamptz[])) AS e(id, at, freeze_at, next_due)
    ON CONFLICT (account_id) DO UPDATE
    SET last_access_at = excluded.last_access_at, freeze_at = excluded.freeze_at,
        next_due_at = excluded.next_due_at, reminders_done = 0, updated_at = excluded.updated_at
    WHERE a.state = 'active' AND a.last_access_at < excluded.last_access_at
    """
)
_FROZEN_AMONG = sa.text(
    "SELECT account_id, last_access_at FROM lifecycle.accounts "
    "WHERE account_id = ANY(CAST(:ids AS uuid[])) AND state = 'frozen'"
)


class Ledger:
    def __init__(self, db: Database, settings: LifecycleSettings, clock: Clock, contacts: ContactLookup) -> None:
        self.db = db
        self.contacts = contacts
        self.settings = settings
        self.cal = settings.calendar
        self.clock = clock

    # --- schedule -----------------------------------------------------------------------

    def _next_due(self, row: Any, **changes: Any) -> dt.datetime | None:
        merged = {**{k: getattr(row, k) for k in ("state", "last_access_at", "freeze_at", "frozen_at", "delete_at", "reminders_done", "held")}, **changes}
        return self.cal.next_due(**merged)

    def _active_schedule(self, last_access: dt.datetime) -> dict[str, Any]:
        freeze_at = self.cal.freeze_at(last_access)
        return {
            "last_access_at": last_access,
            "freeze_at": freeze_at,
            "reminders_done": 0,
            "next_due_at": self.cal.next_due(
                state=ACTIVE, last_access_at=last_access, freeze_at=freeze_at, frozen_at=None, delete_at=None,
                reminders_done=0, held=False,
            ),
        }

    # --- tracking use ------------------------------------------------------------------

    async def apply_access_batch(self, envelopes: list[events_pb2.Envelope], uow: UnitOfWork) -> None:
        """`access.recorded` events, a fetched batch at a time: last access only moves forward
        (duplicates and out-of-order events change nothing); a frozen account used after its
        last known access is reactivated."""
        latest: dict[uuid.UUID, dt.datetime] = {}
        for envelope in envelopes:
            event = events_pb2.AccessRecorded()
            if not envelope.payload.Unpack(event):
                continue
            try:
                account_id = uuid.UUID(event.account_id)
            except ValueError:
                log.warning("access_event_bad_account")
                continue
            at = _from_stamp(event.accessed_at)
            if account_id not in latest or at > latest[account_id]:
                latest[account_id] = at
        if not latest:
            return
        ordered = sorted(latest.items())
        schedules = [self._active_schedule(at) for _, at in ordered]
        params = {
            "ids": [account_id for account_id, _ in ordered],
            "last_access": [at for _, at in ordered],
            "freeze_at": [sched["freeze_at"] for sched in schedules],
            "next_due": [sched["next_due_at"] for sched in schedules],
            "now": self.clock.now(),
        }
        # One statement with four arrays, however big the batch: no per-row SQL to build.
        await uow.execute(_APPLY_ACCESS, params)
        frozen = (await uow.execute(_FROZEN_AMONG, {"ids": params["ids"]})).all()
        for account_id, last_access in frozen:
            if latest[account_id] <= last_access:
                continue
            row = await self._lock(uow, account_id)
            if row.state == FROZEN and latest[account_id] > row.last_access_at:
                await self._reactivate(uow, row, at=latest[account_id], reason="used")

    # --- account events from auth, purge reports from the data services ----------------

    async def apply_account_event(self, envelope: events_pb2.Envelope, uow: UnitOfWork) -> None:
        if envelope.type == "account.created":
            event = events_pb2.AccountCreated()
            envelope.payload.Unpack(event)
            await self._account_created(uow, event)
        elif envelope.type == "account.contact_changed":
            changed = events_pb2.ContactChanged()
            envelope.payload.Unpack(changed)
            found = await self.contacts(changed.account_id)
            if found is not None:
                email, phone, locale = found
                await uow.execute(
                    sa.update(accounts)
                    .where(accounts.c.account_id == uuid.UUID(changed.account_id), accounts.c.state.in_((ACTIVE, FROZEN)))
                    .values(email=email or None, phone=phone or None, locale=_locale(locale), updated_at=self.clock.now())
                )
        elif envelope.type == "account.cancelled":
            cancelled = events_pb2.AccountCancelled()
            envelope.payload.Unpack(cancelled)
            await self._deletion_asked(uow, uuid.UUID(cancelled.account_id), _from_stamp(cancelled.cancelled_at), "cancellation")
        elif envelope.type == "account.status_changed":
            changed_status = events_pb2.AccountStatusChanged()
            envelope.payload.Unpack(changed_status)
            if changed_status.status == "terminated":
                await self._deletion_asked(uow, uuid.UUID(changed_status.account_id), _from_stamp(envelope.occurred_at), "termination")
        elif envelope.type == "notice.requested":
            wanted = events_pb2.NoticeRequested()
            envelope.payload.Unpack(wanted)
            await self._notice_requested(uow, wanted)
        elif envelope.type == "purge.completed":
            completed = events_pb2.PurgeCompleted()
            envelope.payload.Unpack(completed)
            await self._purge_completed(uow, completed)

    async def _account_created(self, uow: UnitOfWork, event: events_pb2.AccountCreated) -> None:
        """A new account's clock starts at its creation (an access seen first keeps the later time)."""
        created = _from_stamp(event.created_at)
        now = self.clock.now()
        email, phone, locale = await self.contacts(event.account_id) or ("", "", "")
        values = {
            "account_id": uuid.UUID(event.account_id),
            "state": ACTIVE,
            "created_at": created,
            "email": email or None,
            "phone": phone or None,
            "locale": _locale(locale),
            "updated_at": now,
            **self._active_schedule(created),
        }
        statement = pg_insert(accounts).values(values)
        await uow.execute(
            statement.on_conflict_do_update(
                index_elements=[accounts.c.account_id],
                set_={
                    "created_at": statement.excluded.created_at,
                    "email": statement.excluded.email,
                    "phone": statement.excluded.phone,
                    "locale": statement.excluded.locale,
                    "updated_at": now,
                },
            )
        )

    async def _deletion_asked(self, uow: UnitOfWork, account_id: uuid.UUID, at: dt.datetime, reason: str) -> None:
        """The user cancelled, or a moderator terminated the account: deletion starts now,
        or when a legal hold is released."""
        row = await self._lock(uow, account_id)
        if row is None:
            await uow.execute(
                pg_insert(accounts)
                .values(account_id=account_id, state=ACTIVE, last_access_at=at, updated_at=self.clock.now())
                .on_conflict_do_nothing()
            )
            row = await self._lock(uow, account_id)
        assert row is not None
        if row.state in (DELETING, DELETED):
            return
        if row.held:
            # Deletion waits for the hold's release; the account stays as it is meanwhile.
            await uow.execute(
                sa.update(accounts).where(accounts.c.account_id == account_id).values(cancel_requested_at=at, cancel_reason=reason)
            )
            await self._record(uow, account_id, row.state, row.state, f"{reason} waits for a legal hold")
            return
        await self._start_deletion(uow, row, reason=reason)

    async def _notice_requested(self, uow: UnitOfWork, wanted: events_pb2.NoticeRequested) -> None:
        """Another service's message to an account's owner (moderation), queued like the
        lifecycle's own notices, once per reference and channel."""
        if wanted.account_id:
            recipient = uuid.UUID(wanted.account_id)
            row = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == recipient))).first()
            targets = [(channel, to) for channel, to in (("email", row.email), ("sms", row.phone)) if to] if row is not None else []
        else:
            # Someone without an account: the notice is filed under an id derived from the address.
            row = None
            recipient = uuid.uuid5(uuid.NAMESPACE_URL, f"cumulo:contact:{wanted.address.strip().lower()}")
            targets = [("email" if "@" in wanted.address else "sms", wanted.address.strip())] if wanted.address.strip() else []
        locale = row.locale if row is not None else texts.LOCALES[0]
        await self._queue(uow, recipient, "service", wanted.reference, locale, wanted.subject, wanted.body, targets)

    async def _queue(
        self, uow: UnitOfWork, account_id: uuid.UUID, kind: str, cycle: str, locale: str, subject: str, body: str,
        targets: list[tuple[str, str]],
    ) -> None:
        """One notice per channel, once per kind and occurrence; with no contact method, a
        record that it could not be sent (SPEC R2.5: the lifecycle goes on regardless)."""
        now = self.clock.now()
        common = {"account_id": account_id, "kind": kind, "cycle": cycle, "locale": locale, "subject": subject, "created_at": now}
        values = [
            {"notice_id": uuid.uuid4(), "channel": channel, "destination": to, "body": body, "status": "pending", "next_attempt_at": now}
            for channel, to in targets
        ] or [{"notice_id": uuid.uuid4(), "channel": "none", "body": "", "status": "undeliverable", "last_error": "no contact method on record"}]
        for value in values:
            await uow.execute(pg_insert(notices).values(**common, **value).on_conflict_do_nothing())

    # --- transitions -------------------------------------------------------------------

    async def _lock(self, uow: UnitOfWork, account_id: uuid.UUID) -> Any:
        return (await uow.execute(sa.select(accounts).where(accounts.c.account_id == account_id).with_for_update())).first()

    async def _record(self, uow: UnitOfWork, account_id: uuid.UUID, from_state: str, to_state: str, reason: str) -> None:
        await uow.execute(
            sa.insert(transitions).values(
                account_id=account_id, from_state=from_state, to_state=to_state, reason=reason, at=self.clock.now()
            )
        )

    async def _transition(self, uow: UnitOfWork, row: Any, to_state: str, reason: str, **values: Any) -> Any:
        """Writes the new state with a higher version, records it and announces it."""
        now = self.clock.now()
        updated = (
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == row.account_id)
                .values(state=to_state, version=accounts.c.version + 1, updated_at=now, **values)
                .returning(*accounts.c)
            )
        ).one()
        await self._record(uow, row.account_id, row.state, to_state, reason)
        uow.emit(
            STATE_EVENT,
            events_pb2.AccountStateChanged(
                account_id=str(row.account_id),
                state=to_state,
                version=updated.version,
                frozen_at=timestamp(updated.frozen_at) if updated.frozen_at else None,
                delete_at=timestamp(updated.delete_at) if updated.delete_at else None,
                reason=reason,
            ),
            account_id=str(row.account_id),
        )
        log.info("account_transition", account_id=str(row.account_id), from_state=row.state, to_state=to_state, reason=reason)
        return updated

    async def _freeze(self, uow: UnitOfWork, row: Any) -> None:
        now = self.clock.now()
        delete_at = self.cal.delete_at(now)
        updated = await self._transition(
            uow, row, FROZEN, "unused",
            frozen_at=now, delete_at=delete_at, reminders_done=0,
            next_due_at=self.cal.next_due(
                state=FROZEN, last_access_at=row.last_access_at, freeze_at=row.freeze_at, frozen_at=now,
                delete_at=delete_at, reminders_done=0, held=row.held,
            ),
        )
        await self._notify(uow, updated, "frozen", cycle=now.isoformat(), link=True)

    async def _reactivate(self, uow: UnitOfWork, row: Any, *, at: dt.datetime, reason: str) -> Any:
        last_access = max(row.last_access_at, at)
        updated = await self._transition(
            uow, row, ACTIVE, reason,
            frozen_at=None, delete_at=None, **self._active_schedule(last_access),
        )
        await uow.execute(sa.delete(reactivation_links).where(reactivation_links.c.account_id == row.account_id))
        await self._notify(uow, updated, "reactivated", cycle=f"v{updated.version}", at=at)
        return updated

    async def _start_deletion(self, uow: UnitOfWork, row: Any, *, reason: str) -> None:
        now = self.clock.now()
        await self._transition(
            uow, row, DELETING, reason,
            deletion_reason=reason, deletion_started_at=now, next_due_at=None,
        )
        await uow.execute(sa.delete(reactivation_links).where(reactivation_links.c.account_id == row.account_id))
        services = list(self.settings.purge_participants)
        await uow.execute(
            pg_insert(purges)
            .values(account_id=row.account_id, reason=reason, started_at=now, attempt=1, next_retry_at=now + self.settings.purge_retry)
            .on_conflict_do_nothing()
        )
        await uow.execute(
            pg_insert(purge_participants)
            .values([{"account_id": row.account_id, "service": s, "requested_at": now, "attempts": 1} for s in services])
            .on_conflict_do_nothing()
        )
        uow.emit(
            "purge.requested",
            events_pb2.PurgeRequested(account_id=str(row.account_id), reason=reason, attempt=1, services=services),
            account_id=str(row.account_id),
        )

    async def _purge_completed(self, uow: UnitOfWork, event: events_pb2.PurgeCompleted) -> None:
        account_id = uuid.UUID(event.account_id)
        row = await self._lock(uow, account_id)
        if row is None or row.state != DELETING:
            return  # a repeated report after the end, or a purge nobody asked for
        await uow.execute(
            sa.update(purge_participants)
            .where(
                purge_participants.c.account_id == account_id,
                purge_participants.c.service == event.service,
                purge_participants.c.completed_at.is_(None),
            )
            .values(completed_at=self.clock.now(), items_deleted=event.items_deleted)
        )
        participants = (
            await uow.execute(sa.select(purge_participants).where(purge_participants.c.account_id == account_id))
        ).all()
        if participants and all(p.completed_at is not None for p in participants):
            await self._finish_deletion(uow, row, participants)

    async def _finish_deletion(self, uow: UnitOfWork, row: Any, participants: list[Any]) -> None:
        now = self.clock.now()
        await uow.execute(sa.update(purges).where(purges.c.account_id == row.account_id).values(completed_at=now, next_retry_at=None))
        await uow.execute(
            pg_insert(tombstones)
            .values(
                account_id=row.account_id,
                created_at=row.created_at,
                last_access_at=row.last_access_at,
                frozen_at=row.frozen_at,
                deletion_started_at=row.deletion_started_at or now,
                deleted_at=now,
                reason=row.deletion_reason,
                participants={p.service: {"items_deleted": p.items_deleted, "completed_at": p.completed_at.isoformat()} for p in participants},
            )
            .on_conflict_do_nothing()
        )
        updated = await self._transition(uow, row, DELETED, "purged by every service", deleted_at=now, next_due_at=None)
        kind = {"cancellation": "deleted_cancellation", "termination": "deleted_termination"}.get(row.deletion_reason, "deleted")
        await self._notify(uow, updated, kind, cycle="final")
        # The notice keeps its own copy of where it goes; the ledger forgets the contacts.
        await uow.execute(sa.update(accounts).where(accounts.c.account_id == row.account_id).values(email=None, phone=None))

    # --- notices -----------------------------------------------------------------------

    async def _notify(self, uow: UnitOfWork, row: Any, kind: str, *, cycle: str, link: bool = False, at: dt.datetime | None = None) -> None:
        """Queues one notice per contact method (once per kind and occurrence); with `link`,
        it carries a reactivation link of its own."""
        tz = self.cal.time_zone
        token = ""
        if link:
            token = secrets.token_urlsafe(32)
            await uow.execute(
                sa.insert(reactivation_links).values(token_hash=_token_hash(token), account_id=row.account_id, created_at=self.clock.now())
            )
        locale = row.locale if row.locale in texts.LOCALES else texts.LOCALES[0]

        def when(value: dt.datetime | None) -> str:
            return texts.format_time(value, tz) if value else ""

        values = {
            "last_access_at": when(row.last_access_at),
            "freeze_at": when(row.freeze_at),
            "delete_at": when(row.delete_at),
            "last_day": self.cal.last_day_of_grace(row.delete_at).isoformat() if row.delete_at else "",
            "deleted_at": when(row.deleted_at),
            "at": when(at),
            "grace": texts.describe_duration(self.cal.grace.months, self.cal.grace.fixed, locale),
            "reactivate_link": f"{self.settings.reactivate_url}?token={token}" if token else self.settings.reactivate_url,
        }
        rendered = texts.render(kind, locale, values)
        targets = [(channel, to) for channel, to in (("email", row.email), ("sms", row.phone)) if to]
        await self._queue(uow, row.account_id, kind, cycle, locale, rendered.subject, rendered.body, targets)

    # --- the sweeper ---------------------------------------------------------------------

    def _step(self, row: Any, now: dt.datetime) -> Step | None:
        return self.cal.step(
            now, state=row.state, last_access_at=row.last_access_at, freeze_at=row.freeze_at, frozen_at=row.frozen_at,
            delete_at=row.delete_at, reminders_done=row.reminders_done, held=row.held,
        )

    async def sweep(self, *, dry_run: bool = False, limit: int | None = None) -> tuple[list[Planned], int]:
        """Takes due accounts in batches (`FOR UPDATE SKIP LOCKED`: replicas share the work,
        nothing happens twice) and carries out what is due. Returns the plan and how many
        actions were done. A dry run locks nothing and changes nothing."""
        planned: list[Planned] = []
        done = 0
        batch = min(limit or self.settings.sweep_batch, self.settings.sweep_batch)
        if dry_run:
            now = self.clock.now()
            async with self.db.read() as conn:
                rows = (
                    await conn.execute(
                        sa.select(accounts).where(accounts.c.next_due_at <= now).order_by(accounts.c.next_due_at).limit(limit or 1000)
                    )
                ).all()
                for row in rows:
                    step = self._step(row, now)
                    if step is not None:
                        planned.append(Planned(row.account_id, step.action, step.due_at))
                retries = (
                    await conn.execute(
                        sa.select(purges.c.account_id, purges.c.next_retry_at)
                        .where(purges.c.completed_at.is_(None), purges.c.next_retry_at <= now)
                        .limit(limit or 1000)
                    )
                ).all()
            planned += [Planned(r.account_id, "retry_purge", r.next_retry_at) for r in retries]
            return planned, 0
        while True:
            now = self.clock.now()
            async with self.db.unit_of_work() as uow:
                rows = (
                    await uow.execute(
                        sa.select(accounts)
                        .where(accounts.c.next_due_at <= now)
                        .order_by(accounts.c.next_due_at)
                        .limit(batch)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                for row in rows:
                    step = self._step(row, now)
                    if step is None:
                        # Nothing due after all (e.g. a newer access): put the schedule right.
                        await uow.execute(
                            sa.update(accounts).where(accounts.c.account_id == row.account_id).values(next_due_at=self._next_due(row))
                        )
                        continue
                    planned.append(Planned(row.account_id, step.action, step.due_at))
                    await self._carry_out(uow, row, step)
                    done += 1
                await uow.commit()
            if len(rows) < batch or (limit is not None and done >= limit):
                break
        done += await self._retry_purges(planned)
        return planned, done

    async def _carry_out(self, uow: UnitOfWork, row: Any, step: Step) -> None:
        if step.action == "freeze":
            await self._freeze(uow, row)
        elif step.action == "delete":
            await self._start_deletion(uow, row, reason="inactivity")
        else:
            reminders_done = step.index + 1
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == row.account_id)
                .values(reminders_done=reminders_done, next_due_at=self._next_due(row, reminders_done=reminders_done))
            )
            if step.action == "remind_freeze":
                await self._notify(uow, row, "freeze_reminder", cycle=f"{row.freeze_at.isoformat()}#{step.index}")
            else:
                await self._notify(uow, row, "deletion_reminder", cycle=f"{row.delete_at.isoformat()}#{step.index}", link=True)

    async def _retry_purges(self, planned: list[Planned]) -> int:
        """Asks the silent participants of each due purge again, with a growing delay."""
        now = self.clock.now()
        done = 0
        async with self.db.unit_of_work() as uow:
            due = (
                await uow.execute(
                    sa.select(purges)
                    .where(purges.c.completed_at.is_(None), purges.c.next_retry_at <= now)
                    .order_by(purges.c.next_retry_at)
                    .limit(self.settings.sweep_batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for purge in due:
                silent = (
                    await uow.execute(
                        sa.select(purge_participants.c.service).where(
                            purge_participants.c.account_id == purge.account_id, purge_participants.c.completed_at.is_(None)
                        )
                    )
                ).scalars().all()
                attempt = purge.attempt + 1
                delay = min(self.settings.purge_retry * 2 ** min(purge.attempt, 20), self.settings.purge_retry_max)
                await uow.execute(
                    sa.update(purges).where(purges.c.account_id == purge.account_id).values(attempt=attempt, next_retry_at=now + delay)
                )
                if not silent:
                    continue
                await uow.execute(
                    sa.update(purge_participants)
                    .where(purge_participants.c.account_id == purge.account_id, purge_participants.c.completed_at.is_(None))
                    .values(attempts=purge_participants.c.attempts + 1, requested_at=now)
                )
                uow.emit(
                    "purge.requested",
                    events_pb2.PurgeRequested(account_id=str(purge.account_id), reason=purge.reason, attempt=attempt, services=list(silent)),
                    account_id=str(purge.account_id),
                )
                log.warning("purge_requested_again", account_id=str(purge.account_id), attempt=attempt, silent=list(silent))
                planned.append(Planned(purge.account_id, "retry_purge", purge.next_retry_at))
                done += 1
            await uow.commit()
        return done

    # --- the synchronous path ------------------------------------------------------------

    async def ensure_active(self, account_id: str, *, reason: str = "used") -> str:
        """A frozen account is reactivated; once deletion has begun, ACCOUNT_DELETED."""
        account = parse_id(account_id, "account_id", "account")
        async with self.db.read() as conn:
            state = (await conn.execute(sa.select(accounts.c.state).where(accounts.c.account_id == account))).scalar_one_or_none()
        if state is None or state == ACTIVE:
            return ACTIVE
        async with self.db.unit_of_work() as uow:
            row = await self._lock(uow, account)
            if row.state in (DELETING, DELETED):
                raise AccountDeleted()
            if row.state == FROZEN:
                await self._reactivate(uow, row, at=self.clock.now(), reason=reason)
            await uow.commit()
        return ACTIVE

    async def reactivate_with_link(self, token: str) -> str:
        if not token or len(token) > 200:
            raise InvalidArgument("token", "is not a reactivation link token")
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.select(accounts)
                    .join(reactivation_links, reactivation_links.c.account_id == accounts.c.account_id)
                    .where(reactivation_links.c.token_hash == _token_hash(token))
                    .with_for_update(of=accounts)
                )
            ).first()
            if row is None:
                raise NotFound("this reactivation link is not valid (any more); sign in to use your account", reason="LINK_INVALID")
            if row.state == FROZEN:
                await self._reactivate(uow, row, at=self.clock.now(), reason="reactivation link")
            await uow.commit()
        return ACTIVE

    # --- operations -----------------------------------------------------------------------

    async def set_hold(self, account_id: str, *, held: bool, reason: str, actor: str) -> Any:
        account = parse_id(account_id, "account_id", "account")
        require_audit(reason, actor)
        async with self.db.unit_of_work() as uow:
            row = await self._lock(uow, account)
            if row is None:
                raise NotFound("the lifecycle knows no such account", reason="ACCOUNT_NOT_FOUND")
            if row.state == DELETED or (row.state == DELETING and held):
                raise FailedPrecondition(f"the account is {row.state}; a hold comes too late", reason="ACCOUNT_DELETED")
            await uow.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == account)
                .values(
                    held=held,
                    hold_reason=reason if held else "",
                    hold_actor=actor if held else "",
                    next_due_at=self._next_due(row, held=held),
                    updated_at=self.clock.now(),
                )
            )
            await self._record(uow, account, row.state, row.state, f"legal hold {'placed' if held else 'released'} by {actor}: {reason}")
            uow.emit("account.hold_changed", events_pb2.LegalHoldChanged(account_id=str(account), held=held), account_id=str(account))
            if not held and row.cancel_requested_at is not None and row.state in (ACTIVE, FROZEN):
                row = await self._lock(uow, account)
                await self._start_deletion(uow, row, reason=row.cancel_reason or "cancellation")
            row = (await uow.execute(sa.select(accounts).where(accounts.c.account_id == account))).one()
            await uow.commit()
        log.info("lifecycle_hold_set" if held else "lifecycle_hold_released", account_id=str(account), actor=actor)
        return row

    async def get(self, account_id: str) -> tuple[Any, list[Any], list[Any]]:
        account = parse_id(account_id, "account_id", "account")
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.account_id == account))).first()
            if row is None:
                raise NotFound("the lifecycle knows no such account", reason="ACCOUNT_NOT_FOUND")
            history = (await conn.execute(sa.select(transitions).where(transitions.c.account_id == account).order_by(transitions.c.transition_id))).all()
            sent = (await conn.execute(sa.select(notices).where(notices.c.account_id == account).order_by(notices.c.created_at))).all()
        return row, list(history), list(sent)

    async def state_of(self, account_id: str) -> Any | None:
        async with self.db.read() as conn:
            return (await conn.execute(sa.select(accounts).where(accounts.c.account_id == uuid.UUID(account_id)))).first()

    async def list(self, *, state: str, page_size: int, page_token: str) -> tuple[list[Any], str]:
        if not 0 <= page_size <= 1000:
            raise InvalidArgument("page_size", "must be between 1 and 1000")
        size = page_size or 100
        query = sa.select(accounts).order_by(accounts.c.account_id).limit(size + 1)
        if state:
            query = query.where(accounts.c.state == state)
        if page_token:
            query = query.where(accounts.c.account_id > parse_id(page_token, "page_token", "page"))
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > size
        rows = rows[:size]
        return list(rows), str(rows[-1].account_id) if more else ""

    async def report(self) -> dict[str, int]:
        now = self.clock.now()
        week, month = now + dt.timedelta(days=7), now + dt.timedelta(days=30)
        c = accounts.c
        margin = self.cal.safety_margin
        async with self.db.read() as conn:
            counts = dict((await conn.execute(sa.select(c.state, sa.func.count()).group_by(c.state))).all())
            row = (
                await conn.execute(
                    sa.select(
                        sa.func.count().filter(c.held),
                        sa.func.count().filter(c.state == ACTIVE, c.freeze_at <= week),
                        sa.func.count().filter(c.state == ACTIVE, c.freeze_at <= month),
                        sa.func.count().filter(c.state == FROZEN, ~c.held, c.delete_at + margin <= week),
                        sa.func.count().filter(c.state == FROZEN, ~c.held, c.delete_at + margin <= month),
                    )
                )
            ).one()
            stuck = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(purges)
                    .where(purges.c.completed_at.is_(None), purges.c.started_at <= now - self.settings.purge_stuck_after)
                )
            ).scalar_one()
        return {
            "active": counts.get(ACTIVE, 0),
            "frozen": counts.get(FROZEN, 0),
            "deleting": counts.get(DELETING, 0),
            "deleted": counts.get(DELETED, 0),
            "held": row[0],
            "freezes_next_7_days": row[1],
            "freezes_next_30_days": row[2],
            "deletions_next_7_days": row[3],
            "deletions_next_30_days": row[4],
            "stuck_purges": stuck,
        }

    async def purges(self, *, stuck_only: bool) -> list[tuple[Any, list[Any], bool]]:
        now = self.clock.now()
        threshold = now - self.settings.purge_stuck_after
        query = sa.select(purges).where(purges.c.completed_at.is_(None)).order_by(purges.c.started_at).limit(1000)
        if stuck_only:
            query = query.where(purges.c.started_at <= threshold)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
            found = []
            for purge in rows:
                parts = (
                    await conn.execute(
                        sa.select(purge_participants).where(purge_participants.c.account_id == purge.account_id).order_by(purge_participants.c.service)
                    )
                ).all()
                found.append((purge, list(parts), purge.started_at <= threshold))
        return found
