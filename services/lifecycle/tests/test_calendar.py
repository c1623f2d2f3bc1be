"""Unit and property tests for the lifecycle's calendar rules and notice texts (SPEC R1.5, R2.5).

The rules under test, as the product states them:

- An account unused for 12 consecutive calendar months is frozen. Months count on the wall
  clock of the configured time zone (default Asia/Shanghai) and clamp to the month's end:
  31 Jan + 1 month = 28/29 Feb, 29 Feb 2028 + 12 months = 28 Feb 2029. A fixed part
  (days, hours, seconds) of the inactivity period is then added exactly.
- Deletion ("30 natural days"): frozen on local day D with grace P30D, the data goes when day
  D+30 ends, i.e. at 00:00 local of day D+31. A grace with an hours/minutes/seconds part
  (PT3S, ...) is exact instead.
- Reminders come a fixed offset before a due date; only those strictly after the last access
  (freeze reminders) or after the freeze (deletion reminders) count. `step` sends only the
  latest of several reminders due together. Deletion runs at delete_at + safety_margin, and
  never while the account is held.

All inputs are timezone-aware UTC datetimes, as the service passes them. Everything here is
pure: no servers, no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cumulo_lifecycle.domain import notices
from cumulo_lifecycle.domain.calendar import (
    ACTIVE,
    DELETED,
    DELETING,
    FROZEN,
    Calendar,
    Step,
    add_months_local,
)
from cumulo_platform.durations import IsoDuration

UTC = dt.UTC
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
ZONE_UTC = zoneinfo.ZoneInfo("UTC")
# Zones whose DST switch skips local midnight (clocks go 00:00 -> 01:00).
SANTIAGO = zoneinfo.ZoneInfo("America/Santiago")
CAIRO = zoneinfo.ZoneInfo("Africa/Cairo")

NO_DST_ZONES = (SHANGHAI, ZONE_UTC, KOLKATA)
DST_ZONES = (BERLIN, NEW_YORK, SYDNEY)
ZONES = NO_DST_ZONES + DST_ZONES  # every local midnight exists in these

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
MARGIN = HOUR


# --- helpers ---------------------------------------------------------------------------


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def at_local(tz: zoneinfo.ZoneInfo, *args: int, fold: int = 0) -> dt.datetime:
    """The UTC instant of a wall-clock time in `tz`."""
    return dt.datetime(*args, tzinfo=tz, fold=fold).astimezone(UTC)


def wall(when: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The naive wall-clock time of `when` in `tz`."""
    return when.astimezone(tz).replace(tzinfo=None)


def local_date(when: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    return when.astimezone(tz).date()


def make_calendar(
    inactivity: str | IsoDuration = "P12M",
    grace: str | IsoDuration = "P30D",
    tz: zoneinfo.ZoneInfo = SHANGHAI,
    *,
    margin: dt.timedelta = MARGIN,
    freeze_reminders: tuple[dt.timedelta, ...] = (dt.timedelta(days=30), dt.timedelta(days=7)),
    deletion_reminders: tuple[dt.timedelta, ...] = (dt.timedelta(days=7),),
) -> Calendar:
    """A calendar as the service configures it by default (P12M, P30D, reminders P30D,P7D / P7D)."""
    return Calendar(
        inactivity=IsoDuration.parse(inactivity) if isinstance(inactivity, str) else inactivity,
        grace=IsoDuration.parse(grace) if isinstance(grace, str) else grace,
        time_zone=tz,
        safety_margin=margin,
        freeze_reminders=freeze_reminders,
        deletion_reminders=deletion_reminders,
    )


def active(cal: Calendar, last_access: dt.datetime, reminders_done: int = 0, held: bool = False) -> dict:
    """The keyword arguments of next_due/step for an active account."""
    return dict(
        state=ACTIVE,
        last_access_at=last_access,
        freeze_at=cal.freeze_at(last_access),
        frozen_at=None,
        delete_at=None,
        reminders_done=reminders_done,
        held=held,
    )


def frozen(cal: Calendar, frozen_at: dt.datetime, reminders_done: int = 0, held: bool = False) -> dict:
    """The keyword arguments of next_due/step for an account frozen at `frozen_at`."""
    return dict(
        state=FROZEN,
        last_access_at=frozen_at - dt.timedelta(days=400),
        freeze_at=frozen_at,
        frozen_at=frozen_at,
        delete_at=cal.delete_at(frozen_at),
        reminders_done=reminders_done,
        held=held,
    )


# --- hypothesis strategies -------------------------------------------------------------

instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 12, 31), timezones=st.just(UTC))
zones = st.sampled_from(ZONES)
no_dst_zones = st.sampled_from(NO_DST_ZONES)
month_counts = st.integers(min_value=0, max_value=40)
# Calendar periods (months and whole days, as configured for production), never zero.
calendar_periods = st.builds(
    lambda months, days: IsoDuration.parse(f"P{months}M{days}D"),
    st.integers(min_value=0, max_value=36),
    st.integers(min_value=0, max_value=60),
).filter(lambda d: d.months or d.fixed)
# Exact periods (tests, staging): a seconds part that is not whole days.
exact_periods = st.integers(min_value=1, max_value=90 * 86400).filter(lambda s: s % 86400).map(lambda s: IsoDuration.parse(f"PT{s}S"))
# Reminder offsets, longest first as the configuration sorts them.
reminder_offsets = st.lists(
    st.integers(min_value=1, max_value=120 * 86400).map(lambda s: dt.timedelta(seconds=s)), max_size=4, unique=True
).map(lambda xs: tuple(sorted(xs, reverse=True)))
shifts = st.timedeltas(min_value=dt.timedelta(days=-400), max_value=dt.timedelta(days=400))
lags = st.lists(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=10)), min_size=8, max_size=8)

# Derandomized: the same examples every run, so a red CI always means a changed rule.
PROPERTY = settings(deadline=None, max_examples=150, derandomize=True)


