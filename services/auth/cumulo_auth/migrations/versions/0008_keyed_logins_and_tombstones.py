"""Deleted means deleted:
- logins are kept only as keyed hashes (HMAC under the login-hash key from configuration). The
  unkeyed SHA-256 digests of deleted accounts' logins cannot be re-keyed (the logins are not
  known) and go: logging in with such a login answers INVALID_CREDENTIALS from now on, not
  ACCOUNT_DELETED. Failed-login counters of unknown logins, keyed by the login in clear, go.
- a deleted account's row keeps only what its tombstone needs (id, status, when): the birth
  date, terms, locale, creation time and guardian link of deleted accounts are cleared.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

CLEARED = ("birth_date", "terms_version", "terms_accepted_at", "created_at", "locale")


def upgrade(schema: str) -> None:
    op.execute(f"DELETE FROM {schema}.deleted_logins")
    op.execute(f"DELETE FROM {schema}.login_throttle WHERE key LIKE 'login:%'")
    for column in CLEARED:
        op.alter_column("accounts", column, nullable=True, schema=schema)
    op.execute(
        sa.text(
            f"UPDATE {schema}.accounts SET birth_date = NULL, terms_version = NULL, terms_accepted_at = NULL, created_at = NULL,"
            " locale = NULL, guardian_account_id = NULL, guardian_consent_at = NULL, guardian_revoked_at = NULL,"
            " suspended_until = NULL, cancelled_at = NULL WHERE status = 'deleted'"
        )
    )
    op.create_check_constraint(
        "accounts_alive_have_details",
        "accounts",
        "status = 'deleted' OR (birth_date IS NOT NULL AND terms_version IS NOT NULL AND terms_accepted_at IS NOT NULL"
        " AND created_at IS NOT NULL AND locale IS NOT NULL)",
        schema=schema,
    )


def downgrade(schema: str) -> None:
    op.drop_constraint("accounts_alive_have_details", "accounts", schema=schema)
