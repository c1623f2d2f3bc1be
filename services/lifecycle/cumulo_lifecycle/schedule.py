"""The calendar applied to a ledger row: when the sweeper next looks at the account, and
what is due now. Rows carry `held` (asked of the legal holds in the statement that read them)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from cumulo_lifecycle.domain.calendar import ACTIVE, Calendar, Step

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
