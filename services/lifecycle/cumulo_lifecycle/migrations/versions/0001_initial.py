"""The lifecycle schema's first tables.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cumulo_platform.migrations import create_account_states_table, create_event_tables

revision = "0001"
down_revision = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", TIMESTAMP),
        sa.Column("last_access_at", TIMESTAMP, nullable=False),
        sa.Column("freeze_at", TIMESTAMP),
        sa.Column("frozen_at", TIMESTAMP),
        sa.Column("delete_at", TIMESTAMP),
        sa.Column("reminders_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_due_at", TIMESTAMP),
        sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("hold_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("hold_actor", sa.Text, nullable=False, server_default=""),
        sa.Column("cancel_requested_at", TIMESTAMP),
        sa.Column("deletion_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("deletion_started_at", TIMESTAMP),
        sa.Column("deleted_at", TIMESTAMP),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("locale", sa.Text, nullable=False, server_default="zh-CN"),
        sa.Column("reactivation_token_hash", sa.LargeBinary, unique=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("state IN ('active', 'frozen', 'deleting', 'deleted')", name="accounts_state_known"),
        schema=schema,
    )
    op.create_index(
        "accounts_next_due", "accounts", ["next_due_at"], schema=schema, postgresql_where=sa.text("next_due_at IS NOT NULL")
    )
    op.create_index("accounts_state", "accounts", ["state"], schema=schema)
    op.create_table(
        "transitions",
        sa.Column("transition_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("from_state", sa.Text, nullable=False),
        sa.Column("to_state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_index("ix_lifecycle_transitions_account_id", "transitions", ["account_id"], schema=schema)
    op.create_table(
        "notices",
        sa.Column("notice_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("cycle", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("destination", sa.Text, nullable=False, server_default=""),
        sa.Column("locale", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TIMESTAMP),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP),
        sa.UniqueConstraint("account_id", "kind", "cycle", "channel", name="notices_once"),
        schema=schema,
    )
    op.create_index("ix_lifecycle_notices_account_id", "notices", ["account_id"], schema=schema)
    op.create_index(
        "notices_pending", "notices", ["next_attempt_at"], schema=schema, postgresql_where=sa.text("status = 'pending'")
    )
    op.create_table(
        "purges",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("next_retry_at", TIMESTAMP),
        sa.Column("completed_at", TIMESTAMP),
        schema=schema,
    )
    op.create_index(
        "purges_retry", "purges", ["next_retry_at"], schema=schema, postgresql_where=sa.text("completed_at IS NULL")
    )
    op.create_table(
        "purge_participants",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("service", sa.Text, primary_key=True),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("completed_at", TIMESTAMP),
        sa.Column("items_deleted", sa.BigInteger, nullable=False, server_default="0"),
        schema=schema,
    )
    op.create_table(
        "tombstones",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("created_at", TIMESTAMP),
        sa.Column("last_access_at", TIMESTAMP, nullable=False),
        sa.Column("frozen_at", TIMESTAMP),
        sa.Column("deletion_started_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("participants", postgresql.JSONB, nullable=False),
        schema=schema,
    )
    create_event_tables(schema)
    create_account_states_table(schema)


def downgrade(schema: str) -> None:
    for table in ("account_states", "processed_events", "outbox", "tombstones", "purge_participants", "purges", "notices", "transitions", "accounts"):
        op.drop_table(table, schema=schema)
