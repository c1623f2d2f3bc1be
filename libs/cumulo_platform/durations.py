"""ISO-8601 durations with calendar months, as the product's periods are configured.

"P12M" means twelve calendar months, kept apart from the fixed part (days, hours, seconds): a
month has no fixed length. Whoever adds one decides on whose calendar (the lifecycle adds
months on the configured zone's wall clock, clamped to the month's end).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


@dataclasses.dataclass(frozen=True)
class IsoDuration:
    months: int
    fixed: dt.timedelta
    text: str

    @classmethod
    def parse(cls, text: str) -> IsoDuration:
        match = _PATTERN.match(text.strip().upper())
        if not match:
            raise ValueError(f"not an ISO-8601 duration: {text!r} (e.g. P12M, P30D, PT10M)")
        parts = {k: v for k, v in match.groupdict().items() if v is not None}
        months = int(parts.get("years", 0)) * 12 + int(parts.get("months", 0))
        fixed = dt.timedelta(
            weeks=int(parts.get("weeks", 0)),
            days=int(parts.get("days", 0)),
            hours=int(parts.get("hours", 0)),
            minutes=int(parts.get("minutes", 0)),
            seconds=float(parts.get("seconds", 0)),
        )
        return cls(months=months, fixed=fixed, text=text.strip().upper())

    def as_timedelta(self) -> dt.timedelta:
        """Only for durations without months (intervals, TTLs)."""
        if self.months:
            raise ValueError(f"{self.text} has calendar months and no fixed length")
        return self.fixed

    def __str__(self) -> str:
        return self.text
