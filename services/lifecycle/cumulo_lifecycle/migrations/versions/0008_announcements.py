"""What the operator tells every account: new terms of service, maintenance windows.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "announcements",
        sa.Column("announcement_id", sa.Uuid, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP),
        sa.Column("message_en", sa.Text, nullable=False, server_default=""),
        sa.Column("message_zh", sa.Text, nullable=False, server_default=""),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("cursor", sa.Uuid),
        sa.Column("accounts_queued", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("queued_at", TIMESTAMP),
        sa.CheckConstraint("kind IN ('terms', 'maintenance')", name="announcements_kind_known"),
        sa.UniqueConstraint("kind", "reference", name="announcements_once"),
        schema=schema,
    )
    op.create_index("announcements_unqueued", "announcements", ["created_at"], schema=schema, postgresql_where=sa.text("queued_at IS NULL"))


def downgrade(schema: str) -> None:
    op.drop_table("announcements", schema=schema)
