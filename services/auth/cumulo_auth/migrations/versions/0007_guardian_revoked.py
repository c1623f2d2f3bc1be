"""When an adult revoked their guardian's access (the link otherwise ends by itself when the
minor comes of age).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("guardian_revoked_at", sa.DateTime(timezone=True)), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("accounts", "guardian_revoked_at", schema=schema)
