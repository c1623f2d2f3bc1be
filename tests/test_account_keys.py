"""Sharding later, keyed now: every per-account table leads with the account id, so that it can be
distributed by account (Citus distributed tables, or partitioning by a hash of the account id)
when one PostgreSQL is not enough.

What counts is the schema the migrations build (production runs them, not the code's table
declarations), so each service's migrations run on a fresh database and PostgreSQL's catalog
is walked. The declared tables are checked against it too: their primary keys must list the
same columns in the same order (the schema-drift check does not compare primary keys).

The rule, in one place:

- Every table of a service's schema is **per account** (its rows are one account's data or
  about one account), unless `NOT_PER_ACCOUNT` names it with the reason. A new table is
  therefore per account until somebody says otherwise: it cannot slip by.
- A per-account table names its account in `account_id`, or in the column `ACCOUNT_COLUMN`
  names for it. That column is NOT NULL and leads the table's primary key.
- Every other unique constraint or unique index of a per-account table leads with it too,
  unless `GLOBAL_UNIQUE` names it with the reason: a distributed table can enforce only the
  uniqueness that includes its distribution column, so each one listed there is a lookup that
  must carry the account (or move to a table of its own, keyed by what it looks up) before the
  table is distributed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import uuid

import pytest
import sqlalchemy as sa

from cumulo_devstack.testing.sql import execute, select_rows
from cumulo_platform import migrations, registry
from cumulo_platform.db import create_engine

# Tables whose rows are not one account's. Shared by every service first: the platform's.
_EVERY_SERVICE = {
    "outbox": "events waiting for the relay, of every account and none; keyed by event id, drained in order",
    "processed_events": "which events a consumer has handled, keyed by consumer and event id",
}

NOT_PER_ACCOUNT: dict[str, dict[str, str]] = {
    "auth": {
        **_EVERY_SERVICE,
        "client_apps": "the registered client apps: configuration, the same for every account",
        "signing_keys": "the service's token-signing keys",
        "login_throttle": "failed sign-ins per login, address or session: keyed by what is attacked, often before any account is known",
    },
    "blob": {
        **_EVERY_SERVICE,
        "blocklisted_contents": "moderation's blocklist as blob was told it: it holds in every account",
        "plan_prices": "the plans on sale and their price versions: the catalogue, not an account's",
    },
    "lifecycle": {
        **_EVERY_SERVICE,
        "schedule_settings": "the settings the stored due times were computed with, one row per scope",
        "announcements": "what the operator tells every account; the notices it queues are per account",
    },
    "sync": {**_EVERY_SERVICE},
    "locator": {**_EVERY_SERVICE},
    "moderation": {
        **_EVERY_SERVICE,
        "blocklist": "digests of content refused in every account",
        "signing_keys": "the service's evidence-signing keys",
        "counters": "rate-limit windows keyed by reporter, network address or account: mostly not an account's",
        "cases": "a case is about a target, which has no owner yet when a complaint names a link that is gone; "
        "moderation's record, kept after the account is deleted",
        "complaints": "filed by anyone, signed in or not, about a case: the complainant's, not the owner's",
        "effects": "carried out in other services; a blocklist entry's effect acts in every account",
        "audit_log": "append-only record of every moderation action, some about no account",
    },
}

# Per-account tables whose account column is not called `account_id`.
ACCOUNT_COLUMN: dict[str, dict[str, str]] = {
    "blob": {"user_shares": "owner_id"},
    "locator": {"guardians": "minor_account_id"},
}

# Unique constraints and indexes of per-account tables that do not lead with the account: each
# is a lookup that does not know the account yet (a token presented by a client, a login typed
# in, an id handed out before), or a rule that holds across accounts.
GLOBAL_UNIQUE: dict[str, dict[str, str]] = {
    "auth": {
        "accounts_email_key": "an e-mail address signs in to one account: looked up before the account is known",
        "accounts_phone_key": "a phone number signs in to one account: looked up before the account is known",
        "deleted_logins_login_digest": "a deleted account's login, looked up when somebody signs in with it",
        "refresh_tokens_token_hash": "the client presents the refresh token alone",
        "sessions_revoke_token": "the new-session notice's link carries its token alone",
        "sessions_session_id": "a session found by its id alone: a refresh token's, a revocation by id, an access token's",
    },
    "blob": {
        "nodes_node_id": "a node found by its id alone: a moderator's block, a link's or a share's file",
        "uploads_upload_id": "an upload found by its id alone: completion, expiry, the writer's lease",
        "upload_writers_upload_id": "the writer's lease, taken and checked by the upload's id alone",
        "share_links_link_id": "a link found by its id alone: a moderator's disconnection, a password's lockout",
        "share_links_token_hash_key": "a visitor presents the link's token alone",
        "user_shares_share_id": "the recipient's view of a share knows the recipient, not the owner",
        "purchases_payment_reference_key": "a payment is recorded once, whichever account names it",
    },
    "lifecycle": {
        "reactivation_links_token_hash": "the notice's link carries its token alone",
    },
    "sync": {
        "zones_zone_id": "a zone found by its id alone: a push locks and numbers it, clean-up walks it",
        "backups_backup_id": "a backup found by its id alone while its files are checked with the blob service",
    },
    "locator": {
        "devices_device_key": "a device found by its key alone: the device agent's reports and commands",
        "commands_command_id": "a command found by its id alone: its result, its expiry",
    },
    "moderation": {
        "strikes_case_id": "one strike per case, withdrawn by the case's id alone",
        "exports_export_id": "an evidence export found by its id alone: an operator verifies a bundle by it",
        "owner_notices_reference": "an owner notice found by its reference alone: what the lifecycle delivers once",
    },
}

@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    primary_key: tuple[str, ...]
    not_null: frozenset[str]
    columns: frozenset[str]
    # Every unique constraint or unique index but the primary key's: its name and its columns
    # (an expression's position is None).
    unique: tuple[tuple[str, tuple[str | None, ...]], ...]


def account_column(service: str, table: str) -> str:
    return ACCOUNT_COLUMN.get(service, {}).get(table, "account_id")


def violations(service: str, tables: list[Table]) -> list[str]:
    """What breaks the rule in one service's schema, in words; empty when it holds."""
    found = []
    not_per_account = NOT_PER_ACCOUNT.get(service, {})
    global_unique = GLOBAL_UNIQUE.get(service, {})
    for table in tables:
        if table.name in not_per_account:
            continue
        column = account_column(service, table.name)
        where = f"{service}.{table.name}"
        if column not in table.columns:
            found.append(f"{where}: a per-account table without its account column {column!r} (or list it in NOT_PER_ACCOUNT with why)")
            continue
        if column not in table.not_null:
            found.append(f"{where}: its account column {column!r} may be NULL")
        if table.primary_key[:1] != (column,):
            found.append(f"{where}: its primary key {table.primary_key} does not lead with {column!r}")
        for name, columns in table.unique:
            if columns[:1] != (column,) and name not in global_unique:
                found.append(f"{where}: unique {name} {columns} does not lead with {column!r} (or list it in GLOBAL_UNIQUE with why)")
    names = {table.name for table in tables}
    for listed in set(not_per_account) - names:
        found.append(f"{service}.{listed}: listed, but no such table")
    indexes = {name for table in tables for name, _ in table.unique}
    for listed in set(global_unique) - indexes:
        found.append(f"{service}.{listed}: listed in GLOBAL_UNIQUE, but no such unique index")
    return found


