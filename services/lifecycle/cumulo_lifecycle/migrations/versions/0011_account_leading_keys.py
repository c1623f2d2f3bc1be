"""Every per-account table leads with the account id (sharding later, keyed now): the primary
keys of transitions, notices and reactivation links become (account_id, their own key); the
indexes on the account alone go, the primary key's first column serves them.

A reactivation link is still found by its token alone (the notice's link carries nothing
else), so a unique index on the token stays; in a distributed setup it would hold per shard
only, until the link carries the account.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

from cumulo_platform.migrations import replace_primary_key

revision = "0011"
down_revision = "0010"

# Each table's own key, and the index on its account that the new primary key replaces.
TABLES = {
    "transitions": ("transition_id", "ix_lifecycle_transitions_account_id"),
    "notices": ("notice_id", "ix_lifecycle_notices_account_id"),
    "reactivation_links": ("token_hash", "ix_lifecycle_reactivation_links_account_id"),
}


def upgrade(schema: str) -> None:
    op.execute(f"CREATE UNIQUE INDEX reactivation_links_token_hash ON {schema}.reactivation_links (token_hash)")
    for table, (key, account_index) in TABLES.items():
        replace_primary_key(schema, table, "account_id", key)
        op.execute(f"DROP INDEX {schema}.{account_index}")


def downgrade(schema: str) -> None:
    for table, (key, account_index) in TABLES.items():
        op.execute(f"CREATE INDEX {account_index} ON {schema}.{table} (account_id)")
        replace_primary_key(schema, table, key)
    op.execute(f"DROP INDEX {schema}.reactivation_links_token_hash")
