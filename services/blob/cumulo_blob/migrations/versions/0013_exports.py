"""Take-out: an account's exports, one queued or running at a time, their archives until
they expire.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "exports",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("export_id", sa.Uuid, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP),
        sa.Column("finished_at", TIMESTAMP),
        sa.Column("expires_at", TIMESTAMP),
        sa.Column("lease_until", TIMESTAMP),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("files_done", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("files_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_written", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("archives", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("failure", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("state IN ('queued', 'running', 'ready', 'failed', 'expired')", name="exports_state_known"),
        schema=schema,
    )
    op.create_index(
        "exports_one_at_a_time", "exports", ["account_id"], unique=True, schema=schema,
        postgresql_where=sa.text("state IN ('queued', 'running')"),
    )
    op.create_index("exports_pending", "exports", ["requested_at"], schema=schema, postgresql_where=sa.text("state IN ('queued', 'running')"))
    op.create_index("exports_expiring", "exports", ["expires_at"], schema=schema, postgresql_where=sa.text("state = 'ready'"))


def downgrade(schema: str) -> None:
    op.drop_table("exports", schema=schema)
