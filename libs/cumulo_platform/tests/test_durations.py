"""IsoDuration: ISO-8601 durations with calendar months."""

from __future__ import annotations

import datetime as dt

import pytest

from cumulo_platform.durations import IsoDuration

UTC = dt.UTC


def at(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (at(2025, 1, 31), "P1M", at(2025, 2, 28)),
        (at(2024, 1, 31), "P1M", at(2024, 2, 29)),
        (at(2024, 2, 29), "P12M", at(2025, 2, 28)),
        (at(2023, 1, 31), "P12M", at(2024, 1, 31)),
        (at(2025, 3, 31), "P1M", at(2025, 4, 30)),
        (at(2024, 12, 15), "P1M", at(2025, 1, 15)),
        (at(2024, 12, 15), "P13M", at(2026, 1, 15)),
        (at(2024, 2, 29), "P1Y", at(2025, 2, 28)),
        (at(2025, 1, 1, 10), "P30D", at(2025, 1, 31, 10)),
        (at(2025, 1, 31), "P1M1D", at(2025, 3, 1)),
    ],
)
def test_add_to_uses_calendar_months_clamped_to_month_end(start, duration, expected):
    assert IsoDuration.parse(duration).add_to(start) == expected


def test_twelve_months_is_not_365_days():
    duration = IsoDuration.parse("P12M")
    assert duration.months == 12
    assert duration.fixed == dt.timedelta(0)
    # 2024 is a leap year: twelve months from 1 Jan 2024 is 366 days.
    assert duration.add_to(at(2024, 1, 1)) - at(2024, 1, 1) == dt.timedelta(days=366)


def test_add_to_keeps_time_of_day_and_zone():
    start = dt.datetime(2025, 1, 31, 23, 59, 58, 123456, tzinfo=UTC)
    assert IsoDuration.parse("P1M").add_to(start) == dt.datetime(2025, 2, 28, 23, 59, 58, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT2S", dt.timedelta(seconds=2)),
        ("PT0.5S", dt.timedelta(milliseconds=500)),
        ("P30D", dt.timedelta(days=30)),
        ("PT10M", dt.timedelta(minutes=10)),
        ("PT1H30M", dt.timedelta(hours=1, minutes=30)),
        ("P2W", dt.timedelta(weeks=2)),
        ("P1DT12H", dt.timedelta(days=1, hours=12)),
        ("pt15m", dt.timedelta(minutes=15)),
        ("  PT1S  ", dt.timedelta(seconds=1)),
    ],
)
def test_fixed_durations(text, expected):
    duration = IsoDuration.parse(text)
    assert duration.months == 0
    assert duration.fixed == expected
    assert duration.as_timedelta() == expected


def test_minutes_in_time_part_are_not_months():
    assert IsoDuration.parse("PT1M").months == 0
    assert IsoDuration.parse("PT1M").as_timedelta() == dt.timedelta(minutes=1)
    assert IsoDuration.parse("P1M").months == 1


def test_text_is_normalized():
    assert str(IsoDuration.parse(" p12m ")) == "P12M"
    assert IsoDuration.parse("PT2S").text == "PT2S"


@pytest.mark.parametrize(
    "text",
    ["", "P", "PT", "P1DT", "12M", "1M", "P-1D", "P1.5M", "P1.5D", "PT1.5", "P1H", "PT1D", "P1M2Y", "P 1D", "hello", "PT5"],
)
def test_invalid_strings_raise_value_error(text):
    with pytest.raises(ValueError):
        IsoDuration.parse(text)


@pytest.mark.parametrize("text", ["P1M", "P12M", "P1Y", "P1MT1H"])
def test_as_timedelta_refuses_months(text):
    with pytest.raises(ValueError, match="month"):
        IsoDuration.parse(text).as_timedelta()
