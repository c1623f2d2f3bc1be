"""Share links.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "share_links",
        sa.Column("link_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("node_id", sa.Uuid, sa.ForeignKey(f"{schema}.nodes.node_id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP),
        sa.Column("revoked_at", TIMESTAMP),
        sa.Column("revoke_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("failed_passwords", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", TIMESTAMP),
        schema=schema,
    )
    op.create_index("share_links_account", "share_links", ["account_id", "created_at"], schema=schema)
    op.create_index("share_links_node", "share_links", ["node_id"], schema=schema)


def downgrade(schema: str) -> None:
    op.drop_table("share_links", schema=schema)
