"""What zone names, record ids and types, device ids and backup paths may be; what a record
costs against the sync quota; change tags and change tokens. Pure; raises InvalidArgument
naming the field."""

from __future__ import annotations

import re
import unicodedata
import uuid

from cumulo_platform.errors import FailedPrecondition, InvalidArgument
from cumulo_platform.paging import decode_token, encode_token
from cumulo_platform.text import check_visible

_ZONE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_RECORD_ID_BYTES = 255
MAX_TYPE_BYTES = 64
MAX_DEVICE_BYTES = 128
# A backup path is a key of PostgreSQL's B-tree index (backup_id, path), whose entries hold at
# most ~2.7 kB: a longer path would fail inside the database, not as the caller's error.
MAX_PATH_BYTES = 2048
TOKEN_VERSION = 1

# What a record costs beyond its payload, from its first save until its row is gone (a
# tombstone too, until it is pruned): its row with id, type and device name, and its index
# entries, rounded up. Without it a quota of bytes would take any number of empty records.
# Stored usage counts it: a change here needs a migration of `usage` (see 0004).
RECORD_OVERHEAD_BYTES = 512


def check_zone(name: str, field: str = "zone") -> str:
    if not _ZONE.match(name):
        raise InvalidArgument(field, "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def _printable(value: str, field: str, what: str, limit: int, *, empty: bool = False) -> str:
    if not value and not empty:
        raise InvalidArgument(field, f"{what} must not be empty")
    if len(value.encode("utf-8")) > limit:
        raise InvalidArgument(field, f"{what} must be at most {limit} bytes of UTF-8")
    if not (value.isascii() and value.isprintable()) and any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise InvalidArgument(field, f"{what} must not contain control characters")
    return value


def check_record_id(value: str, field: str) -> str:
    return _printable(value, field, "a record id", MAX_RECORD_ID_BYTES)


def check_record_type(value: str, field: str) -> str:
    return _printable(value, field, "a record type", MAX_TYPE_BYTES)


def check_device(value: str, field: str, *, empty: bool = True) -> str:
    """A device's id or name, as people see it in their list of backups and watches."""
    device = _printable(value.strip(), field, "a device", MAX_DEVICE_BYTES, empty=empty)
    check_visible(device, field, "a device")
    return device


def check_path(value: str, field: str, limit: int = MAX_PATH_BYTES) -> str:
    """A relative path with '/' between parts, NFC-normalised; no empty, '.' or '..' parts;
    its names follow the rule of every name people give (no invisible or direction
    characters), as the files' names in the blob service do."""
    path = unicodedata.normalize("NFC", value)
    _printable(path, field, "a path", min(limit, MAX_PATH_BYTES))
    check_visible(path, field, "a path")
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise InvalidArgument(field, "must be a relative path without empty, '.' or '..' parts")
    return path


# --- change tags: a record's change number, opaque to clients ----------------------------


MAX_CHANGE_TAG_CHARS = 16  # a 64-bit change number in hex


def change_tag(seq: int) -> str:
    return format(seq, "x")


def parse_change_tag(tag: str, field: str) -> int | None:
    """None for "" (no tag: create, or delete whatever is there)."""
    if tag == "":
        return None
    if len(tag) > MAX_CHANGE_TAG_CHARS:
        raise InvalidArgument(field, "is not a change tag this service gave out")
    try:
        seq = int(tag, 16)
    except ValueError:
        raise InvalidArgument(field, "is not a change tag this service gave out") from None
    if seq <= 0 or change_tag(seq) != tag:
        raise InvalidArgument(field, "is not a change tag this service gave out")
    return seq


# --- change tokens: where a device is in a zone's change order --------------------------


def change_token(zone_id: uuid.UUID, seq: int) -> str:
    return encode_token([TOKEN_VERSION, str(zone_id), seq])


def parse_change_token(token: str, zone_id: uuid.UUID | None, field: str = "change_token") -> int:
    """The change number a token stands for (0 for ""). A token of another zone, or of a
    zone deleted since, is expired: the device starts over."""
    if token == "":
        return 0
    version, zone, seq = decode_token(token, int, str, int, field=field, what="a change token this service gave out")
    if version != TOKEN_VERSION or seq < 0:
        raise InvalidArgument(field, "is not a change token this service gave out")
    if zone_id is None or zone != str(zone_id):
        raise FailedPrecondition(
            "this change token is from another zone or a zone deleted since: fetch the zone again from an empty token",
            reason="CHANGE_TOKEN_EXPIRED",
        )
    return seq
