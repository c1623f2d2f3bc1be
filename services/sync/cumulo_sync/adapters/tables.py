"""The sync schema. Only the sync service reads or writes these tables."""

from __future__ import annotations

import sqlalchemy as sa

from cumulo_platform.account_states import account_states_table
from cumulo_platform.db import outbox_table, processed_events_table
from cumulo_platform.legal_holds import legal_holds_table
from cumulo_platform.revocations import revocations_table

SCHEMA = "sync"
metadata = sa.MetaData(schema=SCHEMA)
TIMESTAMP = sa.DateTime(timezone=True)

zones = sa.Table(
    "zones",
    metadata,
    sa.Column("zone_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    # The zone's change counter: each stored change takes the next number. Pushes lock the
    # zone's row, so numbers commit in order and a token never skips a late commit.
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
    # Tombstones up to this number have been dropped: older tokens cannot be served.
    sa.Column("horizon_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("record_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("modified_at", TIMESTAMP, nullable=False),
    # A deleted zone's records are removed in batches afterwards, then the zone row.
    sa.Column("dropped_at", TIMESTAMP),
    sa.PrimaryKeyConstraint("account_id", "zone_id", name="zones_pkey"),
    # Still found by its id alone: a push locks and numbers its zone by id, clean-up walks them.
    sa.Index("zones_zone_id", "zone_id", unique=True),
    sa.Index("zones_account_name", "account_id", "name", unique=True, postgresql_where=sa.text("dropped_at IS NULL")),
    sa.Index("zones_dropped", "dropped_at", postgresql_where=sa.text("dropped_at IS NOT NULL")),
)

records = sa.Table(
    "records",
    metadata,
    # The zone's account, written by every push: each statement on records names it.
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("zone_id", sa.Uuid, nullable=False),
    sa.Column("record_id", sa.Text, nullable=False),
    sa.Column("record_type", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    # The change number of the record's last change; its change tag is derived from it.
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("modified_at", TIMESTAMP, nullable=False),
    sa.Column("modified_by", sa.Text, nullable=False, server_default=""),
    sa.PrimaryKeyConstraint("account_id", "zone_id", "record_id", name="records_pkey"),
    # (account, zone, seq) is what FetchChanges walks: the cost of a pull is the changes it returns.
    sa.Index("records_changes", "account_id", "zone_id", "seq", unique=True),
    sa.Index("records_tombstones", "modified_at", postgresql_where=sa.text("deleted")),
)

# Bytes of live payloads per account, against the sync quota.
usage = sa.Table(
    "usage",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
)

backups = sa.Table(
    "backups",
    metadata,
    sa.Column("backup_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("device_id", sa.Text, nullable=False),
    sa.Column("device_name", sa.Text, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("entry_count", sa.BigInteger, nullable=False),
    sa.Column("total_size", sa.BigInteger, nullable=False),
    # False while its files are checked with the blob service: out of sight, but its entries
    # already keep their files from being released.
    sa.Column("ready", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.PrimaryKeyConstraint("account_id", "backup_id", name="backups_pkey"),
    # Still found by its id alone: its check with the blob service goes on by id.
    sa.Index("backups_backup_id", "backup_id", unique=True),
    sa.Index("backups_device", "account_id", "device_id", "created_at"),
    sa.Index("backups_unready", "created_at", postgresql_where=sa.text("NOT ready")),
)

backup_entries = sa.Table(
    "backup_entries",
    metadata,
    sa.Column("backup_id", sa.Uuid, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("file_id", sa.Uuid, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "backup_id", "path", name="backup_entries_pkey"),
    sa.ForeignKeyConstraint(
        ["account_id", "backup_id"], [f"{SCHEMA}.backups.account_id", f"{SCHEMA}.backups.backup_id"],
        name="backup_entries_backup_fkey", ondelete="CASCADE",
    ),
    # A backup's entries are still read and deleted by the backup alone.
    sa.Index("backup_entries_backup", "backup_id"),
    sa.Index("backup_entries_file", "account_id", "file_id"),
)

# Blob files no backup references any more, to be deleted in the blob service (a job sends
# them, so a pruned backup's files go even if the blob service was away at the time).
released_files = sa.Table(
    "released_files",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("file_id", sa.Uuid, primary_key=True),
    sa.Column("released_at", TIMESTAMP, nullable=False),
    # Not before then: set when the job takes the file, and left when the blob service
    # refused (a legal hold) or was away.
    sa.Column("retry_at", TIMESTAMP),
    # Set while the job has the blob service delete it: a backup can no longer count on it.
    sa.Column("deleting_since", TIMESTAMP),
)



def records_by_id(columns: str = "r.*") -> sa.TextClause:
    """A zone's records (`columns` of `r`) among the ids `:ids` (text[]) of zone `:zone_id`
    of account `:account_id`: one primary-key probe per id, whatever the planner believes of
    the zone's size. With `zone_id = … AND record_id = ANY(…)` a zone grown since the table
    was last analyzed (a new account's first big sync) looked empty, and the planner walked
    all its rows through the (zone_id, seq) index, comparing each with every id: 360 ms for
    one push of 400 to a zone of 100,000 records, where the probes take half a millisecond.
    LIMIT 1 keeps the subquery a per-id probe (the planner would otherwise turn it into a
    join)."""
    return sa.text(
        f"""
        SELECT {columns} FROM unnest(CAST(:ids AS text[])) AS wanted(record_id)
        CROSS JOIN LATERAL (
            SELECT * FROM {SCHEMA}.records
            WHERE account_id = :account_id AND zone_id = :zone_id AND record_id = wanted.record_id LIMIT 1
        ) AS r
        """
    )


outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
account_states = account_states_table(metadata)
revocations = revocations_table(metadata)
# Declared for the schema check only: the code asks the platform's `Foundation.legal_holds()`.
legal_holds_table(metadata)