# === add_months_local ==================================================================


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ((2026, 1, 31, 10, 0), 1, (2026, 2, 28, 10, 0)),  # Jan 31 -> Feb 28
        ((2028, 1, 31, 10, 0), 1, (2028, 2, 29, 10, 0)),  # Jan 31 -> Feb 29 in a leap year
        ((2026, 3, 31, 23, 59), 1, (2026, 4, 30, 23, 59)),  # Mar 31 -> Apr 30
        ((2026, 1, 31, 10, 0), 12, (2027, 1, 31, 10, 0)),  # 31 Jan + 12 months = 31 Jan
        ((2028, 2, 29, 8, 30), 12, (2029, 2, 28, 8, 30)),  # leap day + 12 months = 28 Feb
        ((2028, 2, 29, 8, 30), 48, (2032, 2, 29, 8, 30)),  # leap day + 4 years = leap day
        ((2027, 2, 28, 8, 30), 12, (2028, 2, 28, 8, 30)),  # not bumped to the leap day
        ((2026, 12, 15, 0, 0), 1, (2027, 1, 15, 0, 0)),  # year rolls over
        ((2026, 11, 30, 0, 0), 3, (2027, 2, 28, 0, 0)),  # over a year end and clamped
        ((2026, 5, 31, 12, 0), 25, (2028, 6, 30, 12, 0)),  # more than two years
    ],
)
def test_add_months_local_clamps_to_the_month_end(start, months, expected):
    result = add_months_local(at_local(SHANGHAI, *start), months, SHANGHAI)
    assert result == at_local(SHANGHAI, *expected)
    assert result.tzinfo is UTC


def test_add_zero_months_is_the_same_instant():
    when = utc(2026, 1, 31, 12)
    assert add_months_local(when, 0, SHANGHAI) == when


def test_add_months_counts_on_the_shanghai_wall_clock_not_utc():
    # 2027-02-28T20:00Z is already 1 Mar 04:00 in Shanghai; 12 months later is 1 Mar 2028 04:00
    # there, i.e. 29 Feb 2028 20:00Z. UTC arithmetic would give 28 Feb 2028 20:00Z.
    when = utc(2027, 2, 28, 20)
    assert add_months_local(when, 12, SHANGHAI) == utc(2028, 2, 29, 20)
    assert add_months_local(when, 12, ZONE_UTC) == utc(2028, 2, 28, 20)


def test_add_months_clamps_by_the_local_day_not_the_utc_day():
    # 2026-01-30T20:00Z is 31 Jan 04:00 in Shanghai: +1 month is 28 Feb 04:00 local (27 Feb 20:00Z).
    assert add_months_local(utc(2026, 1, 30, 20), 1, SHANGHAI) == utc(2026, 2, 27, 20)
    assert add_months_local(utc(2026, 1, 30, 20), 1, ZONE_UTC) == utc(2026, 2, 28, 20)


def test_add_months_keeps_the_berlin_wall_clock_across_dst():
    # 15 Jan 12:00 CET (11:00Z) + 6 months = 15 Jul 12:00 CEST (10:00Z), not 11:00Z.
    assert add_months_local(at_local(BERLIN, 2026, 1, 15, 12), 6, BERLIN) == utc(2026, 7, 15, 10)
    # And back: 15 Jul 12:00 CEST + 6 months = 15 Jan 12:00 CET.
    assert add_months_local(at_local(BERLIN, 2026, 7, 15, 12), 6, BERLIN) == utc(2027, 1, 15, 11)


def test_add_months_uses_the_new_york_local_day():
    # 2026-03-31T02:00Z is still 30 Mar 22:00 EDT in New York: +1 month = 30 Apr 22:00 EDT.
    assert add_months_local(utc(2026, 3, 31, 2), 1, NEW_YORK) == utc(2026, 5, 1, 2)
    # 1 Mar 00:30 EST (05:30Z) + 1 month = 1 Apr 00:30 EDT (04:30Z).
    assert add_months_local(utc(2026, 3, 1, 5, 30), 1, NEW_YORK) == utc(2026, 4, 1, 4, 30)


def test_add_months_into_a_skipped_hour_moves_forward_by_the_gap():
    # 29 Mar 2025 02:30 CET + 12 months = 29 Mar 2026 02:30, which Berlin skips (02:00 -> 03:00):
    # the result is 03:30 CEST (01:30Z), one gap later, as with PEP 495's fold=0.
    result = add_months_local(at_local(BERLIN, 2025, 3, 29, 2, 30), 12, BERLIN)
    assert result == utc(2026, 3, 29, 1, 30)
    assert wall(result, BERLIN) == dt.datetime(2026, 3, 29, 3, 30)


def test_add_months_into_a_repeated_hour_takes_the_first_occurrence():
    # 25 Jan 2026 02:30 CET + 9 months = 25 Oct 2026 02:30, which happens twice: CEST first.
    result = add_months_local(at_local(BERLIN, 2026, 1, 25, 2, 30), 9, BERLIN)
    assert result == utc(2026, 10, 25, 0, 30)


def test_wall_clock_months_can_reorder_accesses_in_the_repeated_hour():
    # A consequence of the wall-clock rule (not of the code): on 25 Oct 2026 Berlin goes
    # 02:59 CEST -> 02:00 CET. An access at 02:30 CEST (00:30Z) and a later one at 02:10 CET
    # (01:10Z) freeze 12 months later at 02:30 and 02:10 local: the later access freezes first.
    cal = make_calendar(tz=BERLIN)
    earlier, later = utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 10)
    assert wall(earlier, BERLIN) == dt.datetime(2026, 10, 25, 2, 30)
    assert wall(later, BERLIN) == dt.datetime(2026, 10, 25, 2, 10)
    assert cal.freeze_at(earlier) == utc(2027, 10, 25, 0, 30)
    assert cal.freeze_at(later) == utc(2027, 10, 25, 0, 10)
    assert cal.freeze_at(later) < cal.freeze_at(earlier)


def test_wall_clock_months_can_reorder_accesses_landing_in_the_skipped_hour():
    # 29 Mar 2025 02:30 CET lands in 2026's skipped hour and moves to 03:30 CEST, after the
    # freeze of an access 45 minutes later (03:15 CET -> 03:15 CEST).
    cal = make_calendar(tz=BERLIN)
    earlier, later = at_local(BERLIN, 2025, 3, 29, 2, 30), at_local(BERLIN, 2025, 3, 29, 3, 15)
    assert cal.freeze_at(earlier) == utc(2026, 3, 29, 1, 30)
    assert cal.freeze_at(later) == utc(2026, 3, 29, 1, 15)


@PROPERTY
@given(when=instants, months=month_counts, tz=no_dst_zones)
def test_add_months_agrees_with_iso_duration_on_the_local_wall_clock(when, months, tz):
    # Without DST, months on the wall clock are exactly IsoDuration's months on the naive local time.
    expected = IsoDuration(months=months, fixed=dt.timedelta(0), text=f"P{months}M").add_to(wall(when, tz))
    assert wall(add_months_local(when, months, tz), tz) == expected


@PROPERTY
@given(when=instants, months=month_counts, tz=st.sampled_from(DST_ZONES))
def test_add_months_in_dst_zones_keeps_the_local_date_and_the_wall_clock_within_an_hour(when, months, tz):
    expected = IsoDuration(months=months, fixed=dt.timedelta(0), text=f"P{months}M").add_to(wall(when, tz))
    result = wall(add_months_local(when, months, tz), tz)
    assert result.date() == expected.date()
    assert abs(result - expected) <= HOUR


