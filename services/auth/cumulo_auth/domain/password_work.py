"""The price of each anonymous call that checks a password, in the platform's `CallLimit`."""

from __future__ import annotations


class PasswordWork:
    """What each anonymous call that checks a password spends of its client address's one
    allowance (CUMULO_AUTH_PASSWORD_CHECKS_PER_ADDRESS units per CUMULO_AUTH_PASSWORD_CHECK_WINDOW;
    by default 60 a minute). One allowance, not one per call, so that a client cannot spend
    each in full: CheckNewPassword runs the password rules; a login verifies a hash (its
    wrong guesses are throttled besides, see cumulo_auth.throttling); a new account pays for a
    64 MiB hash and a row, and keeps the address's new accounts to a quarter of its checks (15
    a minute by default, however many callers share the address)."""

    CHECK = 1
    LOGIN = 1
    NEW_ACCOUNT = 4
