"""`python -m cumulo_auth` serves; `python -m cumulo_auth migrate` only migrates (for a
Kubernetes Job); `python -m cumulo_auth register-client ID NAME` registers a client app."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import uvloop

from cumulo_auth import bootstrap
from cumulo_auth.config import SERVICE, AuthSettings
from cumulo_platform.logging import configure_logging
from cumulo_platform.settings import SettingsError


async def _serve(settings: AuthSettings) -> None:
    app = await bootstrap.build(settings)
    await app.runtime.run_until_signal()


async def _register_client(settings: AuthSettings, client_id: str, name: str) -> None:
    settings = dataclasses.replace(settings, register_development_clients=False)
    app = await bootstrap.build(settings)
    try:
        await app.handlers.register_client_app(client_id, name)
    finally:
        await app.db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cumulo_auth", description="cumulo's account service")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the service (default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    register = commands.add_parser("register-client", help="register a client app")
    register.add_argument("client_id")
    register.add_argument("name")
    args = parser.parse_args(argv)
    try:
        settings = AuthSettings.from_env()
    except SettingsError as exc:
        print(f"cumulo auth: {exc}", file=sys.stderr)
        return 2
    configure_logging(SERVICE, settings.platform.log_level, settings.platform.log_format)
    if args.command == "migrate":
        bootstrap.migrate(settings)
        return 0
    if args.command == "register-client":
        uvloop.run(_register_client(settings, args.client_id, args.name))
        return 0
    uvloop.run(_serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
