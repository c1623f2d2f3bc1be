"""The calendar applied to a ledger row: when the sweeper next looks at the account, which rows
it takes, and what is due now. Rows carry `held` (asked of the legal holds in the statement that
read them)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo_lifecycle.adapters.tables import accounts
from cumulo_lifecycle.domain.calendar import ACTIVE, FROZEN, Calendar, Step

_SCHEDULE_FIELDS = ("state", "last_access_at", "freeze_at", "frozen_at", "delete_at", "reminders_done", "held")


@dataclasses.dataclass(frozen=True)
class Planned:
    """One action of a sweep (done, or only planned by a dry run)."""

    account_id: uuid.UUID
    action: str
    due_at: dt.datetime


class Schedule:
    def __init__(self, calendar: Calendar) -> None:
        self.cal = calendar

    def taken(self, now: dt.datetime) -> sa.ColumnElement[bool]:
        """The rows the sweeper takes at `now`: due ones, and a deletion only once the safety
        margin has passed too (as `Calendar.step` deletes; test_schedule_taken.py holds the two
        together). The margin is applied here, never stored: restarting with another margin
        re-times every frozen account at once, at no cost. The `accounts_next_due` index finds
        the due rows; of those, only deletions due within the last margin are passed over (a
        few per hour even with 100M accounts)."""
        c = accounts.c
        deletion = sa.and_(c.state == FROZEN, c.next_due_at >= c.delete_at)
        return sa.and_(c.next_due_at <= now, sa.or_(sa.not_(deletion), c.delete_at <= now - self.cal.safety_margin))

    def next_due(self, row: Any, **changes: Any) -> dt.datetime | None:
        merged = {**{k: getattr(row, k) for k in _SCHEDULE_FIELDS}, **changes}
        return self.cal.next_due(**merged)

    def step(self, row: Any, now: dt.datetime) -> Step | None:
        return self.cal.step(now, **{k: getattr(row, k) for k in _SCHEDULE_FIELDS})

    def active(self, last_access: dt.datetime) -> dict[str, Any]:
        """The columns of an active account last used at `last_access`."""
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
