"""Pure unit tests of the in-memory call limit (cumulo_platform.call_limit): an allowance per key
(auth's per client network, blob's per account), each call spending what it costs; no servers,
time given."""

from __future__ import annotations

import datetime as dt

import pytest

from cumulo_platform.call_limit import CallLimit

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def test_calls_up_to_the_limit_are_admitted_then_told_when_the_window_ends():
    limit = CallLimit(calls=3, window=MINUTE)
    assert [limit.admit("a", START + dt.timedelta(seconds=s)) for s in (0, 10, 20)] == [None, None, None]
    assert limit.admit("a", START + dt.timedelta(seconds=45)) == dt.timedelta(seconds=15)
    # A refused call is not counted: the next window is a whole one.
    assert limit.admit("a", START + MINUTE) is None
    assert [limit.admit("a", START + MINUTE) for _ in range(2)] == [None, None]
    assert limit.admit("a", START + MINUTE) == MINUTE


def test_each_key_has_its_own_window():
    limit = CallLimit(calls=1, window=MINUTE)
    assert limit.admit("a", START) is None
    assert limit.admit("a", START) is not None
    assert limit.admit("b", START) is None


def test_ended_windows_are_forgotten():
    limit = CallLimit(calls=1, window=MINUTE)
    for n in range(1000):
        limit.admit(f"address {n}", START)
    assert len(limit) == 1000
    limit.admit("late", START + MINUTE)
    assert len(limit) == 1


def test_past_the_most_keys_the_oldest_window_goes_first():
    limit = CallLimit(calls=1, window=MINUTE, max_keys=2)
    for key in ("a", "b", "c"):
        assert limit.admit(key, START) is None
    assert len(limit) == 2
    assert limit.admit("c", START) is not None  # still counted
    assert limit.admit("a", START) is None  # forgotten to make room


def test_a_clock_put_back_opens_a_new_window():
    limit = CallLimit(calls=1, window=MINUTE)
    assert limit.admit("a", START + dt.timedelta(hours=1)) is None
    assert limit.admit("a", START) is None
    assert limit.admit("a", START) == MINUTE


@pytest.mark.parametrize(("calls", "window"), [(0, MINUTE), (1, dt.timedelta(0))])
def test_a_limit_that_admits_nothing_is_refused(calls, window):
    with pytest.raises(ValueError):
        CallLimit(calls=calls, window=window)


def test_a_call_spends_what_it_costs_of_the_window():
    limit = CallLimit(calls=12, window=MINUTE)
    assert [limit.admit("a", START, cost=4) for _ in range(3)] == [None, None, None]
    assert limit.admit("a", START, cost=4) == MINUTE  # nothing is left
    assert limit.admit("a", START) == MINUTE
    assert limit.admit("b", START, cost=1) is None


def test_a_call_that_does_not_fit_what_is_left_is_refused_and_spends_nothing():
    limit = CallLimit(calls=5, window=MINUTE)
    assert limit.admit("a", START, cost=3) is None
    assert limit.admit("a", START, cost=3) == MINUTE
    assert [limit.admit("a", START) for _ in range(2)] == [None, None]
    assert limit.admit("a", START) == MINUTE


def test_a_call_dearer_than_a_whole_window_takes_a_whole_window():
    limit = CallLimit(calls=3, window=MINUTE)
    assert limit.admit("a", START, cost=4) is None
    assert limit.admit("a", START, cost=1) == MINUTE
    assert limit.admit("a", START + MINUTE, cost=4) is None


def test_a_call_costs_something():
    with pytest.raises(ValueError):
        CallLimit(calls=3, window=MINUTE).admit("a", START, cost=0)
