"""Deletions asked for a later time: a termination that leaves its owner a window to take
their data out.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade(schema: str) -> None:
    op.create_table(
        "deferred_deletions",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    op.create_index("deferred_deletions_due", "deferred_deletions", ["due_at"], schema=schema)


def downgrade(schema: str) -> None:
    op.drop_table("deferred_deletions", schema=schema)
