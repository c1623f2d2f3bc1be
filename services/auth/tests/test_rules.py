"""Pure unit tests of the account rules (domain/rules.py) and the login throttle policy
(domain/throttle.py): no servers, no I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from cumulo_auth.domain import rules
from cumulo_auth.domain.throttle import ThrottlePolicy
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
    assert rules.age_on(born, dt.date(2026, 11, 19)) == 17
    assert rules.age_on(born, dt.date(2026, 11, 20)) == 18
    assert rules.is_minor(born, dt.date(2026, 11, 19))
    assert not rules.is_minor(born, dt.date(2026, 11, 20))


def test_someone_born_on_a_leap_day_comes_of_age_on_march_first_in_common_years():
    born = dt.date(2008, 2, 29)
    assert rules.is_minor(born, dt.date(2026, 2, 28))
    assert not rules.is_minor(born, dt.date(2026, 3, 1))


def test_newborn_is_a_minor_and_age_is_zero():
    assert rules.age_on(TODAY, TODAY) == 0
    assert rules.is_minor(TODAY, TODAY)


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
