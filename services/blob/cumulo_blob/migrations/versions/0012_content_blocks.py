"""Blocks act on content: a moderator's block holds the file's content (its SHA-256) in its
account, the blocklist holds content in every account, and no upload brings it back.

Files blocked before this keep their block, now as their content's: their account's other
files of the same content are blocked too, and those files' share links disconnected.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"

TIMESTAMP = sa.DateTime(timezone=True)
BLOCKED_LINK = "content blocked"  # cumulo_blob.sharing.BLOCKED_LINK, as of this revision


def upgrade(schema: str) -> None:
    op.create_table(
        "content_blocks",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_table(
        "blocklisted_contents",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_index(
        "nodes_content", "nodes", ["sha256", "account_id"], schema=schema, postgresql_where=sa.text("sha256 IS NOT NULL")
    )
    op.create_index("contents_sha256", "contents", ["sha256"], schema=schema)
    op.create_index("uploads_open_sha256", "uploads", ["sha256"], schema=schema, postgresql_where=sa.text("state = 'open'"))
    op.execute(
        f"""
        INSERT INTO {schema}.content_blocks (account_id, sha256, reason, actor, created_at)
        SELECT account_id, sha256, 'a file of this content was blocked', 'migration 0012', now()
        FROM {schema}.nodes WHERE blocked AND kind = 'file' GROUP BY account_id, sha256
        """
    )
    op.execute(
        f"""
        UPDATE {schema}.share_links SET revoked_at = now(), revoke_reason = '{BLOCKED_LINK}'
        WHERE revoked_at IS NULL AND node_id IN (
            SELECT n.node_id FROM {schema}.nodes n
            JOIN {schema}.content_blocks b ON b.account_id = n.account_id AND b.sha256 = n.sha256
            WHERE NOT n.blocked
        )
        """
    )
    op.execute(
        f"""
        UPDATE {schema}.nodes n SET blocked = true FROM {schema}.content_blocks b
        WHERE b.account_id = n.account_id AND b.sha256 = n.sha256 AND NOT n.blocked
        """
    )


def downgrade(schema: str) -> None:
    # Files blocked as their content's stay blocked, each on its own: nothing comes back.
    op.drop_index("uploads_open_sha256", "uploads", schema=schema)
    op.drop_index("contents_sha256", "contents", schema=schema)
    op.drop_index("nodes_content", "nodes", schema=schema)
    op.drop_table("blocklisted_contents", schema=schema)
    op.drop_table("content_blocks", schema=schema)
