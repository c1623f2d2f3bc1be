"""Codes for a forgotten password beside the codes that verify a contact: contact_codes gets a
purpose, part of its key (the codes waiting until now verified contacts). And a guardian's
minors found by an index (ListMinors, SetMinorPassword), not a walk of every account.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade(schema: str) -> None:
    op.add_column("contact_codes", sa.Column("purpose", sa.Text, nullable=False, server_default="verify"), schema=schema)
    op.alter_column("contact_codes", "purpose", server_default=None, schema=schema)
    op.drop_constraint("contact_codes_pkey", "contact_codes", schema=schema)
    op.create_primary_key("contact_codes_pkey", "contact_codes", ["account_id", "channel", "purpose"], schema=schema)
    op.create_check_constraint("contact_codes_purpose_known", "contact_codes", "purpose IN ('verify', 'reset')", schema=schema)
    op.create_index(
        "accounts_guardian", "accounts", ["guardian_account_id"], schema=schema, postgresql_where=sa.text("guardian_account_id IS NOT NULL")
    )


def downgrade(schema: str) -> None:
    op.drop_index("accounts_guardian", "accounts", schema=schema)
    op.execute(f"DELETE FROM {schema}.contact_codes WHERE purpose <> 'verify'")
    op.drop_constraint("contact_codes_purpose_known", "contact_codes", schema=schema)
    op.drop_constraint("contact_codes_pkey", "contact_codes", schema=schema)
    op.create_primary_key("contact_codes_pkey", "contact_codes", ["account_id", "channel"], schema=schema)
    op.drop_column("contact_codes", "purpose", schema=schema)
