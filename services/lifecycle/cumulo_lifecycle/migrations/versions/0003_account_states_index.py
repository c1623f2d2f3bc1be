"""Replicas of the service refresh their account-state cache from this table's recent changes.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from cumulo_platform.migrations import index_account_states

revision = "0003"
down_revision = "0002"


def upgrade(schema: str) -> None:
    index_account_states(schema)


def downgrade(schema: str) -> None:
    op.drop_index(f"{schema}_account_states_updated_at", "account_states", schema=schema)
