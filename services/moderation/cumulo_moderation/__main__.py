"""`python -m cumulo_moderation` serves; `python -m cumulo_moderation migrate` only migrates."""

from __future__ import annotations

import sys

from cumulo_moderation import bootstrap
from cumulo_moderation.config import ModerationSettings
from cumulo_platform.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        prog="cumulo_moderation",
        description="cumulo's moderation: complaints, review, takedown, legal hold",
        load_settings=ModerationSettings.from_env,
        platform_of=lambda s: s.platform,
        build=bootstrap.build,
        migrate=bootstrap.migrate,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
