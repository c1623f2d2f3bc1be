"""Access tokens revoked before they expire (cumulo_platform.revocations): every replica
refuses them at once, whatever the tokens' own expiry says.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from cumulo_platform.migrations import create_revocations_table

revision = "0005"
down_revision = "0004"


def upgrade(schema: str) -> None:
    create_revocations_table(schema)


def downgrade(schema: str) -> None:
    op.drop_table("revocations", schema=schema)
