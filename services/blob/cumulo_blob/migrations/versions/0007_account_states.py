"""The local cache of lifecycle account states.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from cumulo_platform.migrations import create_account_states_table

revision = "0007"
down_revision = "0006"


def upgrade(schema: str) -> None:
    create_account_states_table(schema)


def downgrade(schema: str) -> None:
    op.drop_table("account_states", schema=schema)
