"""The location history leads with the account id too (sharding later, keyed now): a position
carries its device's account, and its primary key becomes (account_id, device_key,
measured_at).

Every statement that reads or deletes a device's history names its account now (the history,
a device's removal, the purge), so the primary key serves them as the old one did. Retention,
which walks every account by measurement time, keeps its index on `measured_at`.

A position whose device is gone (a device's history is deleted after its row, so a removal
cut short leaves some) belongs to no account and nothing but retention would reach it: it is
deleted.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from cumulo_platform.migrations import account_led_no_more, add_account_from, lead_with_account

revision = "0006"
down_revision = "0005"


def upgrade(schema: str) -> None:
    add_account_from(schema, "locations", "devices", "device_key")
    lead_with_account(schema, "locations", "device_key", "measured_at")


def downgrade(schema: str) -> None:
    account_led_no_more(schema, "locations", "device_key", "measured_at")
    op.execute(f"ALTER TABLE {schema}.locations DROP COLUMN account_id")
