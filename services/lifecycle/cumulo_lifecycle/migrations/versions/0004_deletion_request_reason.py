"""A deletion that waits for a legal hold remembers what asked for it (the user's
cancellation, or a moderator's termination).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("cancel_reason", sa.Text, nullable=False, server_default=""), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("accounts", "cancel_reason", schema=schema)
