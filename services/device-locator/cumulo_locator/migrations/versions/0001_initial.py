"""The locator schema's first tables: devices, locations, commands, guardians.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from cumulo_platform.migrations import create_account_states_table, create_event_tables, index_account_states

revision = "0001"
down_revision = None

TIMESTAMP = sa.DateTime(timezone=True)
FLOAT = sa.Float(precision=53)


def upgrade(schema: str) -> None:
    op.create_table(
        "devices",
        sa.Column("device_key", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False, server_default=""),
        sa.Column("platform", sa.Text, nullable=False, server_default=""),
        sa.Column("registered_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP),
        sa.Column("battery", sa.Integer, nullable=False, server_default="-1"),
        sa.Column("latitude", FLOAT),
        sa.Column("longitude", FLOAT),
        sa.Column("accuracy", FLOAT),
        sa.Column("altitude", FLOAT),
        sa.Column("speed", FLOAT),
        sa.Column("source", sa.Text),
        sa.Column("measured_at", TIMESTAMP),
        sa.Column("lost_mode", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("lost_message", sa.Text, nullable=False, server_default=""),
        sa.Column("lost_phone", sa.Text, nullable=False, server_default=""),
        sa.Column("lost_since", TIMESTAMP),
        sa.Column("found_at", TIMESTAMP),
        sa.Column("wiped_at", TIMESTAMP),
        sa.UniqueConstraint("account_id", "device_id", name="devices_account_device"),
        schema=schema,
    )
    op.create_table(
        "locations",
        sa.Column("device_key", sa.Uuid, primary_key=True),
        sa.Column("measured_at", TIMESTAMP, primary_key=True),
        sa.Column("latitude", FLOAT, nullable=False),
        sa.Column("longitude", FLOAT, nullable=False),
        sa.Column("accuracy", FLOAT, nullable=False),
        sa.Column("altitude", FLOAT, nullable=False),
        sa.Column("speed", FLOAT, nullable=False),
        sa.Column("battery", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_index("locations_measured_at", "locations", ["measured_at"], schema=schema)
    op.create_table(
        "commands",
        sa.Column("command_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("device_key", sa.Uuid, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("ring_seconds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lost_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("lost_message", sa.Text, nullable=False, server_default=""),
        sa.Column("lost_phone", sa.Text, nullable=False, server_default=""),
        sa.Column("sent_by", sa.Uuid, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("delivered_at", TIMESTAMP),
        sa.Column("completed_at", TIMESTAMP),
        sa.Column("deliveries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("state IN ('queued', 'delivered', 'succeeded', 'failed', 'expired')", name="commands_state_known"),
        schema=schema,
    )
    op.create_index("commands_device", "commands", ["device_key", "created_at"], schema=schema)
    op.create_index(
        "commands_pending", "commands", ["expires_at"], schema=schema,
        postgresql_where=sa.text("state IN ('queued', 'delivered')"),
    )
    op.create_table(
        "guardians",
        sa.Column("minor_account_id", sa.Uuid, primary_key=True),
        sa.Column("guardian_account_id", sa.Uuid, nullable=False),
        schema=schema,
    )
    op.create_index("ix_locator_guardians_guardian_account_id", "guardians", ["guardian_account_id"], schema=schema)
    create_event_tables(schema)
    create_account_states_table(schema)
    index_account_states(schema)


def downgrade(schema: str) -> None:
    for table in ("account_states", "processed_events", "outbox", "guardians", "commands", "locations", "devices"):
        op.drop_table(table, schema=schema)