@PROPERTY
@given(when=instants, months=st.integers(min_value=1, max_value=40), tz=zones)
def test_add_months_day_is_kept_or_clamped_to_the_month_end(when, months, tz):
    before = when.astimezone(tz).date()
    after = local_date(add_months_local(when, months, tz), tz)
    assert (after.year * 12 + after.month) - (before.year * 12 + before.month) == months
    if after.day != before.day:
        assert after.day < before.day
        assert (after + DAY).day == 1  # clamped: the last day of its month


# === freeze_at =========================================================================


def test_freeze_at_default_is_twelve_calendar_months_later_same_local_time():
    cal = make_calendar()
    last_access = at_local(SHANGHAI, 2026, 1, 31, 9, 15, 30)
    assert cal.freeze_at(last_access) == at_local(SHANGHAI, 2027, 1, 31, 9, 15, 30)


def test_freeze_at_leap_day_plus_twelve_months_is_the_28th_of_february():
    cal = make_calendar()
    assert cal.freeze_at(at_local(SHANGHAI, 2028, 2, 29, 12)) == at_local(SHANGHAI, 2029, 2, 28, 12)


@pytest.mark.parametrize(
    ("last_access", "expected"),
    [
        ((2026, 1, 31), (2026, 2, 28)),
        ((2028, 1, 31), (2028, 2, 29)),
        ((2026, 3, 31), (2026, 4, 30)),
        ((2026, 8, 31), (2026, 9, 30)),
        ((2026, 2, 28), (2026, 3, 28)),
    ],
)
def test_freeze_at_one_month(last_access, expected):
    cal = make_calendar("P1M")
    assert cal.freeze_at(at_local(SHANGHAI, *last_access, 18)) == at_local(SHANGHAI, *expected, 18)


def test_one_year_is_twelve_months():
    last_access = utc(2028, 2, 29, 3)
    assert make_calendar("P1Y").freeze_at(last_access) == make_calendar("P12M").freeze_at(last_access)


def test_freeze_at_at_the_shanghai_day_boundary():
    # 2026-03-31T20:00Z is 1 Apr 04:00 in Shanghai: frozen on 1 Apr 2027 04:00 local.
    cal = make_calendar()
    assert cal.freeze_at(utc(2026, 3, 31, 20)) == at_local(SHANGHAI, 2027, 4, 1, 4)
    # Just before local midnight it is still 31 Mar: clamped to 30 Apr for one month.
    assert make_calendar("P1M").freeze_at(utc(2026, 3, 31, 15, 59)) == at_local(SHANGHAI, 2026, 4, 30, 23, 59)
    assert make_calendar("P1M").freeze_at(utc(2026, 3, 31, 16, 0)) == at_local(SHANGHAI, 2026, 5, 1, 0, 0)


def test_freeze_at_adds_the_fixed_part_after_the_months():
    # 31 Jan + 1 month = 28 Feb, then + 1 day = 1 Mar (not 3 Mar, as days-then-months could give).
    cal = make_calendar("P1M1D")
    assert cal.freeze_at(at_local(SHANGHAI, 2026, 1, 31, 10)) == at_local(SHANGHAI, 2026, 3, 1, 10)


def test_freeze_at_fixed_part_is_exact_across_dst():
    # The days of the inactivity are exact: P1D from 28 Mar 12:00 CET is 24 hours later,
    # 29 Mar 13:00 CEST on the wall clock.
    cal = make_calendar("P1D", tz=BERLIN)
    last_access = at_local(BERLIN, 2026, 3, 28, 12)
    assert cal.freeze_at(last_access) - last_access == DAY
    assert wall(cal.freeze_at(last_access), BERLIN) == dt.datetime(2026, 3, 29, 13)


def test_freeze_at_twelve_months_over_dst_keeps_wall_clock():
    cal = make_calendar(tz=NEW_YORK)
    last_access = at_local(NEW_YORK, 2026, 1, 10, 23, 30)  # EST
    assert wall(cal.freeze_at(last_access), NEW_YORK) == dt.datetime(2027, 1, 10, 23, 30)
    last_access = at_local(NEW_YORK, 2026, 6, 10, 23, 30)  # EDT
    assert wall(cal.freeze_at(last_access), NEW_YORK) == dt.datetime(2027, 6, 10, 23, 30)


def test_freeze_at_exact_seconds():
    cal = make_calendar("PT3S")
    assert cal.freeze_at(utc(2026, 1, 31, 23, 59, 59)) == utc(2026, 2, 1, 0, 0, 2)


@PROPERTY
@given(last_access=instants, inactivity=calendar_periods | exact_periods, tz=zones)
def test_freeze_at_is_after_the_last_access(last_access, inactivity, tz):
    assert make_calendar(inactivity, tz=tz).freeze_at(last_access) > last_access


@PROPERTY
@given(t1=instants, t2=instants, inactivity=calendar_periods | exact_periods, tz=no_dst_zones)
def test_freeze_at_is_monotonic_without_dst(t1, t2, inactivity, tz):
    cal = make_calendar(inactivity, tz=tz)
    t1, t2 = sorted((t1, t2))
    assert cal.freeze_at(t1) <= cal.freeze_at(t2)


@PROPERTY
@given(t1=instants, shift=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=3)), inactivity=calendar_periods, tz=no_dst_zones)
def test_freeze_at_is_monotonic_for_close_accesses_without_dst(t1, shift, inactivity, tz):
    # Close pairs, where the month-end clamp and day boundaries bite. The clamp folds the
    # last days of a month onto one (29, 30, 31 Jan + 1 month are all 28/29 Feb), so a
    # later access can freeze up to a day earlier: never more.
    cal = make_calendar(inactivity, tz=tz)
    assert cal.freeze_at(t1 + shift) >= cal.freeze_at(t1) - dt.timedelta(days=1)
    if inactivity.months == 0:
        assert cal.freeze_at(t1) <= cal.freeze_at(t1 + shift)


@PROPERTY
@given(t1=instants, shift=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=2)), inactivity=calendar_periods, tz=st.sampled_from(DST_ZONES))
def test_freeze_at_with_dst_is_out_of_order_by_at_most_the_dst_shifts(t1, shift, inactivity, tz):
    # Wall-clock months can reorder accesses around a DST switch (see the tests above) by the
    # repeated hour plus the skipped hour at most, and the month-end clamp by a day at most.
    cal = make_calendar(inactivity, tz=tz)
    assert cal.freeze_at(t1 + shift) >= cal.freeze_at(t1) - dt.timedelta(days=1) - 2 * HOUR
    if inactivity.months == 0:
        assert cal.freeze_at(t1 + shift) >= cal.freeze_at(t1) - 2 * HOUR


