"""`python -m cumulo_locator` serves; `python -m cumulo_locator migrate` only migrates."""

from __future__ import annotations

import sys

from cumulo_locator import bootstrap
from cumulo_locator.config import LocatorSettings
from cumulo_platform.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        prog="cumulo_locator",
        description="cumulo's find-my-device: devices, locations, commands",
        load_settings=LocatorSettings.from_env,
        platform_of=lambda s: s.platform,
        build=bootstrap.build,
        migrate=bootstrap.migrate,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
