"""The lifecycle's periodic work: the sweeper (re-timing the frozen accounts first if the
settings changed), notice delivery and contact lookups."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import Histogram

from cumulo_lifecycle.accounts import Accounts
from cumulo_lifecycle.announcements import Announcements
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.notifier import Notifier
from cumulo_lifecycle.retiming import Retiming
from cumulo_lifecycle.sweeper import Sweeper
from cumulo_platform.logging import get_logger
from cumulo_platform.runtime import Job, periodic

log = get_logger(__name__)


def sweep_rounds(sweeper: Sweeper, retiming: Retiming, timer: Histogram | None = None) -> Callable[[], Awaitable[None]]:
    """One round of the sweeper's job. Re-timing is tried until it succeeds once (per start),
    but never holds the sweep up: it fails while the database is away, or before the migration
    Job has created its table, and freezes and deletions must go on meanwhile. Sweeping the
    stored due times as they are is safe: a deletion's time never moves and the margin is
    applied as the rows are taken; a stale reminder time only makes the sweeper look early (it
    puts the time right) or send that reminder late."""
    retimed = False

    async def sweep() -> None:
        nonlocal retimed
        if not retimed:
            try:
                await retiming.apply()
                retimed = True
            except Exception as exc:
                log.warning("lifecycle_retiming_failed", error=type(exc).__name__, cause=_root_cause(exc), next_try="next sweep")
        started = time.perf_counter()
        await sweeper.sweep()
        if timer is not None:
            timer.observe(time.perf_counter() - started)

    return sweep


def _root_cause(exc: BaseException) -> str:
    """The type of the innermost cause (e.g. asyncpg's UndefinedTableError), never its text:
    a database error's text may quote statements and values."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return type(exc).__name__


def jobs(
    settings: LifecycleSettings, *, sweeper: Sweeper, notifier: Notifier, accounts: Accounts, retiming: Retiming, announcements: Announcements,
    sweep_timer: Histogram | None = None,
) -> list[Job]:
    async def contacts() -> None:
        await accounts.run(every=settings.contacts_every)

    return [
        periodic(sweep_rounds(sweeper, retiming, sweep_timer), every=settings.sweep_every),
        periodic(notifier.deliver_due, every=settings.notice_every),
        # The operator's announcements, queued as notices in batches (then delivered as above).
        periodic(announcements.fan_out, every=settings.notice_every),
        contacts,
    ]
