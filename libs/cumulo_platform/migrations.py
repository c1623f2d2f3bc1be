"""Alembic, once for every service: each service keeps its own migrations folder whose env.py
calls `run_env()`, and its own version table inside its own schema.

Migrations run on start-up (CUMULO_MIGRATE_ON_START) and as `python -m <service> migrate`
for Kubernetes Jobs. An advisory lock lets replicas start together safely.
"""

from __future__ import annotations

import asyncio
import pathlib

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from cumulo_platform.db import async_url


def alembic_config(database_url: str, schema: str, script_location: pathlib.Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = schema
    return config


def upgrade(database_url: str, schema: str, script_location: pathlib.Path) -> None:
    """Blocking; from async code call it through asyncio.to_thread (it runs its own loop)."""
    command.upgrade(alembic_config(database_url, schema, script_location), "head")


def run_env() -> None:
    """The body of every service's migrations/env.py."""
    config = context.config
    schema = config.attributes["schema"]

    def run(connection: sa.Connection) -> None:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"migrate:{schema}"})
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            version_table_schema=schema,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations(schema=schema)

    async def main() -> None:
        engine = create_async_engine(async_url(config.attributes["database_url"]))
        try:
            async with engine.connect() as connection:
                await connection.run_sync(run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
