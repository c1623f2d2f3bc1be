"""`timestamp` gives what protobuf's own FromDatetime gives, for any time it can hold."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from cumulo_platform.grpc_convert import timestamp

ZONES = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-5, minutes=-30)), None])


@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)), ZONES)
def test_timestamp_is_protobufs_own(when: dt.datetime, zone: dt.tzinfo | None) -> None:
    when = when.replace(tzinfo=zone)
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(when)
    assert timestamp(when) == expected


def test_none_stays_none() -> None:
    assert timestamp(None) is None


def test_a_time_a_timestamp_cannot_hold_is_refused() -> None:
    for when in (dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-2)))):
        with pytest.raises(ValueError, match="outside what a Timestamp holds"):
            timestamp(when)
