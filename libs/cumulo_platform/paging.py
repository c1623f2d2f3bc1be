"""Page sizes and opaque page tokens, alike in every service's list calls."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from cumulo_platform.errors import InvalidArgument

_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def page_size(value: int, *, default: int, maximum: int, field: str = "page_size") -> int:
    """0 means the default; more than `maximum` or less than 0 is refused."""
    if value < 0 or value > maximum:
        raise InvalidArgument(field, f"must be between 0 and {maximum}")
    return value or default


def encode_token(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def decode_token(token: str, *shape: type, field: str = "page_token", what: str = "a token from a previous page") -> list[Any]:
    """A token back to its values, which must have the given types (bool, int, str)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(shape)
        or not all(type(v) is t for v, t in zip(values, shape))
        or any(isinstance(v, str) and "\x00" in v for v in values)
    ):
        raise InvalidArgument(field, f"is not {what}")
    return values


def check_sha256(value: str, field: str = "sha256") -> str:
    """A hex SHA-256 digest, lower-cased."""
    digest = value.strip().lower()
    if not _HEX_SHA256.match(digest):
        raise InvalidArgument(field, "must be a SHA-256 digest: 64 hexadecimal characters")
    return digest
