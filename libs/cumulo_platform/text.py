"""Text that users type (names, descriptions, messages): trimmed, NFC-normalised, bounded,
free of control characters; names also free of invisible and text-direction characters.
Raises InvalidArgument naming the field, never echoing the value.
And times as people read them in notices."""

from __future__ import annotations

import datetime as dt
import unicodedata
import zoneinfo

from cumulo_platform.errors import InvalidArgument

_LINE_BREAKS = frozenset("\n\t")
INVISIBLE_CHARACTER = "INVISIBLE_CHARACTER"

ZWNJ, ZWJ = "\u200c", "\u200d"
_VIRAMA = 9  # canonical combining class of a virama (Devanagari, Bengali, Tamil, ...)
_VARIATION_SELECTOR_16 = "\ufe0f"
# Letters that show as nothing: the Hangul fillers are the usual "blank name".
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def check_text(
    value: str, field: str, what: str, limit: int, *, empty: bool = True, multiline: bool = False, name: bool = False
) -> str:
    """`name`: something people tell apart by how it looks (a device's name, a label), so
    `check_visible` too."""
    text = unicodedata.normalize("NFC", value.strip())
    if not text and not empty:
        raise InvalidArgument(field, f"{what} must not be empty")
    if len(text) > limit:
        raise InvalidArgument(field, f"{what} must be at most {limit} characters")
    allowed = _LINE_BREAKS if multiline else frozenset()
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in text):
        raise InvalidArgument(field, f"{what} must not contain control characters")
    if name:
        check_visible(text, field, what)
    return text


def check_visible(text: str, field: str, what: str = "") -> None:
    """The rule for whatever users name (files, folders, devices, backup paths): every
    character shows. Refused: control characters (Cc), format characters (Cf: zero-width
    spaces and joiners, direction marks, embeddings, overrides and isolates such as U+202E,
    the byte-order mark, soft hyphens, tags), line and paragraph separators and the Hangul
    fillers — they make a name look like another ("invoice" U+202E "fdp.exe" shows
    as "invoiceexe.pdf") or like nothing. Allowed are the joiners where writing needs them: after
    a virama (Indic conjuncts, as IDNA allows), ZWJ inside an emoji sequence (👩‍💻), ZWNJ
    between Arabic-script letters (Persian "می‌خواهم")."""
    subject = f"{what} " if what else ""
    for i, c in enumerate(text):
        category = unicodedata.category(c)
        if category in ("Cc", "Cs"):
            raise InvalidArgument(field, f"{subject}must not contain control characters")
        if (category in ("Cf", "Zl", "Zp") or c in _BLANK_LETTERS) and not _joiner_in_place(text, i):
            raise InvalidArgument(
                field,
                f"{subject}must not contain invisible or text-direction characters (U+{ord(c):04X} at position {i + 1})",
                reason=INVISIBLE_CHARACTER,
            )


def _joiner_in_place(text: str, i: int) -> bool:
    c = text[i]
    if c not in (ZWJ, ZWNJ) or i == 0 or i == len(text) - 1:
        return False
    before, after = text[i - 1], text[i + 1]
    if unicodedata.combining(before) == _VIRAMA:
        return True
    if c == ZWJ:
        return _emoji_end(text, i - 1) and unicodedata.category(after) == "So"
    return _arabic_letter(before) and _arabic_letter(after)


def _emoji_end(text: str, j: int) -> bool:
    """Whether text[j] ends an emoji: a pictograph, maybe with VS16 or a skin tone after it."""
    if j > 0 and (text[j] == _VARIATION_SELECTOR_16 or "\U0001f3fb" <= text[j] <= "\U0001f3ff"):
        j -= 1
    return unicodedata.category(text[j]) == "So"


def _arabic_letter(c: str) -> bool:
    return unicodedata.category(c).startswith("L") and unicodedata.name(c, "").startswith("ARABIC")


def local_time(at: dt.datetime, zone: zoneinfo.ZoneInfo, *, seconds: bool = True) -> str:
    """ "2026-12-04 14:04:25 CST (Asia/Shanghai)": the abbreviation tells a repeated hour apart
    (CEST, then CET), the zone's name says whose clock it is (abbreviations are ambiguous)."""
    local = at.astimezone(zone)
    short = local.tzname() or ""
    shown = f"{local:%Y-%m-%d %H:%M:%S}" if seconds else f"{local:%Y-%m-%d %H:%M}"
    return f"{shown} {short}" + ("" if short == zone.key else f" ({zone.key})")


def mask_contact(destination: str) -> str:
    """An e-mail address or phone number shown or kept once it must not be usable: enough to
    recognise ("a***@example.com", "+86***00"), not to write to."""
    if "@" in destination:
        name, _, domain = destination.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"{destination[:3]}***{destination[-2:]}" if len(destination) > 5 else "***"
