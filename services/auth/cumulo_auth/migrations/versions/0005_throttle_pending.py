"""Password attempts still being checked: a throttle counter holds them as pending (until
when they count as abandoned) and counts an attempt as a failure only once it failed.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade(schema: str) -> None:
    op.add_column("login_throttle", sa.Column("pending", sa.Integer, nullable=False, server_default="0"), schema=schema)
    op.add_column("login_throttle", sa.Column("pending_until", sa.DateTime(timezone=True)), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("login_throttle", "pending_until", schema=schema)
    op.drop_column("login_throttle", "pending", schema=schema)
