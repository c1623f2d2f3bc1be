"""Every per-account table leads with the account id (sharding later, keyed now): the primary
keys of devices and commands become (account_id, their own key).

Both are still found by their own keys alone (a device agent's report and a command's
delivery name the device, the expiry of commands walks them all), so a unique index on each
stays; in a distributed setup it would hold per shard only, until those lookups carry the
account.

Revision ID: 0005
Revises: 0004
"""

from cumulo_platform.migrations import account_led_no_more, lead_with_account

revision = "0005"
down_revision = "0004"

TABLES = {"devices": "device_key", "commands": "command_id"}


def upgrade(schema: str) -> None:
    for table, key in TABLES.items():
        lead_with_account(schema, table, key, unique=f"{table}_{key}")


def downgrade(schema: str) -> None:
    for table, key in TABLES.items():
        account_led_no_more(schema, table, key, unique=f"{table}_{key}")
