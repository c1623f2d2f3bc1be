"""What a file or folder may be called, and hex SHA-256 digests. Pure; raises InvalidArgument."""

from __future__ import annotations

import re
import unicodedata

from cumulo_platform.errors import InvalidArgument

MAX_NAME_BYTES = 255
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def check_name(name: str, field: str = "name") -> str:
    """NFC-normalised; no '/', NUL or other control characters; not '.' or '..'; at most 255
    bytes of UTF-8; no leading or trailing spaces (they make names that look alike)."""
    normalized = unicodedata.normalize("NFC", name)
    if not normalized:
        raise InvalidArgument(field, "must not be empty")
    if normalized in (".", ".."):
        raise InvalidArgument(field, "must not be '.' or '..'")
    if "/" in normalized or "\x00" in normalized:
        raise InvalidArgument(field, "must not contain '/' or NUL")
    if any(unicodedata.category(c) == "Cc" for c in normalized):
        raise InvalidArgument(field, "must not contain control characters")
    if normalized != normalized.strip():
        raise InvalidArgument(field, "must not begin or end with a space")
    if len(normalized.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidArgument(field, f"must be at most {MAX_NAME_BYTES} bytes of UTF-8")
    return normalized


def check_content_type(value: str, field: str = "content_type") -> str:
    content_type = value.strip() or "application/octet-stream"
    if len(content_type) > 255 or not re.match(r"^[\w.+-]+/[\w.+-]+(;.*)?$", content_type):
        raise InvalidArgument(field, "must be a media type like image/jpeg")
    return content_type
