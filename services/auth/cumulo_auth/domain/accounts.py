"""An account as callers see it and whether it may be used now: rules over a stored row,
no I/O (the caller passes the time)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from cumulo_platform import ages
from cumulo_platform.account_states import AccountDeleted
from cumulo_platform.ages import local_date
from cumulo_platform.errors import FailedPrecondition, PermissionDenied

# Roles an account can be given; tokens carry them in the "roles" claim.
ROLES = ("moderator",)
LOCALES = ("zh-CN", "en")
# Statuses no internal call undoes (a cancellation is the owner's, a termination final).
CLOSED = ("terminated", "cancelled", "deleted")


def view(row: Any, *, now: dt.datetime, time_zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """An account as callers see it: minor by today's age (the stored flag says only how
    the account was created), and a suspension that has run out as active."""
    shown = dict(row._mapping)
    shown["minor"] = row.birth_date is not None and ages.is_minor(row.birth_date, local_date(now, time_zone))  # None: a tombstone
    if shown["status"] == "suspended" and shown["suspended_until"] is not None and shown["suspended_until"] <= now:
        shown["status"] = "active"
    return shown


def refusal(row: Any, now: dt.datetime) -> FailedPrecondition | PermissionDenied | None:
    """Why the account may not log in or refresh now (None: it may)."""
    if row.status == "deleted":
        return AccountDeleted()
    if row.status == "suspended" and (row.suspended_until is None or row.suspended_until > now):
        until = f" until {row.suspended_until.isoformat()}" if row.suspended_until else ""
        return PermissionDenied(f"this account is suspended{until}", reason="ACCOUNT_SUSPENDED")
    if row.status == "terminated":
        if row.export_until is not None and row.export_until > now:
            return None  # its owner may sign in to take their data out (tokens of the take-out scope)
        return PermissionDenied("this account has been terminated", reason="ACCOUNT_TERMINATED")
    if row.status == "cancelled":
        return PermissionDenied("this account has been cancelled", reason="ACCOUNT_CANCELLED")
    return None


def refuse_unless_usable(row: Any, now: dt.datetime) -> None:
    refused = refusal(row, now)
    if refused is not None:
        raise refused
