"""`python -m cumulo_auth` serves; `python -m cumulo_auth migrate` only migrates (for a
Kubernetes Job); `python -m cumulo_auth register-client ID NAME` registers a client app."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from cumulo_auth import bootstrap
from cumulo_auth.config import AuthSettings
from cumulo_platform.service import Command, service_main


def _configure_register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("client_id")
    parser.add_argument("name")


async def _register_client(settings: AuthSettings, args: argparse.Namespace) -> None:
    app = await bootstrap.build(dataclasses.replace(settings, register_development_clients=False))
    try:
        await app.client_apps.register(args.client_id, args.name)
    finally:
        await app.db.dispose()


def main(argv: list[str] | None = None) -> int:
    return service_main(
        prog="cumulo_auth",
        description="cumulo's account service",
        load_settings=AuthSettings.from_env,
        platform_of=lambda s: s.platform,
        build=bootstrap.build,
        migrate=bootstrap.migrate,
        commands={"register-client": Command("register a client app", _configure_register, _register_client)},
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