@PROPERTY
@given(last_access=instants, tz=zones)
def test_default_freeze_is_between_365_and_366_days_later(last_access, tz):
    elapsed = make_calendar(tz=tz).freeze_at(last_access) - last_access
    assert dt.timedelta(days=365) - HOUR <= elapsed <= dt.timedelta(days=366) + HOUR


# === delete_at and last_day_of_grace ===================================================


def test_delete_at_is_the_end_of_the_thirtieth_local_day():
    # Frozen 2026-03-31T20:00Z = 1 Apr 04:00 in Shanghai (day D = 1 Apr); the data goes when
    # 1 May (D+30) ends: 2 May 00:00 local = 1 May 16:00Z. UTC days would give 1 May 00:00Z.
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    assert delete_at == utc(2026, 5, 1, 16)
    assert wall(delete_at, SHANGHAI) == dt.datetime(2026, 5, 2, 0, 0)
    assert cal.last_day_of_grace(delete_at) == dt.date(2026, 5, 1)
    assert make_calendar(tz=ZONE_UTC).delete_at(frozen_at) == utc(2026, 5, 1)


@pytest.mark.parametrize(
    ("frozen_local", "expected_local"),
    [
        ((2026, 1, 31, 12), (2026, 3, 3)),  # Jan 31 + 30 = Mar 2, which ends at Mar 3 00:00
        ((2028, 1, 31, 12), (2028, 3, 2)),  # leap year: Jan 31 + 30 = Mar 1
        ((2026, 2, 28, 12), (2026, 3, 31)),
        ((2026, 12, 15, 12), (2027, 1, 15)),  # over a year end
        ((2026, 4, 1, 0, 0), (2026, 5, 2)),  # frozen at local midnight: a full 31 days
        ((2026, 4, 1, 23, 59, 59), (2026, 5, 2)),  # frozen a second before midnight: 30 days + 1 s
    ],
)
def test_delete_at_thirty_natural_days(frozen_local, expected_local):
    cal = make_calendar()
    assert cal.delete_at(at_local(SHANGHAI, *frozen_local)) == at_local(SHANGHAI, *expected_local)


def test_delete_at_bounds_at_the_day_edges():
    cal = make_calendar()
    midnight = at_local(SHANGHAI, 2026, 4, 1)
    assert cal.delete_at(midnight) - midnight == dt.timedelta(days=31)
    last_moment = midnight + DAY - dt.timedelta(microseconds=1)
    assert cal.delete_at(last_moment) - last_moment == dt.timedelta(days=30, microseconds=1)


def test_delete_at_in_new_york_uses_the_local_day():
    # 2026-03-31T02:00Z is still 30 Mar 22:00 EDT: the last day is 29 Apr, gone at 30 Apr 00:00 EDT.
    cal = make_calendar(tz=NEW_YORK)
    delete_at = cal.delete_at(utc(2026, 3, 31, 2))
    assert delete_at == utc(2026, 4, 30, 4)
    assert cal.last_day_of_grace(delete_at) == dt.date(2026, 4, 29)


def test_delete_at_over_spring_forward_is_less_than_thirty_times_24_hours():
    # Frozen 10 Mar 23:30 CET in Berlin: the last day is 9 Apr, gone at 10 Apr 00:00 CEST. The
    # natural days lose the skipped hour: 29 days 23.5 hours elapse, and that is right.
    cal = make_calendar(tz=BERLIN)
    frozen_at = at_local(BERLIN, 2026, 3, 10, 23, 30)
    delete_at = cal.delete_at(frozen_at)
    assert delete_at == utc(2026, 4, 9, 22)
    assert delete_at - frozen_at == dt.timedelta(days=29, hours=23, minutes=30)
    assert cal.last_day_of_grace(delete_at) == dt.date(2026, 4, 9)


def test_delete_at_over_fall_back_is_more_than_31_times_24_hours():
    cal = make_calendar(tz=BERLIN)
    frozen_at = at_local(BERLIN, 2026, 10, 1, 0, 0)  # local midnight, CEST
    delete_at = cal.delete_at(frozen_at)
    assert wall(delete_at, BERLIN) == dt.datetime(2026, 11, 1, 0, 0)  # CET
    assert delete_at - frozen_at == dt.timedelta(days=31, hours=1)


def test_delete_at_where_local_midnight_is_skipped_is_when_the_last_day_ends():
    # Santiago skips 6 Sep 2026 00:00 (00:00 -> 01:00). Frozen on 6 Aug, the last day is 5 Sep,
    # which ends at 04:00Z, shown as 01:00 -03 on 6 Sep.
    cal = make_calendar(tz=SANTIAGO)
    delete_at = cal.delete_at(at_local(SANTIAGO, 2026, 8, 6, 12))
    assert delete_at == utc(2026, 9, 6, 4)
    assert at_local(SANTIAGO, 2026, 9, 5, 23, 59, 59) == delete_at - dt.timedelta(seconds=1)


@pytest.mark.parametrize(
    ("tz", "frozen_local", "last_day"),
    [
        (SANTIAGO, (2026, 8, 6, 12), dt.date(2026, 9, 5)),  # 6 Sep 2026 00:00 is skipped
        (CAIRO, (2026, 3, 24, 12), dt.date(2026, 4, 23)),  # 24 Apr 2026 00:00 is skipped
    ],
)
def test_last_day_of_grace_where_local_midnight_is_skipped(tz, frozen_local, last_day):
    cal = make_calendar(tz=tz)
    assert cal.last_day_of_grace(cal.delete_at(at_local(tz, *frozen_local))) == last_day


def test_delete_at_with_a_months_grace_is_month_end_clamped():
    # P1M: frozen on 31 Jan, the last day is 28 Feb, gone at 1 Mar 00:00 local.
    cal = make_calendar(grace="P1M")
    delete_at = cal.delete_at(at_local(SHANGHAI, 2026, 1, 31, 15))
    assert delete_at == at_local(SHANGHAI, 2026, 3, 1)
    assert cal.last_day_of_grace(delete_at) == dt.date(2026, 2, 28)


@pytest.mark.parametrize(
    ("grace", "elapsed"),
    [
        ("PT3S", dt.timedelta(seconds=3)),
        ("PT90M", dt.timedelta(minutes=90)),
        ("P1DT12H", dt.timedelta(days=1, hours=12)),
        ("PT0.5S", dt.timedelta(milliseconds=500)),
    ],
)
def test_delete_at_exact_grace(grace, elapsed):
    cal = make_calendar(grace=grace, tz=BERLIN)
    frozen_at = at_local(BERLIN, 2026, 3, 28, 23, 59, 59)  # the exact span crosses midnight and DST
    assert cal.delete_at(frozen_at) - frozen_at == elapsed


