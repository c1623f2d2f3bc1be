"""Every service's migrations build exactly the schema its code declares, from an empty database."""

import asyncio
import importlib
import uuid

import pytest
import sqlalchemy as sa

from cumulo_devstack.testing.sql import execute, select_rows
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


@pytest.mark.parametrize("service, before", [("blob", "0008"), ("moderation", "0001")])
async def test_holds_set_before_the_platform_table_survive_the_upgrade_and_a_downgrade(infra, service, before):
    """A hold must never be lost by a migration, in either direction (nor, in blob, an
    account's purge: it stays refused)."""
    schema, _, scripts = SERVICES[service]
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, before)
    held, released, purged = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await execute(url, f"INSERT INTO {schema}.holds VALUES ('{held}', 'court order', 'legal', '2026-01-02T03:04:05Z')")
    if service == "blob":
        await execute(url, f"INSERT INTO {schema}.purged_accounts VALUES ('{purged}', '2026-02-03T04:05:06Z')")

    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    assert await select_rows(url, f"SELECT account_id, held FROM {schema}.legal_holds") == {(held, True)}
    if service == "blob":
        assert await select_rows(url, f"SELECT account_id, state FROM {schema}.account_states") == {(purged, "deleted")}

    # The lifecycle's later word replaces a carried-over hold; a downgrade keeps what is held now.
    await execute(url, f"INSERT INTO {schema}.legal_holds VALUES ('{released}', false, now())")
    await asyncio.to_thread(migrations.downgrade, url, schema, scripts, before)
    assert {row[0] for row in await select_rows(url, f"SELECT account_id FROM {schema}.holds")} == {held}
    if service == "blob":
        assert {row[0] for row in await select_rows(url, f"SELECT account_id FROM {schema}.purged_accounts")} == {purged}


async def test_a_file_blocked_before_blocks_held_content_blocks_its_twins_after_the_upgrade(infra):
    """Blob 0012: a block came to hold the file's content in its account, so a blocked file's
    twins (same account, same bytes) are blocked by the upgrade and their links disconnected;
    another account's copy is not."""
    schema, _, scripts = SERVICES["blob"]
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, "0011")
    account, other = uuid.uuid4(), uuid.uuid4()
    blocked, twin, elsewhere, link = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    digest = "ab" * 32
    for node_id, owner, name, is_blocked in ((blocked, account, "a", True), (twin, account, "b", False), (elsewhere, other, "a", False)):
        await execute(
            url,
            f"INSERT INTO {schema}.nodes (node_id, account_id, name, kind, size, sha256, created_at, modified_at, blocked) "
            f"VALUES ('{node_id}', '{owner}', '{name}', 'file', 1, '{digest}', now(), now(), {is_blocked})",
        )
    await execute(
        url,
        f"INSERT INTO {schema}.share_links (link_id, account_id, node_id, token_hash, created_at) "
        f"VALUES ('{link}', '{account}', '{twin}', '\\x01', now())",
    )
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    assert await select_rows(url, f"SELECT node_id FROM {schema}.nodes WHERE blocked") == {(blocked,), (twin,)}
    assert await select_rows(url, f"SELECT account_id, sha256 FROM {schema}.content_blocks") == {(account, digest)}
    assert await select_rows(url, f"SELECT revoke_reason FROM {schema}.share_links WHERE revoked_at IS NOT NULL") == {("content blocked",)}


async def test_blocklist_entries_listed_before_blob_enforced_them_are_put_into_blob_after_the_upgrade(infra):
    """Moderation 0007: each thousand entries already listed become an effect due at once."""
    schema, _, scripts = SERVICES["moderation"]
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, "0006")
    digests = sorted(f"{i:064x}" for i in range(1001))
    await execute(
        url,
        f"INSERT INTO {schema}.blocklist (sha256, reason, added_by, added_at) "
        "SELECT d, 'hash list', 'moderator', now() FROM unnest(ARRAY[" + ",".join(f"'{d}'" for d in digests) + "]) d",
    )
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    effects = await select_rows(url, f"SELECT action, account_id, subject, array_to_string(digests, ' '), due_at <= now() FROM {schema}.effects")
    assert effects == {
        ("block_content", None, f"sha256:{digests[0]} (+999)", " ".join(digests[:1000]), True),
        ("block_content", None, f"sha256:{digests[1000]}", digests[1000], True),
    }


async def test_contacts_on_record_before_verification_existed_count_as_verified(infra):
    """Auth 0011: contacts recorded before codes existed were the only way notices reached
    people; they stay reachable (verified as of the account's creation), a missing contact
    stays unverified, and a tombstone has nothing verified."""
    schema, _, scripts = SERVICES["auth"]
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, "0010")
    both, email_only, gone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    details = "'1990-05-17', false, '2026-11', '2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z', now(), 'en'"
    columns = "account_id, email, phone, password_hash, birth_date, minor, terms_version, terms_accepted_at, created_at, updated_at, locale"
    await execute(url, f"INSERT INTO {schema}.accounts ({columns}) VALUES ('{both}', 'a@example.com', '+8613800000001', 'h', {details})")
    await execute(url, f"INSERT INTO {schema}.accounts ({columns}) VALUES ('{email_only}', 'b@example.com', NULL, 'h', {details})")
    await execute(url, f"INSERT INTO {schema}.accounts (account_id, minor, status, updated_at) VALUES ('{gone}', false, 'deleted', now())")
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    rows = await select_rows(url, f"SELECT account_id, email_verified_at IS NOT NULL, phone_verified_at IS NOT NULL, email_verified_at FROM {schema}.accounts")
    found = {row[0]: row[1:3] for row in rows}
    assert found == {both: (True, True), email_only: (True, False), gone: (False, False)}
    assert {str(row[3]) for row in rows if row[0] == both} == {"2026-01-02 03:04:05+00:00"}


async def test_the_terms_on_record_become_the_first_entry_of_each_accounts_history(infra):
    """Auth 0014: the version and time an account had accepted (the latest only, until now)
    are its first history entry; a minor's says the guardian accepted; a tombstone has none."""
    schema, _, scripts = SERVICES["auth"]
    url = infra.new_database()
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts, "0013")
    adult, child, gone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    columns = "account_id, email, password_hash, birth_date, minor, guardian_account_id, terms_version, terms_accepted_at, created_at, updated_at, locale"
    await execute(url, f"INSERT INTO {schema}.accounts ({columns}) VALUES ('{adult}', 'p@example.com', 'h', '1990-05-17', false, NULL, '2026-05', '2026-05-02T00:00:00Z', now(), now(), 'en')")
    await execute(url, f"INSERT INTO {schema}.accounts ({columns}) VALUES ('{child}', 'c@example.com', 'h', '2016-05-17', true, '{adult}', '2026-11', '2026-11-03T00:00:00Z', now(), now(), 'en')")
    await execute(url, f"INSERT INTO {schema}.accounts (account_id, minor, status, updated_at) VALUES ('{gone}', false, 'deleted', now())")
    await asyncio.to_thread(migrations.upgrade, url, schema, scripts)
    rows = await select_rows(url, f"SELECT account_id, version, accepted_by, client_id FROM {schema}.terms_acceptances")
    assert rows == {(adult, "2026-05", None, ""), (child, "2026-11", adult, "")}
