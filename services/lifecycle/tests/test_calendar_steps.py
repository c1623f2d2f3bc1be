"""Calendar rules, what is due: `next_due` and `step`, one by one and as properties, and whole
sweeps of an account from its last access to its deletion. Which rows the sweeper's query takes
(the margin added to a deletion's stored due time) is tested on PostgreSQL: test_schedule_taken.py.

The rules under test are stated once, in calendar_cases.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cumulo_lifecycle.domain.calendar import (
    DELETED,
    DELETING,
    Calendar,
    Step,
)

from .calendar_cases import (
    DAY,
    MARGIN,
    PROPERTY,
    SHANGHAI,
    active,
    at_local,
    calendar_periods,
    exact_periods,
    frozen,
    instants,
    lags,
    make_calendar,
    reminder_offsets,
    shifts,
    utc,
    zones,
)

# === next_due ==========================================================================


def test_next_due_for_an_active_account_walks_through_the_reminders_to_the_freeze():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.next_due(**active(cal, last_access, 0)) == freeze_at - dt.timedelta(days=30)
    assert cal.next_due(**active(cal, last_access, 1)) == freeze_at - dt.timedelta(days=7)
    assert cal.next_due(**active(cal, last_access, 2)) == freeze_at
    assert cal.next_due(**active(cal, last_access, 5)) == freeze_at


def test_next_due_without_reminders_is_the_freeze():
    cal = make_calendar(freeze_reminders=())
    last_access = utc(2026, 1, 10, 3)
    assert cal.next_due(**active(cal, last_access)) == cal.freeze_at(last_access)


def test_next_due_for_a_frozen_account_is_the_reminder_then_the_deletion_without_the_margin():
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    assert cal.next_due(**frozen(cal, frozen_at, 0)) == delete_at - dt.timedelta(days=7)
    # The stored due time is the deletion's own: the margin is added as the sweeper takes it.
    assert cal.next_due(**frozen(cal, frozen_at, 1)) == delete_at


def test_a_changed_margin_moves_the_deletion_step_not_the_stored_due_time():
    frozen_at = utc(2026, 3, 31, 20)
    long, short = make_calendar(), make_calendar(margin=dt.timedelta(seconds=1))
    delete_at = long.delete_at(frozen_at)
    assert long.next_due(**frozen(long, frozen_at, 1)) == short.next_due(**frozen(short, frozen_at, 1)) == delete_at
    assert long.step(delete_at + dt.timedelta(seconds=1), **frozen(long, frozen_at, 1)) is None
    assert short.step(delete_at + dt.timedelta(seconds=1), **frozen(long, frozen_at, 1)) == Step("delete", delete_at)


def test_held_frozen_account_has_no_next_due():
    cal = make_calendar()
    assert cal.next_due(**frozen(cal, utc(2026, 3, 31, 20), held=True)) is None


def test_held_active_account_still_plans_its_freeze():
    # A hold stops deletion only; freezing (which deletes nothing) goes on.
    cal = make_calendar(freeze_reminders=())
    last_access = utc(2026, 1, 10, 3)
    assert cal.next_due(**active(cal, last_access, held=True)) == cal.freeze_at(last_access)


@pytest.mark.parametrize("state", [DELETING, DELETED])
def test_deleting_and_deleted_accounts_have_no_next_due(state):
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    kwargs = {**frozen(cal, frozen_at), "state": state}
    assert cal.next_due(**kwargs) is None
    assert cal.step(frozen_at + dt.timedelta(days=1000), **kwargs) is None


def test_missing_due_dates_mean_nothing_to_do():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    assert cal.next_due(**{**active(cal, last_access), "freeze_at": None}) is None
    assert cal.next_due(**{**frozen(cal, last_access), "delete_at": None}) is None
    assert cal.next_due(**{**frozen(cal, last_access), "frozen_at": None}) is None
    assert cal.step(utc(2030, 1, 1), **{**active(cal, last_access), "freeze_at": None}) is None
    assert cal.step(utc(2030, 1, 1), **{**frozen(cal, last_access), "delete_at": None}) is None


# === step ==============================================================================


def test_step_for_an_active_account():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    first, second = freeze_at - dt.timedelta(days=30), freeze_at - dt.timedelta(days=7)
    tick = dt.timedelta(microseconds=1)

    assert cal.step(first - tick, **active(cal, last_access)) is None
    assert cal.step(first, **active(cal, last_access)) == Step("remind_freeze", first, 0)
    assert cal.step(second - tick, **active(cal, last_access, 1)) is None
    assert cal.step(second, **active(cal, last_access, 1)) == Step("remind_freeze", second, 1)
    assert cal.step(freeze_at - tick, **active(cal, last_access, 2)) is None
    assert cal.step(freeze_at, **active(cal, last_access, 2)) == Step("freeze", freeze_at)


def test_step_sends_only_the_latest_of_reminders_due_together():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    # The sweeper was away for both reminders: only the 7-day one goes out.
    assert cal.step(freeze_at - DAY, **active(cal, last_access)) == Step("remind_freeze", freeze_at - dt.timedelta(days=7), 1)


def test_step_freezes_even_with_reminders_pending():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.step(freeze_at + dt.timedelta(days=3), **active(cal, last_access)) == Step("freeze", freeze_at)


def test_step_reminder_index_counts_among_the_kept_reminders():
    # P20D drops the 30-day reminder: the 7-day one is index 0.
    cal = make_calendar("P20D")
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.step(freeze_at - DAY, **active(cal, last_access)) == Step("remind_freeze", freeze_at - dt.timedelta(days=7), 0)
    assert cal.step(freeze_at - DAY, **active(cal, last_access, 1)) is None


def test_step_for_a_frozen_account_waits_for_the_safety_margin():
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    reminder = delete_at - dt.timedelta(days=7)

    assert cal.step(reminder - dt.timedelta(seconds=1), **frozen(cal, frozen_at)) is None
    assert cal.step(reminder, **frozen(cal, frozen_at)) == Step("remind_deletion", reminder, 0)
    # Due, but within the margin: an in-flight access may still land. The unsent reminder goes first.
    assert cal.step(delete_at, **frozen(cal, frozen_at)) == Step("remind_deletion", reminder, 0)
    assert cal.step(delete_at, **frozen(cal, frozen_at, 1)) is None
    assert cal.step(delete_at + MARGIN - dt.timedelta(microseconds=1), **frozen(cal, frozen_at, 1)) is None
    assert cal.step(delete_at + MARGIN, **frozen(cal, frozen_at, 1)) == Step("delete", delete_at)
    assert cal.step(delete_at + MARGIN, **frozen(cal, frozen_at, 0)) == Step("delete", delete_at)


def test_step_without_safety_margin_deletes_at_delete_at():
    cal = make_calendar(margin=dt.timedelta(0))
    frozen_at = utc(2026, 3, 31, 20)
    delete_at = cal.delete_at(frozen_at)
    assert cal.step(delete_at, **frozen(cal, frozen_at, 1)) == Step("delete", delete_at)


def test_step_never_deletes_a_held_account():
    cal = make_calendar()
    frozen_at = utc(2026, 3, 31, 20)
    for later in (dt.timedelta(days=23), dt.timedelta(days=31), dt.timedelta(days=3650)):
        assert cal.step(frozen_at + later, **frozen(cal, frozen_at, held=True)) is None


def test_step_freezes_a_held_active_account():
    cal = make_calendar()
    last_access = utc(2026, 1, 10, 3)
    freeze_at = cal.freeze_at(last_access)
    assert cal.step(freeze_at, **active(cal, last_access, 2, held=True)) == Step("freeze", freeze_at)


# --- step and next_due: properties -----------------------------------------------------


def step_around_next_due(
    cal: Calendar, kwargs: dict, shift: dt.timedelta, *, latest: dt.datetime, wait: dt.timedelta = dt.timedelta(0)
) -> tuple[dt.datetime, Step | None]:
    """`next_due` (never after `latest`) and `step` at next_due + shift: nothing before it, a
    step from `wait` after it on (a deletion waits out the margin). Answers (now, step)."""
    next_due = cal.next_due(**kwargs)
    assert next_due is not None
    assert next_due <= latest
    now = next_due + shift
    step = cal.step(now, **kwargs)
    if now < next_due:
        assert step is None
    elif now >= next_due + wait:
        assert step is not None
    return now, step


def _check_step(cal: Calendar, now: dt.datetime, kwargs: dict, times: list[dt.datetime], due: dt.datetime, action: str, remind: str) -> None:
    """Checks one step: the final action iff its time has come, else only the latest due reminder."""
    step = cal.step(now, **kwargs)
    remaining = [(i, at) for i, at in enumerate(times) if i >= kwargs["reminders_done"] and at <= now]
    if now >= due:
        assert step is not None and step.action == action
    elif remaining:
        index, at = remaining[-1]
        assert step == Step(remind, at, index)
    else:
        assert step is None


@PROPERTY
@given(tz=zones, last_access=instants, inactivity=calendar_periods, offsets=reminder_offsets, done=st.integers(0, 5), shift=shifts)
def test_active_step_and_next_due_agree(tz, last_access, inactivity, offsets, done, shift):
    cal = make_calendar(inactivity, tz=tz, freeze_reminders=offsets)
    kwargs = active(cal, last_access, done)
    freeze_at = kwargs["freeze_at"]
    now, step = step_around_next_due(cal, kwargs, shift, latest=freeze_at)
    times = cal.freeze_reminder_times(last_access, freeze_at)
    _check_step(cal, now, kwargs, times, freeze_at, "freeze", "remind_freeze")
    if step is not None and step.action == "freeze":
        assert step.due_at == freeze_at


@PROPERTY
@given(tz=zones, frozen_at=instants, grace=calendar_periods | exact_periods, offsets=reminder_offsets, margin=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=2)), done=st.integers(0, 5), shift=shifts)
def test_frozen_step_and_next_due_agree(tz, frozen_at, grace, offsets, margin, done, shift):
    cal = make_calendar(grace=grace, tz=tz, margin=margin, deletion_reminders=offsets)
    kwargs = frozen(cal, frozen_at, done)
    delete_at = kwargs["delete_at"]
    now, step = step_around_next_due(cal, kwargs, shift, latest=delete_at, wait=margin)
    if step is not None and step.action == "delete":
        assert now >= delete_at + margin and step.due_at == delete_at
    times = cal.deletion_reminder_times(frozen_at, delete_at)
    _check_step(cal, now, kwargs, times, delete_at + margin, "delete", "remind_deletion")


@PROPERTY
@given(tz=zones, frozen_at=instants, grace=calendar_periods | exact_periods, offsets=reminder_offsets, done=st.integers(0, 5), shift=shifts)
def test_held_frozen_accounts_are_never_due(tz, frozen_at, grace, offsets, done, shift):
    cal = make_calendar(grace=grace, tz=tz, deletion_reminders=offsets)
    kwargs = frozen(cal, frozen_at, done, held=True)
    assert cal.next_due(**kwargs) is None
    assert cal.step(kwargs["delete_at"] + MARGIN + abs(shift), **kwargs) is None


def _sweep(cal: Calendar, kwargs: dict, lags: list[dt.timedelta]) -> tuple[list[Step], list[dt.datetime]]:
    """Runs the sweeper as the ledger does: a look at (or after) next_due and, when nothing is
    due yet (a deletion within its margin), another once the margin has passed; one step, then
    reminders_done = index + 1. Returns the steps taken and when, up to the final freeze or
    deletion."""
    steps, times = [], []
    now = cal.next_due(**kwargs)
    for lag in lags:
        now = max(now, cal.next_due(**kwargs)) + lag
        step = cal.step(now, **kwargs)
        if step is None:
            now += cal.safety_margin
            step = cal.step(now, **kwargs)
        assert step is not None
        steps.append(step)
        times.append(now)
        if step.action in ("freeze", "delete"):
            break
        kwargs = {**kwargs, "reminders_done": step.index + 1}
    return steps, times


@PROPERTY
@given(tz=zones, last_access=instants, inactivity=calendar_periods, offsets=reminder_offsets, lags=lags)
def test_sweeping_an_active_account_sends_reminders_in_order_then_freezes(tz, last_access, inactivity, offsets, lags):
    cal = make_calendar(inactivity, tz=tz, freeze_reminders=offsets)
    kwargs = active(cal, last_access)
    reminders = cal.freeze_reminder_times(last_access, kwargs["freeze_at"])
    steps, times = _sweep(cal, kwargs, lags)
    assert steps[-1] == Step("freeze", kwargs["freeze_at"])
    sent = [s.index for s in steps[:-1]]
    assert sent == sorted(set(sent))  # each at most once, in order
    assert all(s.action == "remind_freeze" and s.due_at == reminders[s.index] for s in steps[:-1])
    assert all(s.due_at <= at for s, at in zip(steps, times))
    if not any(lags):
        # A punctual sweeper sends every reminder on time.
        assert sent == list(range(len(reminders)))
        assert times == [*reminders, kwargs["freeze_at"]]


@PROPERTY
@given(tz=zones, frozen_at=instants, grace=calendar_periods | exact_periods, offsets=reminder_offsets, lags=lags)
def test_sweeping_a_frozen_account_sends_reminders_then_deletes_after_the_margin(tz, frozen_at, grace, offsets, lags):
    cal = make_calendar(grace=grace, tz=tz, deletion_reminders=offsets)
    kwargs = frozen(cal, frozen_at)
    delete_at = kwargs["delete_at"]
    steps, times = _sweep(cal, kwargs, lags)
    assert steps[-1] == Step("delete", delete_at)
    assert times[-1] >= delete_at + MARGIN
    sent = [s.index for s in steps[:-1]]
    assert sent == sorted(set(sent))
    assert all(s.action == "remind_deletion" for s in steps[:-1])


@pytest.mark.parametrize("lag", [dt.timedelta(0), dt.timedelta(days=1), dt.timedelta(days=40)])
def test_sweeping_the_defaults_end_to_end(lag):
    cal = make_calendar()
    last_access = at_local(SHANGHAI, 2027, 1, 31, 9)
    steps, _ = _sweep(cal, active(cal, last_access), [lag] * 5)
    freeze_at = at_local(SHANGHAI, 2028, 1, 31, 9)
    expected = {
        dt.timedelta(0): [Step("remind_freeze", freeze_at - dt.timedelta(days=30), 0), Step("remind_freeze", freeze_at - dt.timedelta(days=7), 1), Step("freeze", freeze_at)],
        dt.timedelta(days=1): [Step("remind_freeze", freeze_at - dt.timedelta(days=30), 0), Step("remind_freeze", freeze_at - dt.timedelta(days=7), 1), Step("freeze", freeze_at)],
        dt.timedelta(days=40): [Step("freeze", freeze_at)],
    }[lag]
    assert steps == expected
