"""Signing keys rotate: a new key is announced before it signs (`signs_from`). Keys stored
before this revision (unsealed) are not trusted: the service retires them at its next start and
makes a sealed one; access tokens they signed are refused, and clients refresh once.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade(schema: str) -> None:
    op.add_column("signing_keys", sa.Column("signs_from", sa.DateTime(timezone=True)), schema=schema)
    op.execute(f"UPDATE {schema}.signing_keys SET signs_from = created_at")
    op.alter_column("signing_keys", "signs_from", nullable=False, schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("signing_keys", "signs_from", schema=schema)
