"""Records lead with the account id too (sharding later, keyed now): a record carries its
zone's account, and its primary key becomes (account_id, zone_id, record_id).

Every statement on records now names the account (a push, a pull, a look-up by id, clean-up),
so the indexes that led with the zone lead with the account: the primary key, and the
(zone, seq) index a pull walks, which becomes (account_id, zone_id, seq). The tombstones'
index, walked across accounts by the prune, stays as it is.

A record whose zone row is gone (clean-up removes a zone's records before its row, so there
should be none) belongs to no account and no statement can reach it: it is deleted.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from cumulo_platform.migrations import account_led_no_more, add_account_from, lead_with_account

revision = "0007"
down_revision = "0006"


def upgrade(schema: str) -> None:
    add_account_from(schema, "records", "zones", "zone_id")
    lead_with_account(schema, "records", "zone_id", "record_id")
    op.execute(f"DROP INDEX {schema}.records_changes")
    op.execute(f"CREATE UNIQUE INDEX records_changes ON {schema}.records (account_id, zone_id, seq)")


def downgrade(schema: str) -> None:
    op.execute(f"DROP INDEX {schema}.records_changes")
    op.execute(f"CREATE UNIQUE INDEX records_changes ON {schema}.records (zone_id, seq)")
    account_led_no_more(schema, "records", "zone_id", "record_id")
    op.execute(f"ALTER TABLE {schema}.records DROP COLUMN account_id")
