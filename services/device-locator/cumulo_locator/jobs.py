"""The locator's periodic work, which any replica may run: positions past the retention go
(a held account's stay), commands past their time to live expire."""

from __future__ import annotations

from cumulo_locator.commands import Commands
from cumulo_locator.config import LocatorSettings
from cumulo_locator.devices import Devices
from cumulo_platform.runtime import Job, periodic


def jobs(settings: LocatorSettings, devices: Devices, commands: Commands) -> list[Job]:
    return [
        periodic(devices.prune, every=settings.prune_every.total_seconds()),
        periodic(commands.expire, every=settings.expire_every.total_seconds()),
    ]
