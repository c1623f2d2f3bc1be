"""The notice texts: exact times in the configured zone (as the notices fill them in, with
cumulo_platform.text.local_time), every kind rendered in both locales with the same values,
durations described.

The rules under test are stated once, in calendar_cases.py.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cumulo_lifecycle.domain import notices
from cumulo_lifecycle.domain.calendar import (
    Calendar,
)
from cumulo_platform.durations import IsoDuration
from cumulo_platform.text import local_time

from .calendar_cases import (
    BERLIN,
    KOLKATA,
    MARGIN,
    NEW_YORK,
    PROPERTY,
    SHANGHAI,
    ZONE_UTC,
    at_local,
    instants,
    make_calendar,
    utc,
    zones,
)

# === notices ===========================================================================


@pytest.mark.parametrize(
    ("when", "tz", "text"),
    [
        (utc(2026, 3, 31, 20), SHANGHAI, "2026-04-01 04:00:00 CST (Asia/Shanghai)"),
        (utc(2026, 5, 1, 16), SHANGHAI, "2026-05-02 00:00:00 CST (Asia/Shanghai)"),
        (utc(2026, 1, 15, 11, 0, 5, 999999), BERLIN, "2026-01-15 12:00:05 CET (Europe/Berlin)"),
        (utc(2026, 7, 15, 10), BERLIN, "2026-07-15 12:00:00 CEST (Europe/Berlin)"),
        (utc(2026, 1, 15, 12), NEW_YORK, "2026-01-15 07:00:00 EST (America/New_York)"),
        (utc(2026, 7, 15, 12), NEW_YORK, "2026-07-15 08:00:00 EDT (America/New_York)"),
        (utc(2026, 7, 15, 12), KOLKATA, "2026-07-15 17:30:00 IST (Asia/Kolkata)"),
        (utc(2026, 7, 15, 12), ZONE_UTC, "2026-07-15 12:00:00 UTC"),
    ],
)
def test_notice_times_are_local_time_with_the_zone(when, tz, text):
    assert local_time(when, tz) == text


def test_notice_times_distinguish_the_repeated_hour():
    assert local_time(utc(2026, 10, 25, 0, 30), BERLIN) == "2026-10-25 02:30:00 CEST (Europe/Berlin)"
    assert local_time(utc(2026, 10, 25, 1, 30), BERLIN) == "2026-10-25 02:30:00 CET (Europe/Berlin)"


_FORMATTED = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)(?: \(([^)]+)\))?")


@PROPERTY
@given(when=instants, tz=zones)
def test_notice_times_name_the_instant_to_the_second(when, tz):
    match = _FORMATTED.fullmatch(local_time(when, tz))
    assert match is not None
    text, abbreviation, key = match.groups()
    local = when.astimezone(tz)
    assert (key or abbreviation) == tz.key and abbreviation == local.tzname()
    assert text == local.strftime("%Y-%m-%d %H:%M:%S")


def _notice_values(cal: Calendar, last_access: dt.datetime, locale: str) -> dict[str, str]:
    """The values the ledger fills in, for an account frozen at its freeze time."""
    tz = cal.time_zone
    freeze_at = cal.freeze_at(last_access)
    delete_at = cal.delete_at(freeze_at)
    return {
        "last_access_at": local_time(last_access, tz),
        "freeze_at": local_time(freeze_at, tz),
        "delete_at": local_time(delete_at, tz),
        "last_day": cal.last_day_of_grace(delete_at).isoformat(),
        "deleted_at": local_time(delete_at + MARGIN, tz),
        "at": local_time(last_access, tz),
        "grace": notices.describe_duration(cal.grace.months, cal.grace.fixed, locale),
        "reactivate_link": "https://cumulo.example/reactivate?token=abc",
    }


@pytest.mark.parametrize("locale", notices.LOCALES)
@pytest.mark.parametrize("kind", ["frozen", "deletion_reminder"])
def test_render_states_the_delete_time_and_the_last_day(kind, locale):
    cal = make_calendar()
    # Last access 31 Mar 2025 20:00Z (1 Apr 04:00 local): frozen 1 Apr 2026 04:00, gone 2 May 00:00.
    values = _notice_values(cal, utc(2025, 3, 31, 20), locale)
    assert values["delete_at"] == "2026-05-02 00:00:00 CST (Asia/Shanghai)"
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


@pytest.mark.parametrize("locale", notices.LOCALES)
@pytest.mark.parametrize("kind", ["frozen", "deletion_reminder"])
def test_render_states_an_exact_grace_as_a_time_not_as_the_end_of_a_day(kind, locale):
    cal = make_calendar(grace="PT30S")
    frozen_at = at_local(SHANGHAI, 2026, 12, 4, 14, 3, 55)
    values = _notice_values(cal, frozen_at - dt.timedelta(days=400), locale) | {
        "delete_at": local_time(cal.delete_at(frozen_at), cal.time_zone),
        "last_day": "",  # what the ledger fills in for an exact grace
    }
    rendered = notices.render(kind, locale, values)
    assert "2026-12-04 14:04:25 CST (Asia/Shanghai)" in rendered.subject
    assert "2026-12-04 14:04:25 CST (Asia/Shanghai)" in rendered.body
    assert "ends" not in rendered.body and "结束时" not in rendered.body
    if locale == "en":
        assert "deleted permanently at 2026-12-04 14:04:25 CST (Asia/Shanghai)." in rendered.body
    else:
        assert "于 2026-12-04 14:04:25 CST (Asia/Shanghai) 被永久删除" in rendered.body


@pytest.mark.parametrize(("locale", "grace"), [("en", "30 days"), ("zh-CN", "30 天")])
def test_render_freeze_reminder_states_the_freeze_time_and_the_grace(locale, grace):
    cal = make_calendar()
    values = _notice_values(cal, at_local(SHANGHAI, 2028, 2, 29, 12), locale)
    rendered = notices.render("freeze_reminder", locale, values)
    assert "2029-02-28 12:00:00 CST (Asia/Shanghai)" in rendered.subject
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
