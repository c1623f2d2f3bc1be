"""Every per-account table leads with the account id (sharding later, keyed now): the primary
keys of zones, backups and backup entries become (account_id, their own key), and a backup's
entries point at it with its account.

Zones and backups are still found by their ids alone (a push locks its zone by id, a backup's
check with the blob service goes on by id), so a unique index on each id stays; in a
distributed setup it would hold per shard only, until those lookups carry the account. A
backup's entries are still read and deleted by backup alone: an index on it stays.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from cumulo_platform.migrations import account_led_no_more, lead_with_account

revision = "0006"
down_revision = "0005"


def upgrade(schema: str) -> None:
    lead_with_account(schema, "zones", "zone_id", unique="zones_zone_id")

    # The entries' foreign key rests on the backups' primary key: it goes first, and comes
    # back on the new one.
    op.execute(f"ALTER TABLE {schema}.backup_entries DROP CONSTRAINT backup_entries_backup_id_fkey")
    lead_with_account(schema, "backups", "backup_id", unique="backups_backup_id")
    op.execute(f"CREATE INDEX backup_entries_backup ON {schema}.backup_entries (backup_id)")
    lead_with_account(schema, "backup_entries", "backup_id", "path")
    op.execute(
        f"ALTER TABLE {schema}.backup_entries ADD CONSTRAINT backup_entries_backup_fkey "
        f"FOREIGN KEY (account_id, backup_id) REFERENCES {schema}.backups (account_id, backup_id) ON DELETE CASCADE"
    )


def downgrade(schema: str) -> None:
    op.execute(f"ALTER TABLE {schema}.backup_entries DROP CONSTRAINT backup_entries_backup_fkey")
    account_led_no_more(schema, "backup_entries", "backup_id", "path")
    op.execute(f"DROP INDEX {schema}.backup_entries_backup")
    account_led_no_more(schema, "backups", "backup_id", unique="backups_backup_id")
    op.execute(
        f"ALTER TABLE {schema}.backup_entries ADD CONSTRAINT backup_entries_backup_id_fkey "
        f"FOREIGN KEY (backup_id) REFERENCES {schema}.backups (backup_id) ON DELETE CASCADE"
    )

    account_led_no_more(schema, "zones", "zone_id", unique="zones_zone_id")