CATALOG = """
SELECT c.relname AS table_name,
       array(SELECT a.attname::text FROM unnest(pk.conkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n) AS primary_key,
       array(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull) AS not_null,
       array(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'
"""

# Unique constraints are backed by unique indexes: the indexes cover both.
UNIQUE = """
SELECT t.relname AS table_name, i.relname AS index_name,
       array(SELECT CASE WHEN k.attnum = 0 THEN NULL ELSE a.attname::text END
             FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, n)
             LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
             WHERE k.n <= x.indnkeyatts ORDER BY k.n) AS columns
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = :schema AND x.indisunique AND NOT x.indisprimary
"""


async def migrated_tables(url: str, schema: str) -> list[Table]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text(CATALOG), {"schema": schema})).mappings().all()
            unique = (await conn.execute(sa.text(UNIQUE), {"schema": schema})).mappings().all()
    finally:
        await engine.dispose()
    return [
        Table(
            name=row["table_name"],
            primary_key=tuple(row["primary_key"]),
            not_null=frozenset(row["not_null"]),
            columns=frozenset(row["columns"]),
            unique=tuple(
                sorted((u["index_name"], tuple(u["columns"])) for u in unique if u["table_name"] == row["table_name"])
            ),
        )
        for row in rows
    ]


def _service(name: str) -> tuple[str, sa.MetaData, object]:
    module = registry.SERVICES[name].module
    tables = importlib.import_module(f"{module}.adapters.tables")
    bootstrap = importlib.import_module(f"{module}.bootstrap")
    return tables.SCHEMA, tables.metadata, bootstrap.MIGRATIONS


