"""Legal holds.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade(schema: str) -> None:
    op.create_table(
        "holds",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def downgrade(schema: str) -> None:
    op.drop_table("holds", schema=schema)
