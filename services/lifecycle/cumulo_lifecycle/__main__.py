"""`python -m cumulo_lifecycle` serves; `python -m cumulo_lifecycle migrate` only migrates."""

from __future__ import annotations

import sys

from cumulo_lifecycle import bootstrap
from cumulo_lifecycle.config import LifecycleSettings
from cumulo_platform.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        prog="cumulo_lifecycle",
        description="cumulo's account lifecycle: last access, freeze, notices, deletion",
        load_settings=LifecycleSettings.from_env,
        platform_of=lambda s: s.platform,
        build=bootstrap.build,
        migrate=bootstrap.migrate,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
