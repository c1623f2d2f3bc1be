"""The sync schema's first tables: zones, records, usage, backups.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from cumulo_platform.migrations import create_account_states_table, create_event_tables, index_account_states

revision = "0001"
down_revision = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "zones",
        sa.Column("zone_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("horizon_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("record_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("modified_at", TIMESTAMP, nullable=False),
        sa.Column("dropped_at", TIMESTAMP),
        schema=schema,
    )
    op.create_index(
        "zones_account_name", "zones", ["account_id", "name"], unique=True, schema=schema,
        postgresql_where=sa.text("dropped_at IS NULL"),
    )
    op.create_index("zones_dropped", "zones", ["dropped_at"], schema=schema, postgresql_where=sa.text("dropped_at IS NOT NULL"))
    op.create_table(
        "records",
        sa.Column("zone_id", sa.Uuid, primary_key=True),
        sa.Column("record_id", sa.Text, primary_key=True),
        sa.Column("record_type", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("modified_at", TIMESTAMP, nullable=False),
        sa.Column("modified_by", sa.Text, nullable=False, server_default=""),
        schema=schema,
    )
    op.create_index("records_changes", "records", ["zone_id", "seq"], unique=True, schema=schema)
    op.create_index("records_tombstones", "records", ["modified_at"], schema=schema, postgresql_where=sa.text("deleted"))
    op.create_table(
        "usage",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
        schema=schema,
    )
    op.create_table(
        "backups",
        sa.Column("backup_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("device_name", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("entry_count", sa.BigInteger, nullable=False),
        sa.Column("total_size", sa.BigInteger, nullable=False),
        schema=schema,
    )
    op.create_index("backups_device", "backups", ["account_id", "device_id", "created_at"], schema=schema)
    op.create_table(
        "backup_entries",
        sa.Column("backup_id", sa.Uuid, sa.ForeignKey(f"{schema}.backups.backup_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("file_id", sa.Uuid, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        schema=schema,
    )
    op.create_index("backup_entries_file", "backup_entries", ["account_id", "file_id"], schema=schema)
    op.create_table(
        "released_files",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("file_id", sa.Uuid, primary_key=True),
        sa.Column("released_at", TIMESTAMP, nullable=False),
        sa.Column("retry_at", TIMESTAMP),
        schema=schema,
    )
    create_event_tables(schema)
    create_account_states_table(schema)
    index_account_states(schema)


def downgrade(schema: str) -> None:
    for table in ("account_states", "processed_events", "outbox", "released_files", "backup_entries", "backups", "usage", "records", "zones"):
        op.drop_table(table, schema=schema)
