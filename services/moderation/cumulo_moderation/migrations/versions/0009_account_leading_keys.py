"""Every per-account table leads with the account id (sharding later, keyed now): the primary
keys of strikes, evidence exports and owner notices become (account_id, their own key); the
indexes on the account alone go, the primary key's first column serves them.

Each is still found by its own key alone, so a unique index on it stays: a strike by its case
(one per case, withdrawn when the case's content is restored), an export by its id (an
operator verifies a bundle by it), an owner notice by its reference (what the lifecycle
delivers once). In a distributed setup each would hold per shard only, until those lookups
carry the account.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from cumulo_platform.migrations import replace_primary_key

revision = "0009"
down_revision = "0008"

# Each table's own key, and the index on its account that the new primary key replaces.
TABLES = {
    "strikes": ("case_id", "ix_moderation_strikes_account_id"),
    "exports": ("export_id", "ix_moderation_exports_account_id"),
    "owner_notices": ("reference", "ix_moderation_owner_notices_account_id"),
}


def upgrade(schema: str) -> None:
    for table, (key, account_index) in TABLES.items():
        op.execute(f"CREATE UNIQUE INDEX {table}_{key} ON {schema}.{table} ({key})")
        replace_primary_key(schema, table, "account_id", key)
        op.execute(f"DROP INDEX {schema}.{account_index}")


def downgrade(schema: str) -> None:
    for table, (key, account_index) in TABLES.items():
        op.execute(f"CREATE INDEX {account_index} ON {schema}.{table} (account_id)")
        replace_primary_key(schema, table, key)
        op.execute(f"DROP INDEX {schema}.{table}_{key}")
