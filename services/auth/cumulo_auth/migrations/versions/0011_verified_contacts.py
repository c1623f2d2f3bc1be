"""Verified contacts: when the owner proved an e-mail address or phone number theirs, and the
codes sent to prove it. Contacts on record before this were the only way notices reached
people until now: they count as verified from here on (their owners are not left without the
freeze and deletion warnings); every contact added or changed from now on needs its code.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("email_verified_at", sa.DateTime(timezone=True)), schema=schema)
    op.add_column("accounts", sa.Column("phone_verified_at", sa.DateTime(timezone=True)), schema=schema)
    op.execute(
        f"UPDATE {schema}.accounts SET"
        " email_verified_at = CASE WHEN email IS NOT NULL THEN coalesce(created_at, now()) END,"
        " phone_verified_at = CASE WHEN phone IS NOT NULL THEN coalesce(created_at, now()) END"
        " WHERE email IS NOT NULL OR phone IS NOT NULL"
    )
    op.create_check_constraint("accounts_email_verified_has_email", "accounts", "email IS NOT NULL OR email_verified_at IS NULL", schema=schema)
    op.create_check_constraint("accounts_phone_verified_has_phone", "accounts", "phone IS NOT NULL OR phone_verified_at IS NULL", schema=schema)
    op.create_table(
        "contact_codes",
        sa.Column("account_id", sa.Uuid, sa.ForeignKey(f"{schema}.accounts.account_id"), primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("code_digest", sa.LargeBinary, nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("channel IN ('email', 'phone')", name="contact_codes_channel_known"),
        schema=schema,
    )


def downgrade(schema: str) -> None:
    op.drop_table("contact_codes", schema=schema)
    op.drop_constraint("accounts_phone_verified_has_phone", "accounts", schema=schema)
    op.drop_constraint("accounts_email_verified_has_email", "accounts", schema=schema)
    op.drop_column("accounts", "phone_verified_at", schema=schema)
    op.drop_column("accounts", "email_verified_at", schema=schema)
