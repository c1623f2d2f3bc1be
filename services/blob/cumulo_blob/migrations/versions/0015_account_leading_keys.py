"""Every per-account table leads with the account id (sharding later, keyed now): the primary
keys of nodes, uploads, upload writers, purchases, share links, shares with people and doomed
objects become (account id, their own key). The foreign keys to a node carry its account too
(a file's folder, a link's file and a share's file are always the same account's).

Where the code still finds a row by its own id alone, a unique index on that id stays: a node
(a moderator's block, a link's or a share's file), an upload (completion, expiry, the writer's
lease), a share link (a moderator's disconnection, a password's lockout) and a share with a
person (the recipient's view, which knows the recipient and not the owner). In a distributed
setup each of those would hold per shard only, until the lookup carries the account.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

from cumulo_platform.migrations import account_led_no_more, lead_with_account

revision = "0015"
down_revision = "0014"

# Each table's account column and its own key, as before.
TABLES = {
    "nodes": ("account_id", "node_id"),
    "uploads": ("account_id", "upload_id"),
    "upload_writers": ("account_id", "upload_id"),
    "purchases": ("account_id", "purchase_id"),
    "share_links": ("account_id", "link_id"),
    "user_shares": ("owner_id", "share_id"),
    "doomed_objects": ("account_id", "key"),
}
# The own keys still looked up without the account: they stay unique on their own.
KEPT_UNIQUE = {
    "nodes": "nodes_node_id",
    "uploads": "uploads_upload_id",
    "upload_writers": "upload_writers_upload_id",
    "share_links": "share_links_link_id",
    "user_shares": "user_shares_share_id",
}
# Indexes on the account alone: the new primary key's first column serves them.
ACCOUNT_INDEXES = {"uploads": "uploads_account", "upload_writers": "upload_writers_account", "user_shares": "user_shares_owner"}
# The foreign keys to a node: (table, old name, new name, account column, node column, on delete).
NODE_REFERENCES = (
    ("nodes", "nodes_parent_id_fkey", "nodes_parent_fkey", "account_id", "parent_id", ""),
    ("share_links", "share_links_node_id_fkey", "share_links_node_fkey", "account_id", "node_id", " ON DELETE CASCADE"),
    ("user_shares", "user_shares_node_id_fkey", "user_shares_node_fkey", "owner_id", "node_id", " ON DELETE CASCADE"),
)


def upgrade(schema: str) -> None:
    # The foreign keys rest on the nodes' primary key: they go first, and come back on the new one.
    for table, old, *_ in NODE_REFERENCES:
        op.execute(f"ALTER TABLE {schema}.{table} DROP CONSTRAINT {old}")
    for table, (account, key) in TABLES.items():
        lead_with_account(schema, table, key, account=account, unique=KEPT_UNIQUE.get(table), account_index=ACCOUNT_INDEXES.get(table))
    for table, _, new, account, column, on_delete in NODE_REFERENCES:
        op.execute(
            f"ALTER TABLE {schema}.{table} ADD CONSTRAINT {new} FOREIGN KEY ({account}, {column}) "
            f"REFERENCES {schema}.nodes (account_id, node_id){on_delete}"
        )
    # One share per file and person: a file has one owner, so the rule is the same with it first.
    op.execute(f"DROP INDEX {schema}.user_shares_once")
    op.execute(f"CREATE UNIQUE INDEX user_shares_once ON {schema}.user_shares (owner_id, node_id, recipient_id)")


def downgrade(schema: str) -> None:
    op.execute(f"DROP INDEX {schema}.user_shares_once")
    op.execute(f"CREATE UNIQUE INDEX user_shares_once ON {schema}.user_shares (node_id, recipient_id)")
    for table, _, new, *_ in NODE_REFERENCES:
        op.execute(f"ALTER TABLE {schema}.{table} DROP CONSTRAINT {new}")
    for table, (account, key) in TABLES.items():
        account_led_no_more(schema, table, key, account=account, unique=KEPT_UNIQUE.get(table), account_index=ACCOUNT_INDEXES.get(table))
    for table, old, _, _, column, on_delete in NODE_REFERENCES:
        op.execute(
            f"ALTER TABLE {schema}.{table} ADD CONSTRAINT {old} FOREIGN KEY ({column}) "
            f"REFERENCES {schema}.nodes (node_id){on_delete}"
        )
