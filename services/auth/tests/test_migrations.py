"""The migrations build exactly the schema the code declares, from an empty database."""

import asyncio

from cumulo_auth.adapters.tables import SCHEMA, metadata
from cumulo_auth.bootstrap import MIGRATIONS
from cumulo_platform import migrations


async def test_migrated_schema_matches_the_declared_tables(infra):
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, SCHEMA, MIGRATIONS)
    assert await migrations.schema_drift(url, metadata) == []


async def test_schema_drift_is_detected(infra):
    """The check above can fail: a declared column the migrations never created shows up."""
    import sqlalchemy as sa

    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, SCHEMA, MIGRATIONS)
    changed = sa.MetaData(schema=SCHEMA)
    for table in metadata.tables.values():
        table.to_metadata(changed)
    sa.Table("accounts", changed, sa.Column("nickname", sa.Text), extend_existing=True)
    drift = await migrations.schema_drift(url, changed)
    assert any("nickname" in str(item) for item in drift)
