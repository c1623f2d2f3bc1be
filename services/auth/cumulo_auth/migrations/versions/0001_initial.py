"""The auth schema's first tables.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cumulo_platform.migrations import create_event_tables

revision = "0001"
down_revision = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.Text, unique=True),
        sa.Column("phone", sa.Text, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("minor", sa.Boolean, nullable=False),
        sa.Column("guardian_account_id", sa.Uuid, sa.ForeignKey(f"{schema}.accounts.account_id")),
        sa.Column("guardian_consent_at", TIMESTAMP),
        sa.Column("terms_version", sa.Text, nullable=False),
        sa.Column("terms_accepted_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("status_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("suspended_until", TIMESTAMP),
        sa.Column("roles", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("cancelled_at", TIMESTAMP),
        sa.CheckConstraint("email IS NOT NULL OR phone IS NOT NULL", name="accounts_has_contact"),
        sa.CheckConstraint("status IN ('active', 'suspended', 'terminated', 'cancelled')", name="accounts_status_known"),
        schema=schema,
    )
    op.create_table(
        "client_apps",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        schema=schema,
    )
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", TIMESTAMP, nullable=False),
        sa.Column("blocked_until", TIMESTAMP),
        schema=schema,
    )
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("private_key", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("retired_at", TIMESTAMP),
        schema=schema,
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, sa.ForeignKey(f"{schema}.accounts.account_id"), nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("device_name", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_used_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP),
        sa.Column("revoke_reason", sa.Text, nullable=False, server_default=""),
        schema=schema,
    )
    op.create_index("ix_auth_sessions_account_id", "sessions", ["account_id"], schema=schema)
    op.create_table(
        "status_changes",
        sa.Column("change_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.Uuid, sa.ForeignKey(f"{schema}.accounts.account_id"), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_index("ix_auth_status_changes_account_id", "status_changes", ["account_id"], schema=schema)
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column("session_id", sa.Uuid, sa.ForeignKey(f"{schema}.sessions.session_id"), nullable=False),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP),
        schema=schema,
    )
    op.create_index("ix_auth_refresh_tokens_session_id", "refresh_tokens", ["session_id"], schema=schema)
    create_event_tables(schema)


def downgrade(schema: str) -> None:
    raise NotImplementedError("the first revision is not reversible")