@pytest.mark.parametrize("service", sorted(registry.SERVICES))
async def test_every_per_account_table_leads_with_the_account_id(infra, service):
    schema, metadata, scripts = _service(service)
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    tables = await migrated_tables(url, schema)
    assert tables, f"no tables in {schema}"
    found = violations(service, tables)
    assert not found, "\n".join(found)
    # The code's declarations say the same (SQLAlchemy orders a primary key as declared).
    migrated = {table.name: table.primary_key for table in tables}
    declared = {table.name: tuple(c.name for c in table.primary_key.columns) for table in metadata.tables.values()}
    assert declared == migrated


def test_a_new_table_is_per_account_until_listed_and_must_lead_with_the_account(monkeypatch):
    """The check can fail: an unlisted table keyed by its own id, one without an account
    column, a nullable account column, a unique index without the account, stale listings."""
    monkeypatch.setitem(NOT_PER_ACCOUNT, "example", {"outbox": "events", "gone": "a table since dropped"})
    monkeypatch.setitem(GLOBAL_UNIQUE, "example", {"doodads_gone": "an index since dropped"})
    outbox = Table("outbox", ("event_id",), frozenset({"event_id"}), frozenset({"event_id"}), ())
    keyed_by_own_id = Table("widgets", ("widget_id",), frozenset({"widget_id", "account_id"}), frozenset({"widget_id", "account_id"}), ())
    no_account = Table("gadgets", ("gadget_id",), frozenset({"gadget_id"}), frozenset({"gadget_id"}), ())
    nullable = Table("gizmos", ("account_id",), frozenset(), frozenset({"account_id"}), ())
    unique_elsewhere = Table(
        "doodads",
        ("account_id", "doodad_id"),
        frozenset({"account_id", "doodad_id", "token"}),
        frozenset({"account_id", "doodad_id", "token"}),
        (("doodads_token", ("token",)), ("doodads_name", ("account_id", None))),
    )
    found = violations("example", [outbox, keyed_by_own_id, no_account, nullable, unique_elsewhere])
    assert len(found) == 6, found
    assert any("widgets: its primary key" in item for item in found)
    assert any("gadgets: a per-account table without" in item for item in found)
    assert any("gizmos: its account column" in item for item in found)
    assert any("doodads_token" in item for item in found) and not any("doodads_name" in item for item in found)
    assert "example.gone: listed, but no such table" in found
    assert "example.doodads_gone: listed in GLOBAL_UNIQUE, but no such unique index" in found


# The revision before each service's account-leading keys, and after it.
REKEYED = {"auth": "0016", "blob": "0014", "lifecycle": "0010", "sync": "0005", "locator": "0004", "moderation": "0008"}


@pytest.mark.parametrize("service", sorted(REKEYED))
async def test_the_rekeying_goes_down_and_up_again(infra, service):
    schema, _, scripts = _service(service)
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    before = await migrated_tables(url, schema)
    await asyncio.to_thread(migrations.downgrade, url, schema, scripts, REKEYED[service])
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    assert sorted(await migrated_tables(url, schema), key=lambda t: t.name) == sorted(before, key=lambda t: t.name)


