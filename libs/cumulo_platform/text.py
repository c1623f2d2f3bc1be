"""Text that users type (names, descriptions, messages): trimmed, NFC-normalised, bounded,
free of control characters. Raises InvalidArgument naming the field, never echoing the value."""

from __future__ import annotations

import unicodedata

from cumulo_platform.errors import InvalidArgument

_LINE_BREAKS = frozenset("\n\t")


def check_text(value: str, field: str, what: str, limit: int, *, empty: bool = True, multiline: bool = False) -> str:
    text = unicodedata.normalize("NFC", value.strip())
    if not text and not empty:
        raise InvalidArgument(field, f"{what} must not be empty")
    if len(text) > limit:
        raise InvalidArgument(field, f"{what} must be at most {limit} characters")
    allowed = _LINE_BREAKS if multiline else frozenset()
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in text):
        raise InvalidArgument(field, f"{what} must not contain control characters")
    return text
