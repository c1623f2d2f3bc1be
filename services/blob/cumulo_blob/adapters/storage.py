"""Where blob keeps its objects in its bucket."""

from __future__ import annotations


def object_key(account_id: str, object_id: str) -> str:
    """Objects live per account (no cross-account deduplication: it would leak who holds
    what); the content table maps each account's SHA-256 to its one stored object."""
    return f"accounts/{account_id}/objects/{object_id}"
