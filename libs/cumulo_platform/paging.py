"""Page sizes and opaque page tokens, alike in every service's list calls.

A token comes back from the client, so it is input like any other: bounded in length, decoded
strictly (base64url, then a JSON list of plain values of the expected types) and answered
with INVALID_ARGUMENT naming the field when it is anything else — never an error inside."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any

from cumulo_platform.errors import InvalidArgument

_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Longer than any token a service gives out: the longest holds a backup path (at most
# 2 KiB of UTF-8), which base64 makes ~2.8 KiB.
MAX_TOKEN_CHARS = 4096
_INT64 = range(-(2**63), 2**63)


def page_size(value: int, *, default: int, maximum: int, field: str = "page_size") -> int:
    """0 means the default; more than `maximum` or less than 0 is refused."""
    if value < 0 or value > maximum:
        raise InvalidArgument(field, f"must be between 0 and {maximum}")
    return value or default


def encode_token(values: list[Any]) -> str:
    # Non-ASCII text as UTF-8, not \\u escapes: a token of a long name stays short.
    return base64.urlsafe_b64encode(json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()).decode()


def decode_token(token: str, *shape: type, field: str = "page_token", what: str = "a token from a previous page") -> list[Any]:
    """A token back to its values, which must have the given types (bool, int, str): ints
    within 64 bits, strings without NUL and encodable as UTF-8 (the database's text)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument(field, f"is not {what}: longer than {MAX_TOKEN_CHARS} characters")
    try:
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        values = json.loads(raw)
    except (ValueError, TypeError, RecursionError, binascii.Error):  # UnicodeError is a ValueError
        values = None
    if not (isinstance(values, list) and len(values) == len(shape) and all(_fits(v, t) for v, t in zip(values, shape))):
        raise InvalidArgument(field, f"is not {what}")
    return values


def _fits(value: Any, kind: type) -> bool:
    if type(value) is not kind:  # exactly: True is no int, 1 is no bool
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return value in _INT64
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, e.g. from "\\ud800"
            return False
        return "\x00" not in value
    return True


def token_time(value: str, field: str = "page_token", what: str = "a token from a previous page") -> dt.datetime:
    """A time a token carries (as `datetime.isoformat()` wrote it): with its UTC offset, and
    one the database can hold."""
    try:
        at = dt.datetime.fromisoformat(value)
        if at.tzinfo is None:
            raise ValueError("no UTC offset")
        return at.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved past the calendar's end
        raise InvalidArgument(field, f"is not {what}") from None


def check_sha256(value: str, field: str = "sha256") -> str:
    """A hex SHA-256 digest, lower-cased."""
    digest = value.strip().lower()
    if not _HEX_SHA256.match(digest):
        raise InvalidArgument(field, "must be a SHA-256 digest: 64 hexadecimal characters")
    return digest
