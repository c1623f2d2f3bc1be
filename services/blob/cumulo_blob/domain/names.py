"""What a file or folder may be called, how deep folders may nest, and hex SHA-256 digests.
Pure; raises InvalidArgument."""

from __future__ import annotations

import re
import unicodedata

from cumulo_platform.errors import FailedPrecondition, InvalidArgument
from cumulo_platform.text import check_visible

MAX_NAME_BYTES = 255
# Folders in a chain from the root, the root not counted. Deeper trees are no use to people
# and every path walk (liveness, moves, exports) costs a step per level.
MAX_FOLDER_DEPTH = 64
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def check_name(name: str, field: str = "name") -> str:
    """NFC-normalised; no '/', NUL or other control characters, nor invisible or
    text-direction ones (cumulo_platform.text.check_visible); not '.' or '..'; at most 255
    bytes of UTF-8; no leading or trailing spaces (they make names that look alike)."""
    normalized = unicodedata.normalize("NFC", name)
    if not normalized:
        raise InvalidArgument(field, "must not be empty")
    if normalized in (".", ".."):
        raise InvalidArgument(field, "must not be '.' or '..'")
    if "/" in normalized or "\x00" in normalized:
        raise InvalidArgument(field, "must not contain '/' or NUL")
    check_visible(normalized, field)
    if normalized != normalized.strip():
        raise InvalidArgument(field, "must not begin or end with a space")
    if len(normalized.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidArgument(field, f"must be at most {MAX_NAME_BYTES} bytes of UTF-8")
    return normalized


def check_depth(depth: int, limit: int, field: str) -> None:
    """`depth`: how deep the deepest folder would be after the change (a creation or a move
    under `field`'s folder); refused as the tree's state, like a move into itself."""
    if depth > limit:
        raise FailedPrecondition(
            f"{field}: folders nest at most {limit} deep; this would make {depth}",
            reason="FOLDER_TOO_DEEP", metadata={"field": field},
        )


def check_content_type(value: str, field: str = "content_type") -> str:
    content_type = value.strip() or "application/octet-stream"
    if len(content_type) > 255 or not re.match(r"^[\w.+-]+/[\w.+-]+(;.*)?$", content_type):
        raise InvalidArgument(field, "must be a media type like image/jpeg")
    return content_type
