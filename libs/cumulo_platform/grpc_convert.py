"""Small conversions every servicer needs."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2


def timestamp(when: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if when is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp
