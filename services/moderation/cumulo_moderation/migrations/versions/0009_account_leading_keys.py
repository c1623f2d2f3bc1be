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

from cumulo_platform.migrations import account_led_no_more, lead_with_account

revision = "0009"
down_revision = "0008"

# Each table's own key (kept unique on its own, as <table>_<key>), and the index on its account
# that the new primary key replaces.
TABLES = {
    "strikes": ("case_id", "ix_moderation_strikes_account_id"),
    "exports": ("export_id", "ix_moderation_exports_account_id"),
    "owner_notices": ("reference", "ix_moderation_owner_notices_account_id"),
}


def upgrade(schema: str) -> None:
    for table, (key, account_index) in TABLES.items():
        lead_with_account(schema, table, key, unique=f"{table}_{key}", account_index=account_index)


def downgrade(schema: str) -> None:
    for table, (key, account_index) in TABLES.items():
        account_led_no_more(schema, table, key, unique=f"{table}_{key}", account_index=account_index)
