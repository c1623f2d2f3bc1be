"""Account rules: what a valid e-mail, phone, password and birth date are (who is a minor is
the platform's `ages`, shared with every service). Pure functions, no I/O; they raise
InvalidArgument naming the field."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from cumulo_platform.errors import InvalidArgument

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
# Inputs longer than these are refused before any normalisation runs. NFKC turns one code
# point into as many as eighteen (U+FDFA), so the rule counts after it; but a message of
# megabytes must not first cost seconds of the event loop and hundreds of megabytes. NFKC
# composes at most four code points into one (a Greek vowel with three marks), so a longer
# input can never fit the rule; and 4 x 128 code points are at most 2 KiB of UTF-8. NFC
# (e-mail addresses) composes no more than that either.
PASSWORD_MAX_INPUT_LENGTH = 4 * PASSWORD_MAX_LENGTH
EMAIL_MAX_LENGTH = 254
EMAIL_MAX_INPUT_LENGTH = 4 * EMAIL_MAX_LENGTH
PHONE_MAX_INPUT_LENGTH = 64  # E.164's 16 characters, with room for the spaces and dashes people type
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")
# The most common passwords in public breach corpora: refused, as NIST SP 800-63B asks.
COMMON_PASSWORDS = frozenset(
    {
        "password", "password1", "password123", "12345678", "123456789", "1234567890",
        "11111111", "00000000", "88888888", "66666666", "87654321", "qwertyui", "qwerty123",
        "iloveyou", "sunshine", "princess", "football", "baseball", "welcome1", "abc12345",
        "abcd1234", "a1234567", "1qaz2wsx", "zxcvbnm1", "passw0rd", "letmein1", "trustno1",
        "woaini1314", "aa123456", "qq123456", "11223344", "12341234", "asdfghjk",
    }
)


def normalize_email(value: str, field: str = "email") -> str:
    email = unicodedata.normalize("NFC", value.strip()).lower() if len(value) <= EMAIL_MAX_INPUT_LENGTH else ""
    if len(email) > EMAIL_MAX_LENGTH or not _EMAIL.match(email):
        raise InvalidArgument(field, "must be an e-mail address like name@example.com")
    return email


def normalize_phone(value: str, field: str = "phone") -> str:
    phone = re.sub(r"[\s\-()]", "", value.strip()) if len(value) <= PHONE_MAX_INPUT_LENGTH else ""
    if not _PHONE.match(phone):
        raise InvalidArgument(field, "must be a phone number in E.164 form, like +8613800138000")
    return phone


def login_key(login: str) -> str:
    """The normalized login, as looked up and as throttled."""
    login = login.strip()
    if not login:
        raise InvalidArgument("login", "must be the account's e-mail address or phone number")
    if "@" in login:
        return normalize_email(login, "login")
    return normalize_phone(login, "login")


def normalize_password(password: str, field: str = "password") -> str:
    """NFKC, as stored: a password typed with composed or decomposed accents, or full-width
    letters, is the same password. An input too long to be one is refused first."""
    if len(password) > PASSWORD_MAX_INPUT_LENGTH:
        raise InvalidArgument(field, f"must be at most {PASSWORD_MAX_LENGTH} characters")
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, *, field: str = "password", contacts: tuple[str, ...] = ()) -> str:
    """NIST SP 800-63B: length rules and a blocklist, no composition rules."""
    normalized = normalize_password(password, field)
    if len(normalized) < PASSWORD_MIN_LENGTH:
        raise InvalidArgument(field, f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(normalized) > PASSWORD_MAX_LENGTH:
        raise InvalidArgument(field, f"must be at most {PASSWORD_MAX_LENGTH} characters")
    if normalized.strip() == "":
        raise InvalidArgument(field, "must not be only spaces")
    if normalized.lower() in COMMON_PASSWORDS:
        raise InvalidArgument(field, "is one of the most common passwords; choose another", reason="PASSWORD_TOO_COMMON")
    if any(c and normalized.lower() == c.lower() for c in contacts):
        raise InvalidArgument(field, "must not be the account's e-mail address or phone number")
    return normalized


def check_birth_date(year: int, month: int, day: int, today: dt.date, field: str = "birth_date") -> dt.date:
    try:
        born = dt.date(year, month, day)
    except ValueError:
        raise InvalidArgument(field, "must be a real calendar date") from None
    if born > today:
        raise InvalidArgument(field, "must not be in the future")
    if today.year - born.year > 150:
        raise InvalidArgument(field, "must be within the last 150 years")
    return born
