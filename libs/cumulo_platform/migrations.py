"""Alembic, once for every service: each service keeps its own migrations folder whose env.py
calls `run_env()`, and its own version table inside its own schema.

Migrations run on start-up (CUMULO_MIGRATE_ON_START) and as `python -m <service> migrate`
for Kubernetes Jobs. An advisory lock lets replicas start together safely.
"""

from __future__ import annotations

import asyncio
import pathlib

import sqlalchemy as sa
from alembic import command, context, op
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from cumulo_platform.db import async_url


def alembic_config(database_url: str, schema: str, script_location: pathlib.Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = schema
    return config


def upgrade(database_url: str, schema: str, script_location: pathlib.Path, revision: str = "head") -> None:
    """Blocking; from async code call it through asyncio.to_thread (it runs its own loop)."""
    command.upgrade(alembic_config(database_url, schema, script_location), revision)


def downgrade(database_url: str, schema: str, script_location: pathlib.Path, revision: str) -> None:
    """Back to `revision` (blocking, like `upgrade`)."""
    command.downgrade(alembic_config(database_url, schema, script_location), revision)


def run_env() -> None:
    """The body of every service's migrations/env.py."""
    config = context.config
    schema = config.attributes["schema"]

    def run(connection: sa.Connection) -> None:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"migrate:{schema}"})
        # Made here only where it is not there yet: a service's own login (role_statements)
        # finds it made for it, and may not create anything in the database itself.
        exists = connection.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}).first()
        if exists is None:
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


def create_event_tables(schema: str) -> None:
    """The outbox and processed-events tables, as every service's first revision creates them
    (frozen here: later changes to them are revisions of their own)."""
    op.create_table(
        "outbox",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        schema=schema,
    )
    op.create_index("outbox_created_at", "outbox", ["created_at"], schema=schema)
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )


def create_account_states_table(schema: str) -> None:
    """The local cache of lifecycle states (cumulo_platform.account_states), frozen here."""
    op.create_table(
        "account_states",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )


def create_legal_holds_table(schema: str) -> None:
    """The held accounts a service's clean-up leaves alone (cumulo_platform.legal_holds), frozen here."""
    op.create_table(
        "legal_holds",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("held", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def create_revocations_table(schema: str) -> None:
    """Access tokens revoked before they expire (cumulo_platform.revocations), frozen here."""
    op.create_table(
        "revocations",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("session_key", sa.Text, primary_key=True),
        sa.Column("issued_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )
    op.create_index(f"{schema}_revocations_updated_at", "revocations", ["updated_at"], schema=schema)


def index_account_states(schema: str) -> None:
    """Replicas read the cache table's recent changes every second."""
    op.create_index(f"{schema}_account_states_updated_at", "account_states", ["updated_at"], schema=schema)


def replace_primary_key(schema: str, table: str, *columns: str) -> None:
    """The table's primary key becomes `columns`, in one statement (its name kept: <table>_pkey)."""
    op.execute(
        f"ALTER TABLE {schema}.{table} DROP CONSTRAINT {table}_pkey, "
        f"ADD CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(columns)})"
    )


def lead_with_account(
    schema: str, table: str, *key: str, account: str = "account_id", unique: str | None = None, account_index: str | None = None
) -> None:
    """The table's primary key becomes (account, *key), the rows grouped by account (sharding
    later, keyed now). `unique`: an index that keeps the old key unique on its own, for the
    lookups that do not know the account; `account_index`: the index on the account alone that
    the new key's first column replaces. `account_led_no_more` undoes it."""
    if unique is not None:
        op.execute(f"CREATE UNIQUE INDEX {unique} ON {schema}.{table} ({', '.join(key)})")
    replace_primary_key(schema, table, account, *key)
    if account_index is not None:
        op.execute(f"DROP INDEX {schema}.{account_index}")


def account_led_no_more(
    schema: str, table: str, *key: str, account: str = "account_id", unique: str | None = None, account_index: str | None = None
) -> None:
    """`lead_with_account` undone (a downgrade), with the same arguments."""
    if account_index is not None:
        op.execute(f"CREATE INDEX {account_index} ON {schema}.{table} ({account})")
    replace_primary_key(schema, table, *key)
    if unique is not None:
        op.execute(f"DROP INDEX {schema}.{unique}")


def add_account_from(schema: str, table: str, parent: str, column: str) -> None:
    """A NOT NULL `account_id` for a table whose rows name their parent by `column`, filled
    from the parent in one statement; rows whose parent is gone (nothing could ever reach them)
    are deleted."""
    op.execute(f"ALTER TABLE {schema}.{table} ADD COLUMN account_id uuid")
    op.execute(
        f"UPDATE {schema}.{table} t SET account_id = p.account_id FROM {schema}.{parent} p WHERE p.{column} = t.{column}"
    )
    op.execute(f"DELETE FROM {schema}.{table} WHERE account_id IS NULL")
    op.execute(f"ALTER TABLE {schema}.{table} ALTER COLUMN account_id SET NOT NULL")


async def schema_drift(database_url: str, metadata: sa.MetaData) -> list[object]:
    """What differs between a migrated database and the tables the code declares; empty when
    the migrations and the code agree (a test per service keeps it so)."""
    engine = create_async_engine(async_url(database_url))

    def compare(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"include_schemas": True, "include_name": _only_schema(metadata.schema)}
        )
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


def _only_schema(schema: str | None):
    def include(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
        if type_ == "schema":
            return name == schema
        return not (type_ == "table" and name == "alembic_version")

    return include


def service_role(service: str) -> str:
    """The PostgreSQL login of a service: it owns that service's schema and nothing else."""
    return f"cumulo_{service}"


def role_statements(service: str, database: str) -> list[str]:
    """What a superuser runs (once, and again harmlessly) so that the service's own login owns
    its schema, and so that no other login can read it: the role (LOGIN, no other powers), the
    schema owned by it with what an earlier setup made there handed over, and the database
    closed to everybody else but their connect. `make run` runs them for every service; an
    operator runs `python -m cumulo_devstack pg-roles DATABASE` with psql, then gives each
    service its own URL (CUMULO_<SERVICE>_DATABASE_URL) with its role's password."""
    role, schema = service_role(service), service
    return [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT; END IF; END $$",
        f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION {role}',
        f'ALTER SCHEMA "{schema}" OWNER TO {role}',
        # Tables (their own sequences follow them), views and functions an earlier setup
        # made as another login.
        "DO $$ DECLARE r record; BEGIN "
        f"FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'p', 'v', 'm') LOOP "
        f"EXECUTE format('ALTER %s \"{schema}\".%I OWNER TO {role}', "
        "CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.relname); "
        "END LOOP; "
        f"FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '{schema}' LOOP "
        f"EXECUTE format('ALTER FUNCTION %s OWNER TO {role}', r.fn); END LOOP; END $$",
    ]