def test_delete_at_exact_grace_with_months_adds_months_on_the_wall_clock_first():
    cal = make_calendar(grace="P1MT1H")
    assert cal.delete_at(at_local(SHANGHAI, 2026, 1, 31, 10)) == at_local(SHANGHAI, 2026, 2, 28, 11)


@pytest.mark.parametrize("grace", ["PT24H", "PT720H", "P29DT24H"])
def test_delete_at_grace_with_whole_days_written_in_hours_is_exact(grace):
    cal = make_calendar(grace=grace)
    frozen_at = utc(2026, 3, 31, 20)
    assert cal.delete_at(frozen_at) - frozen_at == IsoDuration.parse(grace).fixed


def test_last_day_of_grace_for_exact_delete_times():
    cal = make_calendar(grace="PT3S")
    assert cal.last_day_of_grace(at_local(SHANGHAI, 2026, 4, 1, 0, 0, 0)) == dt.date(2026, 3, 31)
    assert cal.last_day_of_grace(at_local(SHANGHAI, 2026, 4, 1, 0, 0, 1)) == dt.date(2026, 4, 1)


@PROPERTY
@given(frozen_at=instants, tz=zones)
def test_thirty_day_grace_ends_at_local_midnight_of_day_d_plus_31(frozen_at, tz):
    cal = make_calendar(tz=tz)
    delete_at = cal.delete_at(frozen_at)
    local = delete_at.astimezone(tz)
    assert local.time() == dt.time(0)
    assert local.date() == local_date(frozen_at, tz) + dt.timedelta(days=31)
    assert cal.last_day_of_grace(delete_at) == local_date(frozen_at, tz) + dt.timedelta(days=30)
    # Wall-clock days are 23 to 25 hours long.
    assert dt.timedelta(days=30) - HOUR < delete_at - frozen_at <= dt.timedelta(days=31) + HOUR


@PROPERTY
@given(frozen_at=instants, tz=no_dst_zones)
def test_thirty_day_grace_without_dst_is_more_than_30_and_at_most_31_days(frozen_at, tz):
    elapsed = make_calendar(tz=tz).delete_at(frozen_at) - frozen_at
    assert dt.timedelta(days=30) < elapsed <= dt.timedelta(days=31)


@PROPERTY
@given(frozen_at=instants, days=st.integers(min_value=0, max_value=400), tz=zones)
def test_n_day_grace_ends_when_local_day_d_plus_n_ends(frozen_at, days, tz):
    cal = make_calendar(grace=f"P{days}D", tz=tz)
    delete_at = cal.delete_at(frozen_at)
    assert delete_at > frozen_at
    assert wall(delete_at, tz) == dt.datetime.combine(local_date(frozen_at, tz) + dt.timedelta(days=days + 1), dt.time(0))


@PROPERTY
@given(frozen_at=instants, grace=exact_periods, tz=zones)
def test_exact_grace_is_exact(frozen_at, grace, tz):
    assert make_calendar(grace=grace, tz=tz).delete_at(frozen_at) - frozen_at == grace.fixed


@PROPERTY
@given(t1=instants, t2=instants, grace=calendar_periods, tz=zones)
def test_delete_at_is_monotonic(t1, t2, grace, tz):
    # Natural days end at local midnights, which keep their order, unlike wall-clock times.
    cal = make_calendar(grace=grace, tz=tz)
    t1, t2 = sorted((t1, t2))
    assert cal.delete_at(t1) <= cal.delete_at(t2)


# === reminder times ====================================================================


def test_freeze_reminders_come_the_offsets_before_the_freeze_earliest_first():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.freeze_reminder_times(last_access, freeze_at) == [freeze_at - dt.timedelta(days=30), freeze_at - dt.timedelta(days=7)]


def test_freeze_reminders_before_the_last_access_are_dropped():
    cal = make_calendar("P20D")
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.freeze_reminder_times(last_access, freeze_at) == [freeze_at - dt.timedelta(days=7)]


def test_a_freeze_reminder_at_the_last_access_itself_is_dropped():
    cal = make_calendar("P30D")
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert freeze_at - dt.timedelta(days=30) == last_access
    assert cal.freeze_reminder_times(last_access, freeze_at) == [freeze_at - dt.timedelta(days=7)]
    # One microsecond longer and it is strictly after the access, so it counts.
    cal = make_calendar("P30DT0.000001S")
    freeze_at = cal.freeze_at(last_access)
    assert len(cal.freeze_reminder_times(last_access, freeze_at)) == 2


def test_deletion_reminders_come_before_delete_at_and_after_the_freeze():
    cal = make_calendar(deletion_reminders=(dt.timedelta(days=40), dt.timedelta(days=7), dt.timedelta(days=1)))
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    assert cal.deletion_reminder_times(frozen_at, delete_at) == [delete_at - dt.timedelta(days=7), delete_at - DAY]


def test_deletion_reminders_with_a_short_grace_are_dropped():
    cal = make_calendar(grace="PT3S")
    frozen_at = utc(2026, 3, 31, 20)
    assert cal.deletion_reminder_times(frozen_at, cal.delete_at(frozen_at)) == []


def test_a_deletion_reminder_at_the_freeze_itself_is_dropped():
    cal = make_calendar(grace="PT10M", deletion_reminders=(dt.timedelta(minutes=10), dt.timedelta(minutes=5)))
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    assert cal.deletion_reminder_times(frozen_at, delete_at) == [delete_at - dt.timedelta(minutes=5)]


@PROPERTY
@given(after=instants, span=st.timedeltas(min_value=dt.timedelta(seconds=1), max_value=dt.timedelta(days=400)), offsets=reminder_offsets)
def test_reminder_times_are_ordered_and_strictly_between_after_and_due(after, span, offsets):
    cal = make_calendar(freeze_reminders=offsets, deletion_reminders=offsets)
    due = after + span
    for times in (cal.freeze_reminder_times(after, due), cal.deletion_reminder_times(after, due)):
        assert times == sorted(times)
        assert all(after < at < due for at in times)
        assert times == [due - offset for offset in offsets if offset < span]


# === next_due ==========================================================================


def test_next_due_for_an_active_account_walks_through_the_reminders_to_the_freeze():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.next_due(**active(cal, last_access, 0)) == freeze_at - dt.timedelta(days=30)
    assert cal.next_due(**active(cal, last_access, 1)) == freeze_at - dt.timedelta(days=7)
    assert cal.next_due(**active(cal, last_access, 2)) == freeze_at
    assert cal.next_due(**active(cal, last_access, 5)) == freeze_at


