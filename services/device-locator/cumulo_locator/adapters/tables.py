"""The locator schema. Only the device-locator service reads or writes these tables."""

from __future__ import annotations

import sqlalchemy as sa

from cumulo_platform.account_states import account_states_table
from cumulo_platform.db import outbox_table, processed_events_table
from cumulo_platform.legal_holds import legal_holds_table
from cumulo_platform.revocations import revocations_table

SCHEMA = "locator"
metadata = sa.MetaData(schema=SCHEMA)
TIMESTAMP = sa.DateTime(timezone=True)
FLOAT = sa.Float(precision=53)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("device_key", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("device_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False, server_default=""),
    sa.Column("platform", sa.Text, nullable=False, server_default=""),
    sa.Column("registered_at", TIMESTAMP, nullable=False),
    sa.Column("last_seen_at", TIMESTAMP),
    sa.Column("battery", sa.Integer, nullable=False, server_default="-1"),
    # The newest position by measurement time (a late batch of old points does not move it).
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
    sa.PrimaryKeyConstraint("account_id", "device_key", name="devices_pkey"),
    sa.UniqueConstraint("account_id", "device_id", name="devices_account_device"),
    # Still found by its key alone: the device agent's reports and commands name it.
    sa.Index("devices_device_key", "device_key", unique=True),
)

# Location history: one row per device and measurement time (a point sent twice is kept
# once), under the device's account. Retention deletes by `measured_at` in small batches.
locations = sa.Table(
    "locations",
    metadata,
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("device_key", sa.Uuid, nullable=False),
    sa.Column("measured_at", TIMESTAMP, nullable=False),
    sa.Column("latitude", FLOAT, nullable=False),
    sa.Column("longitude", FLOAT, nullable=False),
    sa.Column("accuracy", FLOAT, nullable=False),
    sa.Column("altitude", FLOAT, nullable=False),
    sa.Column("speed", FLOAT, nullable=False),
    sa.Column("battery", sa.Integer, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("received_at", TIMESTAMP, nullable=False),
    # A device's history, newest first, is read and deleted by its account and key.
    sa.PrimaryKeyConstraint("account_id", "device_key", "measured_at", name="locations_pkey"),
    sa.Index("locations_measured_at", "measured_at"),
)

commands = sa.Table(
    "commands",
    metadata,
    sa.Column("command_id", sa.Uuid, nullable=False),
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
    sa.PrimaryKeyConstraint("account_id", "command_id", name="commands_pkey"),
    # Still found by its id alone: a delivered command's result, the expiry of commands.
    sa.Index("commands_command_id", "command_id", unique=True),
    sa.CheckConstraint("state IN ('queued', 'delivered', 'succeeded', 'failed', 'expired')", name="commands_state_known"),
    sa.Index("commands_device", "device_key", "created_at"),
    sa.Index("commands_pending", "expires_at", postgresql_where=sa.text("state IN ('queued', 'delivered')")),
)

# Minors and their guardians, from auth's account.created events: the link holds until the
# minor comes of age (`until`) unless the adult revoked it first (auth's guardian.revoked).
guardians = sa.Table(
    "guardians",
    metadata,
    sa.Column("minor_account_id", sa.Uuid, primary_key=True),
    sa.Column("guardian_account_id", sa.Uuid, nullable=False, index=True),
    sa.Column("until", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
account_states = account_states_table(metadata)
revocations = revocations_table(metadata)
# Declared for the schema check only: the code asks the platform's `Foundation.legal_holds()`.
legal_holds_table(metadata)