async def test_sessions_and_their_tokens_keep_their_rows_and_tokens_learn_their_account(infra):
    """Auth 0017 on rows already there: refresh tokens get their session's account, and a
    downgrade gives back what was."""
    schema, _, scripts = _service("auth")
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, REKEYED["auth"])
    account, session, token = uuid.uuid4(), uuid.uuid4(), b"\x01" * 32
    columns = "account_id, email, password_hash, birth_date, minor, terms_version, terms_accepted_at, created_at, updated_at, locale"
    await execute(
        url,
        f"INSERT INTO {schema}.accounts ({columns}) VALUES ('{account}', 'k@example.com', 'h', '1990-05-17', false, '2026-05', now(), now(), now(), 'en')",
        f"INSERT INTO {schema}.sessions (session_id, account_id, client_id, created_at, last_used_at, expires_at) "
        f"VALUES ('{session}', '{account}', 'cli', now(), now(), now() + interval '1 day')",
        f"INSERT INTO {schema}.refresh_tokens (token_hash, session_id, issued_at) VALUES ('\\x{token.hex()}', '{session}', now())",
        f"INSERT INTO {schema}.status_changes (account_id, status, reason, actor, changed_at) VALUES ('{account}', 'suspended', 'r', 'a', now())",
        f"INSERT INTO {schema}.deleted_logins (login_digest, account_id, deleted_at) VALUES ('\\x02', '{account}', now())",
    )
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    assert await select_rows(url, f"SELECT account_id, session_id, token_hash FROM {schema}.refresh_tokens") == {(account, session, token)}
    assert await select_rows(url, f"SELECT account_id, session_id FROM {schema}.sessions") == {(account, session)}
    assert await select_rows(url, f"SELECT account_id FROM {schema}.status_changes") == {(account,)}
    assert await select_rows(url, f"SELECT account_id FROM {schema}.deleted_logins") == {(account,)}
    await asyncio.to_thread(migrations.downgrade, url, schema, scripts, REKEYED["auth"])
    assert await select_rows(url, f"SELECT session_id, token_hash FROM {schema}.refresh_tokens") == {(session, token)}
    assert await select_rows(url, f"SELECT account_id, session_id FROM {schema}.sessions") == {(account, session)}


async def test_files_links_and_shares_keep_their_rows_and_their_ties(infra):
    """Blob 0015 on rows already there: a folder and its file, a link and a share of the file,
    an upload and its writer, a purchase and a doomed object; the file's link and share still
    go with it."""
    schema, _, scripts = _service("blob")
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, REKEYED["blob"])
    account, other = uuid.uuid4(), uuid.uuid4()
    folder, file, link, share, upload = (uuid.uuid4() for _ in range(5))
    node = f"INSERT INTO {schema}.nodes (node_id, account_id, parent_id, name, kind, size, sha256, created_at, modified_at) VALUES "
    await execute(
        url,
        node + f"('{folder}', '{account}', NULL, 'docs', 'folder', 0, NULL, now(), now())",
        node + f"('{file}', '{account}', '{folder}', 'a.txt', 'file', 1, '{'ab' * 32}', now(), now())",
        f"INSERT INTO {schema}.share_links (link_id, account_id, node_id, token_hash, created_at) VALUES ('{link}', '{account}', '{file}', '\\x01', now())",
        f"INSERT INTO {schema}.user_shares (share_id, owner_id, node_id, recipient_id, recipient, created_at) "
        f"VALUES ('{share}', '{account}', '{file}', '{other}', 'o@example.com', now())",
        f"INSERT INTO {schema}.uploads (upload_id, account_id, name, size, sha256, content_type, created_at, expires_at) "
        f"VALUES ('{upload}', '{account}', 'b.txt', 1, '{'cd' * 32}', '', now(), now())",
        f"INSERT INTO {schema}.upload_writers (upload_id, account_id, writer_id, held_until) VALUES ('{upload}', '{account}', '{uuid.uuid4()}', now())",
        f"INSERT INTO {schema}.plan_prices (plan_id, version, name, bytes, price_minor_units, currency, period_days, created_at, applies_at) "
        "VALUES ('p', 1, 'P', 1, 1, 'CNY', 30, now(), now())",
        f"INSERT INTO {schema}.purchases (purchase_id, account_id, plan_id, price_version, bytes, price_minor_units, currency, "
        f"payment_reference, starts_at, ends_at, created_at) VALUES ('{uuid.uuid4()}', '{account}', 'p', 1, 1, 1, 'CNY', 'pay-1', now(), now(), now())",
        f"INSERT INTO {schema}.doomed_objects (key, account_id, created_at) VALUES ('accounts/{account}/x', '{account}', now())",
    )
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    for table in ("nodes", "uploads", "upload_writers", "purchases", "share_links", "doomed_objects"):
        assert {row[0] for row in await select_rows(url, f"SELECT account_id FROM {schema}.{table}")} == {account}, table
    await asyncio.to_thread(migrations.downgrade, url, schema, scripts, REKEYED["blob"])
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    await execute(url, f"DELETE FROM {schema}.nodes WHERE node_id = '{file}'")
    assert await select_rows(url, f"SELECT link_id FROM {schema}.share_links UNION ALL SELECT share_id FROM {schema}.user_shares") == set()
    # A node's folder is its own account's: another account's folder is refused.
    with pytest.raises(sa.exc.IntegrityError):
        await execute(url, node + f"('{uuid.uuid4()}', '{other}', '{folder}', 'c.txt', 'file', 1, '{'ef' * 32}', now(), now())")


