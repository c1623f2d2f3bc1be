"""The calendar rules of the inactivity lifecycle, pure and without I/O.

- Freeze is due `inactivity` after the last access. Calendar months count on the wall clock
  of the configured time zone, clamped to the month's end (31 Jan + 1 month = 28/29 Feb;
  29 Feb + 12 months = 28 Feb); a fixed part (days, hours, seconds) is then added exactly.
- Deletion is due at the end of the last natural day of the grace period, in the configured
  time zone: frozen on day D with P30D, the data goes when day D+30 ends (00:00 of D+31).
  A grace period written with hours, minutes or seconds (tests, staging) is exact instead.
- Reminders come a fixed time before a due date; only those after the last access (before a
  freeze) or after the freeze (before a deletion) count.
- Deletion runs `safety_margin` after its due time, so in-flight access events land first.
  The margin is never part of a stored due time: `next_due` is when the next thing falls due
  (the deletion at `delete_at`), and the sweeper's query adds the margin to the deletions it
  takes (`Schedule.taken`), so a changed margin applies at once to every frozen account.
"""

from __future__ import annotations

import calendar as _calendar
import dataclasses
import datetime as dt
import zoneinfo

from cumulo_platform.durations import IsoDuration

ACTIVE, FROZEN, DELETING, DELETED = "active", "frozen", "deleting", "deleted"
DAY = dt.timedelta(days=1)


def add_months_local(when: dt.datetime, months: int, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """`months` calendar months later on the wall clock of `tz` (day clamped to the month's end)."""
    if not months:
        return when
    local = when.astimezone(tz)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, _calendar.monthrange(year, month)[1])
    moved = local.replace(tzinfo=None).replace(year=year, month=month, day=day)
    return moved.replace(tzinfo=tz).astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True)
class Step:
    """What the sweeper does for an account now: freeze, delete, or remind (`index` is the
    reminder's position among the due date's reminders)."""

    action: str  # "freeze", "delete", "remind_freeze", "remind_deletion"
    due_at: dt.datetime
    index: int = 0


@dataclasses.dataclass(frozen=True)
class Calendar:
    inactivity: IsoDuration
    grace: IsoDuration
    time_zone: zoneinfo.ZoneInfo
    safety_margin: dt.timedelta
    freeze_reminders: tuple[dt.timedelta, ...] = ()  # longest first
    deletion_reminders: tuple[dt.timedelta, ...] = ()  # longest first

    @property
    def exact_grace(self) -> bool:
        """A grace written with hours, minutes or seconds (even PT24H) ends at an exact time;
        one of months and days ends when its last natural day ends."""
        return "T" in self.grace.text

    def freeze_at(self, last_access: dt.datetime) -> dt.datetime:
        return add_months_local(last_access, self.inactivity.months, self.time_zone) + self.inactivity.fixed

    def delete_at(self, frozen_at: dt.datetime) -> dt.datetime:
        if self.exact_grace:
            return add_months_local(frozen_at, self.grace.months, self.time_zone) + self.grace.fixed
        first_day = frozen_at.astimezone(self.time_zone).date()
        last_day = _add_months_to_date(first_day, self.grace.months) + self.grace.fixed
        end = dt.datetime.combine(last_day + DAY, dt.time(0), tzinfo=self.time_zone)
        return end.astimezone(dt.UTC)

    def last_day_of_grace(self, delete_at: dt.datetime) -> dt.date:
        """The last natural day the data is kept (for notices)."""
        # The instant before, in UTC, then local: local arithmetic would step over a skipped midnight.
        return (delete_at - dt.timedelta(microseconds=1)).astimezone(self.time_zone).date()

    @staticmethod
    def _reminders(due: dt.datetime, offsets: tuple[dt.timedelta, ...], after: dt.datetime) -> list[dt.datetime]:
        return [due - offset for offset in offsets if due - offset > after]

    def freeze_reminder_times(self, last_access: dt.datetime, freeze_at: dt.datetime) -> list[dt.datetime]:
        return self._reminders(freeze_at, self.freeze_reminders, last_access)

    def deletion_reminder_times(self, frozen_at: dt.datetime, delete_at: dt.datetime) -> list[dt.datetime]:
        return self._reminders(delete_at, self.deletion_reminders, frozen_at)

    def next_due(
        self,
        *,
        state: str,
        last_access_at: dt.datetime,
        freeze_at: dt.datetime | None,
        frozen_at: dt.datetime | None,
        delete_at: dt.datetime | None,
        reminders_done: int,
        held: bool,
    ) -> dt.datetime | None:
        """When the next thing falls due (None: nothing to do); the ledger stores it. For the
        deletion that is `delete_at`: the safety margin is added when the sweeper takes it."""
        if state == ACTIVE and freeze_at is not None:
            return min([*self.freeze_reminder_times(last_access_at, freeze_at)[reminders_done:], freeze_at])
        if state == FROZEN and frozen_at is not None and delete_at is not None and not held:
            reminders = self.deletion_reminder_times(frozen_at, delete_at)[reminders_done:]
            return min([*reminders, delete_at])
        return None

    def step(
        self,
        now: dt.datetime,
        *,
        state: str,
        last_access_at: dt.datetime,
        freeze_at: dt.datetime | None,
        frozen_at: dt.datetime | None,
        delete_at: dt.datetime | None,
        reminders_done: int,
        held: bool,
    ) -> Step | None:
        """What is due now; of several reminders that came due together only the latest is sent."""
        if state == ACTIVE and freeze_at is not None:
            if now >= freeze_at:
                return Step("freeze", freeze_at)
            times = self.freeze_reminder_times(last_access_at, freeze_at)
            due = [i for i, at in enumerate(times) if i >= reminders_done and at <= now]
            return Step("remind_freeze", times[due[-1]], due[-1]) if due else None
        if state == FROZEN and frozen_at is not None and delete_at is not None and not held:
            if now >= delete_at + self.safety_margin:
                return Step("delete", delete_at)
            times = self.deletion_reminder_times(frozen_at, delete_at)
            due = [i for i, at in enumerate(times) if i >= reminders_done and at <= now]
            return Step("remind_deletion", times[due[-1]], due[-1]) if due else None
        return None


def _add_months_to_date(day: dt.date, months: int) -> dt.date:
    if not months:
        return day
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, _calendar.monthrange(year, month)[1]))
