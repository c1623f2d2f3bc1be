"""The lifecycle's periodic work: the sweeper, notice delivery and contact lookups."""

from __future__ import annotations

from cumulo_lifecycle.accounts import Accounts
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_lifecycle.notifier import Notifier
from cumulo_lifecycle.sweeper import Sweeper
from cumulo_platform.runtime import Job, periodic


def jobs(settings: LifecycleSettings, *, sweeper: Sweeper, notifier: Notifier, accounts: Accounts) -> list[Job]:
    async def sweep() -> None:
        await sweeper.sweep()

    async def contacts() -> None:
        await accounts.run(every=settings.contacts_every)

    return [
        periodic(sweep, every=settings.sweep_every),
        periodic(notifier.deliver_due, every=settings.notice_every),
        contacts,
    ]
