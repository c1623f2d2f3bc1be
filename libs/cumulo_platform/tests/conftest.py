"""Fixtures of the platform's tests, against the session's real PostgreSQL and NATS: a Database
on a fresh database (schema t1) and a NATS client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from cumulo_devstack.testing import identity
from cumulo_platform.db import Database, create_engine
from cumulo_platform.events import Nats
from cumulo_platform.identity import OPERATOR

SCHEMA = "t1"


async def _create_tables(db: Database) -> None:
    """The schema and every table of db.metadata (the outbox and processed_events among them)."""
    async with db.engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))
        await conn.run_sync(db.metadata.create_all)


@pytest.fixture
def create_tables():
    """`await create_tables(db)`: for a test that creates the tables itself, late."""
    return _create_tables


@pytest.fixture
def producer() -> str:
    """The service whose events the Database writes; a test module overrides it to play another."""
    return "test"


@pytest.fixture
def text_tables() -> dict[str, str]:
    """A test module's own tables: each table's name and the name of its one text column (next
    to an id); a test module overrides it."""
    return {}


@pytest.fixture
async def bare_db(infra, producer) -> AsyncIterator[Database]:
    """A Database on a fresh PostgreSQL database whose schema and tables do not exist yet."""
    database = Database(create_engine(infra.new_database(), pool_size=2), schema=SCHEMA, producer=producer)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(bare_db, text_tables) -> Database:
    """bare_db with its tables created: the outbox, processed_events and the module's own."""
    for table, column in text_tables.items():
        sa.Table(
            table,
            bare_db.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(column, sa.Text, nullable=False),
        )
    await _create_tables(bare_db)
    return bare_db


@pytest.fixture
async def bus(infra) -> AsyncIterator[Nats]:
    """A NATS client of the session's server (it also provisions the stream), closed afterwards."""
    client = Nats(infra.nats.url, identity=identity(OPERATOR))
    try:
        yield client
    finally:
        await client.close()
