"""What every replica looks at a few times a second to forget the sessions and accounts it keeps
in memory (cumulo_auth.live_sessions): accounts by when they changed, sessions by when they
were revoked.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade(schema: str) -> None:
    op.create_index("accounts_updated_at", "accounts", ["updated_at"], schema=schema)
    op.create_index("sessions_revoked_at", "sessions", ["revoked_at"], schema=schema, postgresql_where="revoked_at IS NOT NULL")


def downgrade(schema: str) -> None:
    op.drop_index("sessions_revoked_at", "sessions", schema=schema)
    op.drop_index("accounts_updated_at", "accounts", schema=schema)
