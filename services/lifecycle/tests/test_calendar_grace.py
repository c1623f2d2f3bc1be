"""Calendar rules, the grace period and reminders: `delete_at` at the end of the last natural
day, `last_day_of_grace`, and the reminder times before a freeze or a deletion.

The rules under test are stated once, in calendar_cases.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cumulo_platform.durations import IsoDuration

from .calendar_cases import (
    BERLIN,
    CAIRO,
    DAY,
    HOUR,
    NEW_YORK,
    PROPERTY,
    SANTIAGO,
    SHANGHAI,
    ZONE_UTC,
    at_local,
    calendar_periods,
    exact_periods,
    instants,
    local_date,
    make_calendar,
    no_dst_zones,
    reminder_offsets,
    utc,
    wall,
    zones,
)

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
