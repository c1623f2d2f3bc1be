"""Every per-account table leads with the account id (sharding later, keyed now): the primary
keys of transitions, notices and reactivation links become (account_id, their own key); the
indexes on the account alone go, the primary key's first column serves them.

A reactivation link is still found by its token alone (the notice's link carries nothing
else), so a unique index on the token stays; in a distributed setup it would hold per shard
only, until the link carries the account.

Revision ID: 0011
Revises: 0010
"""

from cumulo_platform.migrations import account_led_no_more, lead_with_account

revision = "0011"
down_revision = "0010"

# Each table's own key, the index kept unique on it (None: none), and the index on its account
# that the new primary key replaces.
TABLES = {
    "transitions": ("transition_id", None, "ix_lifecycle_transitions_account_id"),
    "notices": ("notice_id", None, "ix_lifecycle_notices_account_id"),
    "reactivation_links": ("token_hash", "reactivation_links_token_hash", "ix_lifecycle_reactivation_links_account_id"),
}


def upgrade(schema: str) -> None:
    for table, (key, unique, account_index) in TABLES.items():
        lead_with_account(schema, table, key, unique=unique, account_index=account_index)


def downgrade(schema: str) -> None:
    for table, (key, unique, account_index) in TABLES.items():
        account_led_no_more(schema, table, key, unique=unique, account_index=account_index)
