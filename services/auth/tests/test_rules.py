"""Pure unit tests of the account rules (domain/rules.py) and the login throttle policy
(domain/throttle.py): no servers, no I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from cumulo_auth.domain import rules
from cumulo_auth.domain.throttle import PENDING_TTL, CounterState, ThrottlePolicy, Verdict
from cumulo_platform import ages
from cumulo_platform.errors import InvalidArgument


def refused(call, *args, **kwargs) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        call(*args, **kwargs)
    return info.value


# --- e-mail -------------------------------------------------------------------------


def test_email_is_trimmed_and_lowercased():
    assert rules.normalize_email("  Alice.Smith@Example.COM \n") == "alice.smith@example.com"


def test_email_is_nfc_normalized():
    decomposed = "Jose\u0301@example.com"
    assert rules.normalize_email(decomposed) == "jos\u00e9@example.com"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "al ice@example.com",
        "alice@exa mple.com",
        "a" * 65 + "@example.com",
        "alice@" + "b" * 250 + ".com",
    ],
)
def test_malformed_email_is_refused_naming_the_field(value):
    err = refused(rules.normalize_email, value)
    assert err.field == "email"
    assert err.reason == "INVALID_ARGUMENT"


def test_email_local_part_of_64_characters_is_accepted():
    email = "a" * 64 + "@example.com"
    assert rules.normalize_email(email) == email


def test_email_error_names_the_field_it_is_given():
    assert refused(rules.normalize_email, "nope", "login").field == "login"


# --- phone --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+8613800138000", "+8613800138000"),
        (" +86 138 0013 8000 ", "+8613800138000"),
        ("+86-138-0013-8000", "+8613800138000"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("+12345678", "+12345678"),  # 8 digits: the shortest accepted
        ("+123456789012345", "+123456789012345"),  # 15 digits: the E.164 maximum
    ],
)
def test_phone_is_normalized_to_e164(typed, stored):
    assert rules.normalize_phone(typed) == stored


@pytest.mark.parametrize(
    "value",
    [
        "",
        "13800138000",  # no country code
        "008613800138000",  # international prefix instead of +
        "+0123456789",  # country codes never start with 0
        "+1234567",  # too short
        "+1234567890123456",  # 16 digits: longer than E.164 allows
        "+86 138 abcd 8000",
        "+86.138.0013.8000",
    ],
)
def test_phone_not_in_e164_form_is_refused_naming_the_field(value):
    assert refused(rules.normalize_phone, value).field == "phone"


# --- login key ----------------------------------------------------------------------


def test_login_key_normalizes_an_email():
    assert rules.login_key("  Bob@Example.com ") == "bob@example.com"


def test_login_key_normalizes_a_phone():
    assert rules.login_key(" +86 138 0013 8000") == "+8613800138000"


@pytest.mark.parametrize("value", ["", "   ", "bob", "bob@", "13800138000"])
def test_login_key_refuses_what_is_neither_email_nor_phone(value):
    assert refused(rules.login_key, value).field == "login"


# --- password -----------------------------------------------------------------------


def test_password_of_8_characters_is_accepted():
    assert rules.check_password("xkcd-936") == "xkcd-936"


def test_password_of_7_characters_is_refused():
    assert refused(rules.check_password, "xkcd-93").field == "password"


def test_password_of_128_characters_is_accepted():
    password = "horse-" * 21 + "xy"
    assert len(password) == 128
    assert rules.check_password(password) == password


def test_password_of_129_characters_is_refused():
    password = "horse-" * 21 + "xyz"
    assert len(password) == 129
    assert refused(rules.check_password, password).field == "password"


def test_password_error_names_the_given_field():
    assert refused(rules.check_password, "short", field="new_password").field == "new_password"


@pytest.mark.parametrize("password", ["password", "Password1", "PASSWORD123", "12345678", "woaini1314", "qwertyui"])
def test_common_password_is_refused_whatever_its_case(password):
    err = refused(rules.check_password, password)
    assert err.field == "password"
    assert err.reason == "PASSWORD_TOO_COMMON"


def test_common_password_typed_in_full_width_characters_is_refused():
    # NFKC folds full-width letters to ASCII, so this is "password".
    err = refused(rules.check_password, "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44")
    assert err.reason == "PASSWORD_TOO_COMMON"


def test_password_length_is_counted_after_nfkc_normalization():
    # Four "ff" ligatures are eight letters once normalized.
    assert rules.check_password("\ufb00" * 4) == "ffffffff"
    # Eight full-width digits are "12345678": common.
    assert refused(rules.check_password, "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18").reason == "PASSWORD_TOO_COMMON"


def test_password_of_only_spaces_is_refused():
    err = refused(rules.check_password, " " * 12)
    assert err.field == "password"
    assert err.reason != "PASSWORD_TOO_COMMON"


def test_password_equal_to_a_contact_is_refused_whatever_its_case():
    err = refused(rules.check_password, "Alice@Example.com", contacts=("alice@example.com", ""))
    assert err.field == "password"
    assert refused(rules.check_password, "+8613800138000", contacts=("", "+8613800138000")).field == "password"


def test_empty_contacts_do_not_refuse_anything():
    assert rules.check_password("a fine passphrase", contacts=("", "")) == "a fine passphrase"


# Sixteen MiB of U+FDFA, which NFKC makes 18 characters each: normalised whole, 95 million
# characters, seconds of CPU and half a gigabyte.
EXPANDING = "\ufdfa" * (16 * 1024 * 1024 // 3)
# An alpha with three marks written apart: NFKC composes these four code points into one
# (U+1F82), the most it ever composes.
ALPHA_WRITTEN_APART = "\u03b1\u0313\u0300\u0345"


def test_an_expanding_input_is_refused_before_normalization_naming_the_field():
    for field in ("password", "new_password"):
        err = refused(rules.check_password, EXPANDING, field=field)
        assert err.field == field
        assert f"at most {rules.PASSWORD_MAX_LENGTH} characters" in err.message
    assert refused(rules.normalize_password, EXPANDING, "current_password").field == "current_password"


def test_the_input_bound_never_refuses_what_normalizes_into_the_rule():
    typed = ALPHA_WRITTEN_APART * rules.PASSWORD_MAX_LENGTH
    assert len(typed) == rules.PASSWORD_MAX_INPUT_LENGTH
    assert rules.check_password(typed) == "\u1f82" * rules.PASSWORD_MAX_LENGTH
    assert refused(rules.check_password, typed + "x").field == "password"


def test_an_overlong_contact_is_refused_before_normalization():
    assert refused(rules.normalize_email, "\u0344" * (8 * 1024 * 1024) + "@example.com").field == "email"
    assert refused(rules.normalize_email, "a@example.com" + " " * rules.EMAIL_MAX_INPUT_LENGTH).field == "email"
    assert refused(rules.normalize_phone, "+86 " + "1" * 8 * 1024 * 1024).field == "phone"
    assert refused(rules.login_key, "1" * 8 * 1024 * 1024).field == "login"


# --- birth date and age -------------------------------------------------------------

TODAY = dt.date(2026, 11, 20)


def test_birth_date_today_is_accepted():
    assert rules.check_birth_date(2026, 11, 20, today=TODAY) == TODAY


def test_birth_date_tomorrow_is_refused():
    assert refused(rules.check_birth_date, 2026, 11, 21, today=TODAY).field == "birth_date"


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(2023, 2, 29), (2001, 2, 30), (2001, 4, 31), (2001, 13, 1), (2001, 0, 10), (2001, 1, 0), (0, 1, 1), (-5, 1, 1)],
)
def test_impossible_calendar_date_is_refused(year, month, day):
    assert refused(rules.check_birth_date, year, month, day, today=TODAY).field == "birth_date"


def test_leap_day_is_a_real_birth_date():
    assert rules.check_birth_date(2024, 2, 29, today=TODAY) == dt.date(2024, 2, 29)


def test_birth_date_more_than_150_years_back_is_refused():
    assert rules.check_birth_date(1876, 1, 1, today=TODAY) == dt.date(1876, 1, 1)
    assert refused(rules.check_birth_date, 1875, 12, 31, today=TODAY).field == "birth_date"


def test_birth_date_error_names_the_given_field():
    assert refused(rules.check_birth_date, 2001, 2, 30, today=TODAY, field="dob").field == "dob"


def test_age_increases_on_the_birthday_not_before():
    born = dt.date(2008, 11, 20)
    assert ages.age_on(born, dt.date(2026, 11, 19)) == 17
    assert ages.age_on(born, dt.date(2026, 11, 20)) == 18
    assert ages.is_minor(born, dt.date(2026, 11, 19))
    assert not ages.is_minor(born, dt.date(2026, 11, 20))


def test_someone_born_on_a_leap_day_comes_of_age_on_march_first_in_common_years():
    born = dt.date(2008, 2, 29)
    assert ages.is_minor(born, dt.date(2026, 2, 28))
    assert not ages.is_minor(born, dt.date(2026, 3, 1))


def test_newborn_is_a_minor_and_age_is_zero():
    assert ages.age_on(TODAY, TODAY) == 0
    assert ages.is_minor(TODAY, TODAY)


# --- throttle policy ----------------------------------------------------------------

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
POLICY = ThrottlePolicy(
    free_failures=5,
    base_delay=dt.timedelta(seconds=1),
    max_delay=dt.timedelta(minutes=15),
    forget_after=dt.timedelta(hours=1),
)


@pytest.mark.parametrize("failures", [0, 1, 4])
def test_free_failures_do_not_block(failures):
    assert POLICY.blocked_until(failures, T0) is None


@pytest.mark.parametrize(("failures", "seconds"), [(5, 1), (6, 2), (7, 4), (8, 8), (14, 512)])
def test_delay_starts_after_the_free_failures_and_doubles(failures, seconds):
    assert POLICY.blocked_until(failures, T0) == T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("failures", [15, 40, 10_000])
def test_delay_never_exceeds_the_ceiling(failures):
    assert POLICY.blocked_until(failures, T0) == T0 + dt.timedelta(minutes=15)


def test_delay_is_counted_from_the_last_failure():
    later = T0 + dt.timedelta(minutes=3)
    assert POLICY.blocked_until(6, later) == later + dt.timedelta(seconds=2)


def test_first_failure_counts_one():
    assert POLICY.failures_after_new_failure(0, None, T0) == 1


def test_recent_failures_accumulate():
    assert POLICY.failures_after_new_failure(3, T0 - dt.timedelta(minutes=10), T0) == 4
    assert POLICY.failures_after_new_failure(3, T0 - dt.timedelta(hours=1), T0) == 4


def test_failures_are_forgotten_after_a_quiet_hour():
    assert POLICY.failures_after_new_failure(9, T0 - dt.timedelta(hours=1, seconds=1), T0) == 1


# --- attempts being checked (pending) ----------------------------------------------------


def counter(failures: int = 0, pending: int = 0, *, last_failure_at: dt.datetime = T0, blocked_until=None, pending_until=None):
    return CounterState(
        failures=failures,
        last_failure_at=last_failure_at,
        blocked_until=blocked_until,
        pending=pending,
        pending_until=pending_until if pending_until is not None else T0 + PENDING_TTL,
    )


def test_as_many_attempts_may_be_checked_at_once_as_failures_are_still_free():
    assert [POLICY.verdict(counter(pending=n), T0) for n in range(6)] == [Verdict.GO] * 5 + [Verdict.WAIT]
    assert POLICY.verdict(counter(failures=3, pending=1), T0) is Verdict.GO
    assert POLICY.verdict(counter(failures=3, pending=2), T0) is Verdict.WAIT


def test_once_the_free_failures_are_spent_one_attempt_at_a_time_after_each_delay():
    after_delay = T0 + dt.timedelta(seconds=2)
    spent = counter(failures=5, blocked_until=T0 + dt.timedelta(seconds=1))
    assert POLICY.verdict(spent, T0) is Verdict.BLOCKED
    assert POLICY.verdict(spent, after_delay) is Verdict.GO
    assert POLICY.verdict(counter(failures=5, pending=1, blocked_until=T0 + dt.timedelta(seconds=1)), after_delay) is Verdict.WAIT


def test_a_running_delay_refuses_whatever_is_pending():
    assert POLICY.verdict(counter(failures=7, blocked_until=T0 + dt.timedelta(seconds=4)), T0) is Verdict.BLOCKED


def test_forgotten_failures_give_back_their_room():
    old = T0 - dt.timedelta(hours=2)
    assert POLICY.verdict(counter(failures=4, pending=4, last_failure_at=old), T0) is Verdict.GO


def test_attempts_pending_past_their_time_were_abandoned():
    overdue = counter(pending=5, pending_until=T0)
    assert POLICY.pending_now(overdue, T0) == 0
    assert POLICY.verdict(overdue, T0) is Verdict.GO
    assert POLICY.pending_now(counter(pending=5), T0) == 5
