"""The new-session notice's "not you?" link: the hash of its token, on the session it ends.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade(schema: str) -> None:
    op.add_column("sessions", sa.Column("revoke_token_hash", sa.LargeBinary), schema=schema)
    op.create_index(
        "sessions_revoke_token", "sessions", ["revoke_token_hash"], unique=True, schema=schema,
        postgresql_where=sa.text("revoke_token_hash IS NOT NULL"),
    )


def downgrade(schema: str) -> None:
    op.drop_index("sessions_revoke_token", table_name="sessions", schema=schema)
    op.drop_column("sessions", "revoke_token_hash", schema=schema)
