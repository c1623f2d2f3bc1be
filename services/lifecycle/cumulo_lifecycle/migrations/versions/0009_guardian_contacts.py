"""A minor's guardian gets the minor's notices too: the guardian's verified contacts, kept
with the minor's, until the minor comes of age.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("guardian_email", sa.Text), schema=schema)
    op.add_column("accounts", sa.Column("guardian_phone", sa.Text), schema=schema)
    op.add_column("accounts", sa.Column("guardian_until", sa.DateTime(timezone=True)), schema=schema)
    op.create_index(
        "accounts_guardian_email", "accounts", ["guardian_email"], schema=schema, postgresql_where=sa.text("guardian_email IS NOT NULL")
    )
    op.create_index(
        "accounts_guardian_phone", "accounts", ["guardian_phone"], schema=schema, postgresql_where=sa.text("guardian_phone IS NOT NULL")
    )


def downgrade(schema: str) -> None:
    for column in ("guardian_until", "guardian_phone", "guardian_email"):
        op.drop_column("accounts", column, schema=schema)
