"""Where a pending delete's content was (its path as the owner sees it), kept with the effect
so that a retry names it without asking blob again.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"


def upgrade(schema: str) -> None:
    op.add_column("effects", sa.Column("place", postgresql.JSONB, nullable=True), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("effects", "place", schema=schema)
