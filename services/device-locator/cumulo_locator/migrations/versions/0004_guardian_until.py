"""A guardian's link ends: by itself when the minor comes of age (`until`, from auth's
account.created), or when the adult revokes it (`revoked_at`, auth's guardian.revoked). A link
recorded before this revision has no end known here and is honoured no longer: auth's
ListGuardians still shows it to the account's owner.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade(schema: str) -> None:
    op.add_column("guardians", sa.Column("until", sa.DateTime(timezone=True)), schema=schema)
    op.add_column("guardians", sa.Column("revoked_at", sa.DateTime(timezone=True)), schema=schema)


def downgrade(schema: str) -> None:
    op.drop_column("guardians", "revoked_at", schema=schema)
    op.drop_column("guardians", "until", schema=schema)
