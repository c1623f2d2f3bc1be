"""A terminated account's take-out window: until `export_until` its owner may sign in to the
take-out only (the decision allowed it).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("export_until", sa.DateTime(timezone=True)), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("accounts", "export_until", schema=schema)
