"""When a session last entered its password: access tokens carry it (pwd_at), for what
needs a fresh confirmation, such as wiping a device.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade(schema: str) -> None:
    op.add_column("sessions", sa.Column("password_at", sa.DateTime(timezone=True)), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("sessions", "password_at", schema=schema)
