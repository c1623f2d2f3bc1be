"""Backups are made without holding a transaction open over blob's answer: a backup is
stored unready while its files are checked, and a released file the job is deleting is
marked as such.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade(schema: str) -> None:
    op.add_column("backups", sa.Column("ready", sa.Boolean, nullable=False, server_default=sa.true()), schema=schema)
    op.create_index(
        "backups_unready", "backups", ["created_at"], schema=schema, postgresql_where=sa.text("NOT ready")
    )
    op.add_column("released_files", sa.Column("deleting_since", sa.DateTime(timezone=True)), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("released_files", "deleting_since", schema=schema)
    op.drop_index("backups_unready", table_name="backups", schema=schema)
    op.drop_column("backups", "ready", schema=schema)
