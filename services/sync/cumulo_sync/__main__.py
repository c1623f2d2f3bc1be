"""`python -m cumulo_sync` serves; `python -m cumulo_sync migrate` only migrates."""

from __future__ import annotations

import sys

from cumulo_platform.service import service_main
from cumulo_sync import bootstrap
from cumulo_sync.config import SyncSettings


def main(argv: list[str] | None = None) -> int:
    return service_main(
        prog="cumulo_sync",
        description="cumulo's record sync and device backups",
        load_settings=SyncSettings.from_env,
        platform_of=lambda s: s.platform,
        build=bootstrap.build,
        migrate=bootstrap.migrate,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
