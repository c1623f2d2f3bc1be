"""`python -m cumulo_blob` serves; `python -m cumulo_blob migrate` only migrates."""

from __future__ import annotations

import sys

from cumulo_blob import bootstrap
from cumulo_blob.config import BlobSettings
from cumulo_platform.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        prog="cumulo_blob",
        description="cumulo's file storage service",
        load_settings=BlobSettings.from_env,
        platform_of=lambda s: s.platform,
        build=bootstrap.build,
        migrate=bootstrap.migrate,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
