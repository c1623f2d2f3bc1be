"""A termination may leave the owner a window to take their data out: its end, on the
pending effect that carries the decision to auth.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade(schema: str) -> None:
    op.add_column("effects", sa.Column("export_until", sa.DateTime(timezone=True)), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("effects", "export_until", schema=schema)
