"""IsoDuration: ISO-8601 durations with calendar months."""

from __future__ import annotations

import datetime as dt

import pytest

from cumulo_platform.durations import IsoDuration


def test_twelve_months_is_not_365_days():
    duration = IsoDuration.parse("P12M")
    assert duration.months == 12
    assert duration.fixed == dt.timedelta(0)
    with pytest.raises(ValueError, match="month"):
        duration.as_timedelta()


def test_months_and_the_fixed_part_are_kept_apart():
    duration = IsoDuration.parse("P1Y1M1DT1H")
    assert duration.months == 13
    assert duration.fixed == dt.timedelta(days=1, hours=1)


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
