"""Least privilege for data: in one database, each service's login owns its own schema and
can read no other (cumulo_platform.migrations.role_statements, what `make run` sets up). The
services' real migrations run as their own logins."""

from __future__ import annotations

import asyncio
import pathlib
import uuid

import asyncpg
import pytest

from cumulo_platform import migrations
from cumulo_platform.registry import SERVICES

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _migrations_of(service: str) -> pathlib.Path:
    info = SERVICES[service]
    return ROOT / info.folder / info.module / "migrations"


@pytest.fixture(scope="module")
def shared(infra) -> dict[str, str]:
    """One database, as under `make run`: auth's and blob's schemas, each migrated by its own login."""
    database = f"roles_{uuid.uuid4().hex[:8]}"
    infra.postgres.create_database(database)
    urls = {service: infra.postgres.service_url(database, service) for service in ("auth", "blob")}
    for service, url in urls.items():
        migrations.upgrade(url, service, _migrations_of(service))
    return urls


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(_plain(url))
    try:
        return await connection.fetch(query)
    finally:
        await connection.close()


async def test_blobs_login_cannot_read_auths_tables(shared):
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema auth"):
        await _fetch(shared["blob"], "SELECT * FROM auth.accounts")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _fetch(shared["auth"], "SELECT * FROM blob.nodes")


async def test_each_login_owns_its_schema_and_its_tables(shared):
    assert await _fetch(shared["auth"], "SELECT count(*) FROM auth.accounts")
    owners = await _fetch(shared["blob"], "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'blob'")
    assert [row["tableowner"] for row in owners] == [migrations.service_role("blob")]


async def test_a_login_cannot_make_itself_a_schema_elsewhere_or_grant_itself_more(shared):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _fetch(shared["blob"], "CREATE TABLE public.stash (x int)")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _fetch(shared["blob"], "GRANT USAGE ON SCHEMA auth TO cumulo_blob")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _fetch(shared["blob"], "CREATE ROLE intruder SUPERUSER")


def test_setting_up_again_over_a_superusers_tables_hands_them_over(infra):
    """An earlier `make run` made its tables as the superuser: the next one hands them over."""
    database = f"legacy_{uuid.uuid4().hex[:8]}"
    superuser = infra.postgres.create_database(database)
    migrations.upgrade(superuser, "auth", _migrations_of("auth"))
    own = infra.postgres.service_url(database, "auth")
    infra.postgres.service_url(database, "auth")  # again: nothing changes, nothing fails
    rows = asyncio.run(_fetch(own, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'auth'"))
    assert [row["tableowner"] for row in rows] == [migrations.service_role("auth")]
    migrations.upgrade(own, "auth", _migrations_of("auth"))  # its own migrations go on as before
