"""Sharing with other users.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade(schema: str) -> None:
    op.create_table(
        "user_shares",
        sa.Column("share_id", sa.Uuid, primary_key=True),
        sa.Column("owner_id", sa.Uuid, nullable=False),
        sa.Column("node_id", sa.Uuid, sa.ForeignKey(f"{schema}.nodes.node_id", ondelete="CASCADE"), nullable=False),
        sa.Column("recipient_id", sa.Uuid, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    op.create_index("user_shares_once", "user_shares", ["node_id", "recipient_id"], unique=True, schema=schema)
    op.create_index("user_shares_recipient", "user_shares", ["recipient_id"], schema=schema)
    op.create_index("user_shares_owner", "user_shares", ["owner_id"], schema=schema)


def downgrade(schema: str) -> None:
    op.drop_table("user_shares", schema=schema)
