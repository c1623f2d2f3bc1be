"""Held accounts, whose location history retention leaves alone until the hold is released.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from cumulo_platform.migrations import create_legal_holds_table

revision = "0002"
down_revision = "0001"


def upgrade(schema: str) -> None:
    create_legal_holds_table(schema)


def downgrade(schema: str) -> None:
    op.drop_table("legal_holds", schema=schema)