def test_next_due_without_reminders_is_the_freeze():
    cal = make_calendar(freeze_reminders=())
    last_access = utc(2026, 1, 10, 3)
    assert cal.next_due(**active(cal, last_access)) == cal.freeze_at(last_access)


def test_next_due_for_a_frozen_account_is_the_reminder_then_the_deletion_plus_margin():
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    assert cal.next_due(**frozen(cal, frozen_at, 0)) == delete_at - dt.timedelta(days=7)
    assert cal.next_due(**frozen(cal, frozen_at, 1)) == delete_at + MARGIN


def test_held_frozen_account_has_no_next_due():
    cal = make_calendar()
    assert cal.next_due(**frozen(cal, utc(2026, 3, 31, 20), held=True)) is None


def test_held_active_account_still_plans_its_freeze():
    # A hold stops deletion only; freezing (which deletes nothing) goes on.
    cal = make_calendar(freeze_reminders=())
    last_access = utc(2026, 1, 10, 3)
    assert cal.next_due(**active(cal, last_access, held=True)) == cal.freeze_at(last_access)


@pytest.mark.parametrize("state", [DELETING, DELETED])
def test_deleting_and_deleted_accounts_have_no_next_due(state):
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    kwargs = {**frozen(cal, frozen_at), "state": state}
    assert cal.next_due(**kwargs) is None
    assert cal.step(frozen_at + dt.timedelta(days=1000), **kwargs) is None


def test_missing_due_dates_mean_nothing_to_do():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    assert cal.next_due(**{**active(cal, last_access), "freeze_at": None}) is None
    assert cal.next_due(**{**frozen(cal, last_access), "delete_at": None}) is None
    assert cal.next_due(**{**frozen(cal, last_access), "frozen_at": None}) is None
    assert cal.step(utc(2030, 1, 1), **{**active(cal, last_access), "freeze_at": None}) is None
    assert cal.step(utc(2030, 1, 1), **{**frozen(cal, last_access), "delete_at": None}) is None


# === step ==============================================================================


def test_step_for_an_active_account():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    first, second = freeze_at - dt.timedelta(days=30), freeze_at - dt.timedelta(days=7)
    tick = dt.timedelta(microseconds=1)

    assert cal.step(first - tick, **active(cal, last_access)) is None
    assert cal.step(first, **active(cal, last_access)) == Step("remind_freeze", first, 0)
    assert cal.step(second - tick, **active(cal, last_access, 1)) is None
    assert cal.step(second, **active(cal, last_access, 1)) == Step("remind_freeze", second, 1)
    assert cal.step(freeze_at - tick, **active(cal, last_access, 2)) is None
    assert cal.step(freeze_at, **active(cal, last_access, 2)) == Step("freeze", freeze_at)


def test_step_sends_only_the_latest_of_reminders_due_together():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    # The sweeper was away for both reminders: only the 7-day one goes out.
    assert cal.step(freeze_at - DAY, **active(cal, last_access)) == Step("remind_freeze", freeze_at - dt.timedelta(days=7), 1)


def test_step_freezes_even_with_reminders_pending():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.step(freeze_at + dt.timedelta(days=3), **active(cal, last_access)) == Step("freeze", freeze_at)


def test_step_reminder_index_counts_among_the_kept_reminders():
    # P20D drops the 30-day reminder: the 7-day one is index 0.
    cal = make_calendar("P20D")
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.step(freeze_at - DAY, **active(cal, last_access)) == Step("remind_freeze", freeze_at - dt.timedelta(days=7), 0)
    assert cal.step(freeze_at - DAY, **active(cal, last_access, 1)) is None


def test_step_for_a_frozen_account_waits_for_the_safety_margin():
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    reminder = delete_at - dt.timedelta(days=7)

    assert cal.step(reminder - dt.timedelta(seconds=1), **frozen(cal, frozen_at)) is None
    assert cal.step(reminder, **frozen(cal, frozen_at)) == Step("remind_deletion", reminder, 0)
    # Due, but within the margin: an in-flight access may still land. The unsent reminder goes first.
    assert cal.step(delete_at, **frozen(cal, frozen_at)) == Step("remind_deletion", reminder, 0)
    assert cal.step(delete_at, **frozen(cal, frozen_at, 1)) is None
    assert cal.step(delete_at + MARGIN - dt.timedelta(microseconds=1), **frozen(cal, frozen_at, 1)) is None
    assert cal.step(delete_at + MARGIN, **frozen(cal, frozen_at, 1)) == Step("delete", delete_at)
    assert cal.step(delete_at + MARGIN, **frozen(cal, frozen_at, 0)) == Step("delete", delete_at)


def test_step_without_safety_margin_deletes_at_delete_at():
    cal = make_calendar(margin=dt.timedelta(0))
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    assert cal.step(delete_at, **frozen(cal, frozen_at, 1)) == Step("delete", delete_at)


def test_step_never_deletes_a_held_account():
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    for later in (dt.timedelta(days=23), dt.timedelta(days=31), dt.timedelta(days=3650)):
        assert cal.step(frozen_at + later, **frozen(cal, frozen_at, held=True)) is None


def test_step_freezes_a_held_active_account():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.step(freeze_at, **active(cal, last_access, 2, held=True)) == Step("freeze", freeze_at)


# --- step and next_due: properties -----------------------------------------------------


def _check_step(cal: Calendar, now: dt.datetime, kwargs: dict, times: list[dt.datetime], due: dt.datetime, action: str, remind: str) -> None:
    """Checks one step: the final action iff its time has come, else only the latest due reminder."""
    step = cal.step(now, **kwargs)
    remaining = [(i, at) for i, at in enumerate(times) if i >= kwargs["reminders_done"] and at <= now]
    if now >= due:
        assert step is not None and step.action == action
    elif remaining:
        index, at = remaining[-1]
        assert step == Step(remind, at, index)
    else:
        assert step is None


@PROPERTY
@given(tz=zones, last_access=instants, inactivity=calendar_periods, offsets=reminder_offsets, done=st.integers(0, 5), shift=shifts)
def test_active_step_and_next_due_agree(tz, last_access, inactivity, offsets, done, shift):
    cal = make_calendar(inactivity, tz=tz, freeze_reminders=offsets)
    kwargs = active(cal, last_access, done)
    freeze_at = kwargs["freeze_at"]
    next_due = cal.next_due(**kwargs)
    assert next_due is not None
    assert next_due <= freeze_at
    now = next_due + shift
    step = cal.step(now, **kwargs)
    if now < next_due:
        assert step is None
    else:
        assert step is not None
    times = cal.freeze_reminder_times(last_access, freeze_at)
    _check_step(cal, now, kwargs, times, freeze_at, "freeze", "remind_freeze")
    if step is not None and step.action == "freeze":
        assert step.due_at == freeze_at


