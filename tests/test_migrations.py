"""Every service's migrations build exactly the schema its code declares, from an empty database."""

import asyncio
import importlib

import pytest
import sqlalchemy as sa

from cumulo_platform import migrations, registry


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
