"""Small conversions every servicer needs."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z


def timestamp(when: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """As `Timestamp.FromDatetime` (a naive time is UTC), at a third of its cost: it is on
    every answer's path."""
    if when is None:
        return None
    delta = (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)) - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise ValueError(f"{when.isoformat()} is outside what a Timestamp holds (years 1 to 9999 in UTC)")
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=delta.microseconds * 1000)