@PROPERTY
@given(tz=zones, frozen_at=instants, grace=calendar_periods | exact_periods, offsets=reminder_offsets, margin=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=2)), done=st.integers(0, 5), shift=shifts)
def test_frozen_step_and_next_due_agree(tz, frozen_at, grace, offsets, margin, done, shift):
    cal = make_calendar(grace=grace, tz=tz, margin=margin, deletion_reminders=offsets)
    kwargs = frozen(cal, frozen_at, done)
    delete_at = kwargs["delete_at"]
    next_due = cal.next_due(**kwargs)
    assert next_due is not None
    assert next_due <= delete_at + margin
    now = next_due + shift
    step = cal.step(now, **kwargs)
    if now < next_due:
        assert step is None
    else:
        assert step is not None
    if step is not None and step.action == "delete":
        assert now >= delete_at + margin and step.due_at == delete_at
    times = cal.deletion_reminder_times(frozen_at, delete_at)
    _check_step(cal, now, kwargs, times, delete_at + margin, "delete", "remind_deletion")


@PROPERTY
@given(tz=zones, frozen_at=instants, grace=calendar_periods | exact_periods, offsets=reminder_offsets, done=st.integers(0, 5), shift=shifts)
def test_held_frozen_accounts_are_never_due(tz, frozen_at, grace, offsets, done, shift):
    cal = make_calendar(grace=grace, tz=tz, deletion_reminders=offsets)
    kwargs = frozen(cal, frozen_at, done, held=True)
    assert cal.next_due(**kwargs) is None
    assert cal.step(kwargs["delete_at"] + MARGIN + abs(shift), **kwargs) is None


def _sweep(cal: Calendar, kwargs: dict, lags: list[dt.timedelta]) -> tuple[list[Step], list[dt.datetime]]:
    """Runs the sweeper as the ledger does: at (or after) next_due, one step, then reminders_done
    = index + 1. Returns the steps taken and when, up to the final freeze or deletion."""
    steps, times = [], []
    now = cal.next_due(**kwargs)
    for lag in lags:
        now = max(now, cal.next_due(**kwargs)) + lag
        step = cal.step(now, **kwargs)
        assert step is not None
        steps.append(step)
        times.append(now)
        if step.action in ("freeze", "delete"):
            break
        kwargs = {**kwargs, "reminders_done": step.index + 1}
    return steps, times


@PROPERTY
@given(tz=zones, last_access=instants, inactivity=calendar_periods, offsets=reminder_offsets, lags=lags)
def test_sweeping_an_active_account_sends_reminders_in_order_then_freezes(tz, last_access, inactivity, offsets, lags):
    cal = make_calendar(inactivity, tz=tz, freeze_reminders=offsets)
    kwargs = active(cal, last_access)
    reminders = cal.freeze_reminder_times(last_access, kwargs["freeze_at"])
    steps, times = _sweep(cal, kwargs, lags)
    assert steps[-1] == Step("freeze", kwargs["freeze_at"])
    sent = [s.index for s in steps[:-1]]
    assert sent == sorted(set(sent))  # each at most once, in order
    assert all(s.action == "remind_freeze" and s.due_at == reminders[s.index] for s in steps[:-1])
    assert all(s.due_at <= at for s, at in zip(steps, times))
    if not any(lags):
        # A punctual sweeper sends every reminder on time.
        assert sent == list(range(len(reminders)))
        assert times == [*reminders, kwargs["freeze_at"]]


@PROPERTY
@given(tz=zones, frozen_at=instants, grace=calendar_periods | exact_periods, offsets=reminder_offsets, lags=lags)
def test_sweeping_a_frozen_account_sends_reminders_then_deletes_after_the_margin(tz, frozen_at, grace, offsets, lags):
    cal = make_calendar(grace=grace, tz=tz, deletion_reminders=offsets)
    kwargs = frozen(cal, frozen_at)
    delete_at = kwargs["delete_at"]
    steps, times = _sweep(cal, kwargs, lags)
    assert steps[-1] == Step("delete", delete_at)
    assert times[-1] >= delete_at + MARGIN
    sent = [s.index for s in steps[:-1]]
    assert sent == sorted(set(sent))
    assert all(s.action == "remind_deletion" for s in steps[:-1])


@pytest.mark.parametrize("lag", [dt.timedelta(0), dt.timedelta(days=1), dt.timedelta(days=40)])
def test_sweeping_the_defaults_end_to_end(lag):
    cal = make_calendar()
    last_access = at_local(SHANGHAI, 2027, 1, 31, 9)
    steps, _ = _sweep(cal, active(cal, last_access), [lag] * 5)
    freeze_at = at_local(SHANGHAI, 2028, 1, 31, 9)
    expected = {
        dt.timedelta(0): [Step("remind_freeze", freeze_at - dt.timedelta(days=30), 0), Step("remind_freeze", freeze_at - dt.timedelta(days=7), 1), Step("freeze", freeze_at)],
        dt.timedelta(days=1): [Step("remind_freeze", freeze_at - dt.timedelta(days=30), 0), Step("remind_freeze", freeze_at - dt.timedelta(days=7), 1), Step("freeze", freeze_at)],
        dt.timedelta(days=40): [Step("freeze", freeze_at)],
    }[lag]
    assert steps == expected


# === notices ===========================================================================


@pytest.mark.parametrize(
    ("when", "tz", "text"),
    [
        (utc(2026, 3, 31, 20), SHANGHAI, "2026-04-01 04:00:00 (Asia/Shanghai, UTC+08:00)"),
        (utc(2026, 5, 1, 16), SHANGHAI, "2026-05-02 00:00:00 (Asia/Shanghai, UTC+08:00)"),
        (utc(2026, 1, 15, 11, 0, 5, 999999), BERLIN, "2026-01-15 12:00:05 (Europe/Berlin, UTC+01:00)"),
        (utc(2026, 7, 15, 10), BERLIN, "2026-07-15 12:00:00 (Europe/Berlin, UTC+02:00)"),
        (utc(2026, 1, 15, 12), NEW_YORK, "2026-01-15 07:00:00 (America/New_York, UTC-05:00)"),
        (utc(2026, 7, 15, 12), NEW_YORK, "2026-07-15 08:00:00 (America/New_York, UTC-04:00)"),
        (utc(2026, 7, 15, 12), KOLKATA, "2026-07-15 17:30:00 (Asia/Kolkata, UTC+05:30)"),
        (utc(2026, 7, 15, 12), ZONE_UTC, "2026-07-15 12:00:00 (UTC, UTC+00:00)"),
    ],
)
def test_format_time(when, tz, text):
    assert notices.format_time(when, tz) == text


