"""What a device, a position and a command may be. Pure; raises InvalidArgument naming the
field and the rule, never echoing a coordinate (positions are personal data)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any

from cumulo_platform.errors import InvalidArgument
from cumulo_platform.text import check_text

MAX_DEVICE_ID = 128
MAX_TEXT = 100
MAX_LOST_MESSAGE = 200
MAX_DETAIL = 500
MAX_ACCURACY = 100_000.0  # metres
MIN_ALTITUDE, MAX_ALTITUDE = -12_000.0, 100_000.0
MAX_SPEED = 1_000.0  # metres per second: faster than any airliner
MAX_RING_SECONDS = 600
SOURCES = {1: "gps", 2: "network", 3: "wifi", 4: "cell"}
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{2,30}$")


_text = check_text


def check_device_id(value: str, field: str = "device_id", *, new: bool = False) -> str:
    """`new`: registering the device, whose id is its name in lists until it is given one;
    so it follows the rule of names (lookups take any id registered before the rule)."""
    return _text(value, field, "a device id", MAX_DEVICE_ID, empty=False, name=new)


def check_label(value: str, field: str) -> str:
    """A device's name, model or platform, as its owner picks the device from a list."""
    return _text(value, field, "it", MAX_TEXT, name=True)


def check_lost_message(value: str, field: str) -> str:
    return _text(value, field, "the message", MAX_LOST_MESSAGE)


def check_phone(value: str, field: str) -> str:
    phone = value.strip()
    if phone and not _PHONE.match(phone):
        raise InvalidArgument(field, "must be a phone number such as +86 138 0013 8000")
    return phone


def check_detail(value: str, field: str = "detail") -> str:
    return _text(value, field, "the detail", MAX_DETAIL)


def check_ring_seconds(value: int, field: str = "ring_seconds") -> int:
    seconds = value or 30
    if not 1 <= seconds <= MAX_RING_SECONDS:
        raise InvalidArgument(field, f"must be between 1 and {MAX_RING_SECONDS} seconds")
    return seconds


@dataclasses.dataclass(frozen=True)
class Point:
    measured_at: dt.datetime
    latitude: float
    longitude: float
    accuracy: float
    altitude: float
    speed: float
    battery: int
    source: str


def _number(value: float, field: str, low: float, high: float, what: str) -> float:
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidArgument(field, f"must be {what}")
    return value


def check_point(location: Any, field: str, *, now: dt.datetime, skew: dt.timedelta, retention: dt.timedelta) -> Point:
    """One reported position, every value range-checked."""
    _number(location.latitude, f"{field}.latitude", -90.0, 90.0, "between -90 and 90 degrees")
    _number(location.longitude, f"{field}.longitude", -180.0, 180.0, "between -180 and 180 degrees")
    _number(location.accuracy, f"{field}.accuracy", 0.0, MAX_ACCURACY, f"between 0 and {MAX_ACCURACY:.0f} metres")
    _number(location.altitude, f"{field}.altitude", MIN_ALTITUDE, MAX_ALTITUDE, "a plausible altitude in metres")
    _number(location.speed, f"{field}.speed", 0.0, MAX_SPEED, f"between 0 and {MAX_SPEED:.0f} m/s")
    if not -1 <= location.battery <= 100:
        raise InvalidArgument(f"{field}.battery", "must be a percentage 0-100, or -1 when unknown")
    if location.source not in SOURCES:
        raise InvalidArgument(f"{field}.source", "must name where the position came from (GPS, network, Wi-Fi, cell)")
    if not location.HasField("measured_at"):
        raise InvalidArgument(f"{field}.measured_at", "is required: when the device measured the position")
    try:
        at = location.measured_at.ToDatetime(dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field}.measured_at", "is not a valid time") from None
    if at > now + skew:
        raise InvalidArgument(f"{field}.measured_at", "is in the future (check the device's clock)")
    if at < now - retention:
        raise InvalidArgument(f"{field}.measured_at", "is older than the location history is kept")
    return Point(
        at, location.latitude, location.longitude, location.accuracy, location.altitude, location.speed, location.battery,
        SOURCES[location.source],
    )