# The revision before records and locations learnt their account.
BEFORE_HISTORY = {"sync": "0006", "locator": "0005"}


async def test_records_learn_their_zones_account_and_give_it_back(infra):
    """Sync 0007 on rows already there: each record gets its zone's account, a record of no
    zone goes, and a downgrade gives back the records as they were keyed."""
    schema, _, scripts = _service("sync")
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, BEFORE_HISTORY["sync"])
    ann, bob, gone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ann_zone, bob_zone = uuid.uuid4(), uuid.uuid4()
    record = f"INSERT INTO {schema}.records (zone_id, record_id, record_type, payload, seq, modified_at) VALUES "
    await execute(
        url,
        f"INSERT INTO {schema}.zones (zone_id, account_id, name, created_at, modified_at) "
        f"VALUES ('{ann_zone}', '{ann}', 'notes', now(), now()), ('{bob_zone}', '{bob}', 'notes', now(), now())",
        record + f"('{ann_zone}', 'a1', 't', '\\x01', 1, now()), ('{ann_zone}', 'a2', 't', '\\x02', 2, now())",
        record + f"('{bob_zone}', 'a1', 't', '\\x03', 1, now())",
        record + f"('{gone}', 'lost', 't', '\\x04', 1, now())",
    )
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    assert await select_rows(url, f"SELECT account_id, zone_id, record_id, seq FROM {schema}.records") == {
        (ann, ann_zone, "a1", 1), (ann, ann_zone, "a2", 2), (bob, bob_zone, "a1", 1)
    }
    await asyncio.to_thread(migrations.downgrade, url, schema, scripts, BEFORE_HISTORY["sync"])
    assert await select_rows(url, f"SELECT zone_id, record_id, seq FROM {schema}.records") == {
        (ann_zone, "a1", 1), (ann_zone, "a2", 2), (bob_zone, "a1", 1)
    }


async def test_positions_learn_their_devices_account_and_give_it_back(infra):
    """Locator 0006 on rows already there: each position gets its device's account, a position
    of a device since removed goes, and a downgrade gives back the history as it was keyed."""
    schema, _, scripts = _service("locator")
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, BEFORE_HISTORY["locator"])
    ann, bob = uuid.uuid4(), uuid.uuid4()
    ann_phone, bob_phone, removed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    position = (
        f"INSERT INTO {schema}.locations (device_key, measured_at, latitude, longitude, accuracy, altitude, speed, battery, "
        "source, received_at) VALUES "
    )
    at = ("2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z")
    await execute(
        url,
        f"INSERT INTO {schema}.devices (device_key, account_id, device_id, name, registered_at) "
        f"VALUES ('{ann_phone}', '{ann}', 'phone', 'Phone', now()), ('{bob_phone}', '{bob}', 'phone', 'Phone', now())",
        *(position + f"('{key}', '{when}', 31, 121, 10, 0, 0, 50, 'gps', now())" for key in (ann_phone, bob_phone, removed) for when in at),
    )
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    rows = await select_rows(url, f"SELECT account_id, device_key, count(*) FROM {schema}.locations GROUP BY 1, 2")
    assert rows == {(ann, ann_phone, 2), (bob, bob_phone, 2)}
    await asyncio.to_thread(migrations.downgrade, url, schema, scripts, BEFORE_HISTORY["locator"])
    rows = await select_rows(url, f"SELECT device_key, count(*) FROM {schema}.locations GROUP BY 1")
    assert rows == {(ann_phone, 2), (bob_phone, 2)}