def test_format_time_distinguishes_the_repeated_hour():
    assert notices.format_time(utc(2026, 10, 25, 0, 30), BERLIN) == "2026-10-25 02:30:00 (Europe/Berlin, UTC+02:00)"
    assert notices.format_time(utc(2026, 10, 25, 1, 30), BERLIN) == "2026-10-25 02:30:00 (Europe/Berlin, UTC+01:00)"


_FORMATTED = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \(([^,]+), UTC([+-])(\d\d):(\d\d)\)")


@PROPERTY
@given(when=instants, tz=zones)
def test_format_time_names_the_instant_to_the_second(when, tz):
    match = _FORMATTED.fullmatch(notices.format_time(when, tz))
    assert match is not None
    text, key, sign, hours, minutes = match.groups()
    assert key == tz.key
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if sign == "-" else 1)
    parsed = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone(offset))
    assert parsed == when.replace(microsecond=0)


def _notice_values(cal: Calendar, last_access: dt.datetime, locale: str) -> dict[str, str]:
    """The values the ledger fills in, for an account frozen at its freeze time."""
    tz = cal.time_zone
    freeze_at = cal.freeze_at(last_access)
    delete_at = cal.delete_at(freeze_at)
    return {
        "last_access_at": notices.format_time(last_access, tz),
        "freeze_at": notices.format_time(freeze_at, tz),
        "delete_at": notices.format_time(delete_at, tz),
        "last_day": cal.last_day_of_grace(delete_at).isoformat(),
        "deleted_at": notices.format_time(delete_at + MARGIN, tz),
        "at": notices.format_time(last_access, tz),
        "grace": notices.describe_duration(cal.grace.months, cal.grace.fixed, locale),
        "reactivate_link": "https://cumulo.example/reactivate?token=abc",
    }


@pytest.mark.parametrize("locale", notices.LOCALES)
@pytest.mark.parametrize("kind", ["frozen", "deletion_reminder"])
def test_render_states_the_delete_time_and_the_last_day(kind, locale):
    cal = make_calendar()
    # Last access 31 Mar 2025 20:00Z (1 Apr 04:00 local): frozen 1 Apr 2026 04:00, gone 2 May 00:00.
    values = _notice_values(cal, utc(2025, 3, 31, 20), locale)
    assert values["delete_at"] == "2026-05-02 00:00:00 (Asia/Shanghai, UTC+08:00)"
    assert values["last_day"] == "2026-05-01"
    rendered = notices.render(kind, locale, values)
    assert values["delete_at"] in rendered.subject
    assert values["delete_at"] in rendered.body
    assert "2026-05-01" in rendered.body
    assert values["reactivate_link"] in rendered.body
    if locale == "en":
        assert "when 2026-05-01 ends" in rendered.body
    else:
        assert "即 2026-05-01 结束时" in rendered.body


@pytest.mark.parametrize(("locale", "grace"), [("en", "30 days"), ("zh-CN", "30 天")])
def test_render_freeze_reminder_states_the_freeze_time_and_the_grace(locale, grace):
    cal = make_calendar()
    values = _notice_values(cal, at_local(SHANGHAI, 2028, 2, 29, 12), locale)
    rendered = notices.render("freeze_reminder", locale, values)
    assert "2029-02-28 12:00:00 (Asia/Shanghai, UTC+08:00)" in rendered.subject
    assert values["last_access_at"] in rendered.body
    assert values["freeze_at"] in rendered.body
    assert grace in rendered.body


_ALL_KINDS = (*notices.KINDS, "deleted_cancellation", "deleted_termination")


@pytest.mark.parametrize("kind", _ALL_KINDS)
def test_both_locales_render_every_kind_with_the_same_values(kind):
    # Every value as a unique marker: each locale must use the same ones, and nothing unfilled.
    values = {key: f"<{key}>" for key in ("last_access_at", "freeze_at", "delete_at", "last_day", "deleted_at", "at", "grace", "reactivate_link")}
    used = {}
    for locale in notices.LOCALES:
        rendered = notices.render(kind, locale, values)
        text = rendered.subject + rendered.body
        assert "{" not in text and "}" not in text
        used[locale] = {key for key, marker in values.items() if marker in text}
    assert used["en"] == used["zh-CN"]
    assert used["en"]  # every notice states at least a time or a link


def test_render_english_and_chinese_differ_and_unknown_locales_fall_back_to_chinese():
    values = _notice_values(make_calendar(), utc(2025, 3, 31, 20), "zh-CN")
    en, zh = notices.render("frozen", "en", values), notices.render("frozen", "zh-CN", values)
    assert en != zh
    assert "frozen" in en.subject and "冻结" in zh.subject
    assert notices.render("frozen", "fr", values) == zh
    assert notices.render("frozen", "", values) == zh


def test_render_unknown_kind_or_missing_value_raises():
    values = _notice_values(make_calendar(), utc(2025, 3, 31, 20), "en")
    with pytest.raises(KeyError):
        notices.render("no_such_kind", "en", values)
    with pytest.raises(KeyError):
        notices.render("frozen", "en", {k: v for k, v in values.items() if k != "delete_at"})


@pytest.mark.parametrize(
    ("duration", "en", "zh"),
    [
        ("P30D", "30 days", "30 天"),
        ("P1D", "1 day", "1 天"),
        ("P12M", "12 months", "12 个月"),
        ("P1M", "1 month", "1 个月"),
        ("P1Y", "12 months", "12 个月"),
        ("P1W", "7 days", "7 天"),
        ("PT3S", "3 seconds", "3 秒"),
        ("PT1S", "1 second", "1 秒"),
        ("PT1H", "3600 seconds", "3600 秒"),
        ("P1DT1S", "1 day 1 second", "1 天 1 秒"),
        ("P12M30D", "12 months 30 days", "12 个月 30 天"),
        ("PT0S", "0 days", "0 天"),
    ],
)
def test_describe_duration(duration, en, zh):
    parsed = IsoDuration.parse(duration)
    assert notices.describe_duration(parsed.months, parsed.fixed, "en") == en
    assert notices.describe_duration(parsed.months, parsed.fixed, "zh-CN") == zh


@PROPERTY
@given(months=st.integers(0, 600), days=st.integers(0, 1000), seconds=st.integers(0, 86399))
def test_describe_duration_states_each_nonzero_part(months, days, seconds):
    fixed = dt.timedelta(days=days, seconds=seconds)
    en = notices.describe_duration(months, fixed, "en")
    numbers = [int(n) for n in re.findall(r"\d+", en)]
    assert numbers == [n for n in (months, days, seconds) if n] or (numbers == [0] and not (months or days or seconds))
    assert [int(n) for n in re.findall(r"\d+", notices.describe_duration(months, fixed, "zh-CN"))] == numbers
