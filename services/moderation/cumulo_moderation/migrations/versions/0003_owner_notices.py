"""Notices to content owners that wait for the content's path (looked up in blob outside any
transaction) before they are sent.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "owner_notices",
        sa.Column("reference", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("args", postgresql.JSONB, nullable=False),
        sa.Column("about", postgresql.JSONB, nullable=False),
        sa.Column("node_id", sa.Uuid, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        schema=schema,
    )
    op.create_index("ix_moderation_owner_notices_account_id", "owner_notices", ["account_id"], schema=schema)
    op.create_index("owner_notices_due", "owner_notices", ["due_at"], schema=schema)


def downgrade(schema: str) -> None:
    op.drop_table("owner_notices", schema=schema)
