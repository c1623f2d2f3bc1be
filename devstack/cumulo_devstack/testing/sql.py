"""SQL straight to a test's database, for what a migration must keep or change: statements run
in one transaction, and the rows a query answers as a set."""

from __future__ import annotations

import sqlalchemy as sa

from cumulo_platform.db import create_engine


async def execute(url: str, *statements: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def select_rows(url: str, query: str) -> set[tuple]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return {tuple(row) for row in (await conn.execute(sa.text(query))).all()}
    finally:
        await engine.dispose()
