"""Every service's migrations build exactly the schema its code declares, from an empty database."""

import asyncio
import importlib
import uuid

import pytest
import sqlalchemy as sa

from cumulo_platform import migrations, registry
from cumulo_platform.db import create_engine


def _service(module: str) -> tuple[str, sa.MetaData, object]:
    """Every service is laid out alike: adapters/tables.py declares, bootstrap.MIGRATIONS builds."""
    tables = importlib.import_module(f"{module}.adapters.tables")
    bootstrap = importlib.import_module(f"{module}.bootstrap")
    return tables.SCHEMA, tables.metadata, bootstrap.MIGRATIONS


SERVICES = {name: _service(backend.module) for name, backend in registry.SERVICES.items()}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_migrated_schema_matches_the_declared_tables(infra, service):
    schema, metadata, scripts = SERVICES[service]
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    assert await migrations.schema_drift(url, metadata) == []


async def test_schema_drift_is_detected(infra):
    """The check above can fail: a declared column the migrations never created shows up."""
    schema, metadata, scripts = SERVICES["auth"]
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    changed = sa.MetaData(schema=schema)
    for table in metadata.tables.values():
        table.to_metadata(changed)
    sa.Table("accounts", changed, sa.Column("nickname", sa.Text), extend_existing=True)
    drift = await migrations.schema_drift(url, changed)
    assert any("nickname" in str(item) for item in drift)


async def _rows(url: str, query: str) -> set[tuple]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return {tuple(row) for row in (await conn.execute(sa.text(query))).all()}
    finally:
        await engine.dispose()


async def _run(url: str, statement: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service, before", [("blob", "0008"), ("moderation", "0001")])
async def test_holds_set_before_the_platform_table_survive_the_upgrade_and_a_downgrade(infra, service, before):
    """A hold must never be lost by a migration, in either direction (nor, in blob, an
    account's purge: it stays refused)."""
    schema, _, scripts = SERVICES[service]
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, before)
    held, released, purged = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await _run(url, f"INSERT INTO {schema}.holds VALUES ('{held}', 'court order', 'legal', '2026-01-02T03:04:05Z')")
    if service == "blob":
        await _run(url, f"INSERT INTO {schema}.purged_accounts VALUES ('{purged}', '2026-02-03T04:05:06Z')")

    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    assert await _rows(url, f"SELECT account_id, held FROM {schema}.legal_holds") == {(held, True)}
    if service == "blob":
        assert await _rows(url, f"SELECT account_id, state FROM {schema}.account_states") == {(purged, "deleted")}

    # The lifecycle's later word replaces a carried-over hold; a downgrade keeps what is held now.
    await _run(url, f"INSERT INTO {schema}.legal_holds VALUES ('{released}', false, now())")
    await asyncio.to_thread(migrations.downgrade, url, schema, scripts, before)
    assert {row[0] for row in await _rows(url, f"SELECT account_id FROM {schema}.holds")} == {held}
    if service == "blob":
        assert {row[0] for row in await _rows(url, f"SELECT account_id FROM {schema}.purged_accounts")} == {purged}
