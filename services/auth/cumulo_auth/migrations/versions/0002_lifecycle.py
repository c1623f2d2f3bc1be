"""The lifecycle joins: account language, deleted accounts, the local account-state cache.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from cumulo_platform.migrations import create_account_states_table

revision = "0002"
down_revision = "0001"


def upgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("locale", sa.Text, nullable=False, server_default="zh-CN"), schema=schema)
    op.alter_column("accounts", "password_hash", nullable=True, schema=schema)
    op.drop_constraint("accounts_status_known", "accounts", schema=schema)
    op.create_check_constraint(
        "accounts_status_known",
        "accounts",
        "status IN ('active', 'suspended', 'terminated', 'cancelled', 'deleted')",
        schema=schema,
    )
    op.drop_constraint("accounts_has_contact", "accounts", schema=schema)
    op.create_check_constraint(
        "accounts_has_contact", "accounts", "status = 'deleted' OR email IS NOT NULL OR phone IS NOT NULL", schema=schema
    )
    # What is left of a deleted account's logins: their SHA-256, so that logging in says
    # ACCOUNT_DELETED instead of "wrong password", and the address is free for a new account.
    op.create_table(
        "deleted_logins",
        sa.Column("login_digest", sa.LargeBinary, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    create_account_states_table(schema)


def downgrade(schema: str) -> None:
    op.drop_table("account_states", schema=schema)
    op.drop_table("deleted_logins", schema=schema)
    op.drop_column("accounts", "locale", schema=schema)
