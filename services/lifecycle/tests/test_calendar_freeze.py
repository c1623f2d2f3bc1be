"""Calendar rules, months and the freeze: `add_months_local` on the configured zone's wall
clock and `freeze_at`.

The rules under test are stated once, in calendar_cases.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cumulo_lifecycle.domain.calendar import (
    add_months_local,
)

from .calendar_cases import (
    BERLIN,
    DAY,
    DST_ZONES,
    HOUR,
    NEW_YORK,
    PROPERTY,
    SHANGHAI,
    UTC,
    ZONE_UTC,
    at_local,
    calendar_periods,
    exact_periods,
    instants,
    local_date,
    make_calendar,
    month_counts,
    months_later,
    no_dst_zones,
    utc,
    wall,
    zones,
)

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
def test_add_months_is_the_month_rule_on_the_local_wall_clock(when, months, tz):
    # Without DST, months on the wall clock are exactly the rule applied to the naive local time.
    expected = months_later(wall(when, tz), months)
    assert wall(add_months_local(when, months, tz), tz) == expected


@PROPERTY
@given(when=instants, months=month_counts, tz=st.sampled_from(DST_ZONES))
def test_add_months_in_dst_zones_keeps_the_local_date_and_the_wall_clock_within_an_hour(when, months, tz):
    expected = months_later(wall(when, tz), months)
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
