"""Purged accounts.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade(schema: str) -> None:
    op.create_table(
        "purged_accounts",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def downgrade(schema: str) -> None:
    op.drop_table("purged_accounts", schema=schema)
