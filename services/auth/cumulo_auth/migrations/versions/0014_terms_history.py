"""The terms of service an account accepted, as a history: every version, when, from which
client app, and by which guardian for a minor. What was on record (the latest version and
when) becomes each account's first entry.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade(schema: str) -> None:
    op.create_table(
        "terms_acceptances",
        sa.Column("account_id", sa.Uuid, sa.ForeignKey(f"{schema}.accounts.account_id"), primary_key=True),
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.Text, nullable=False, server_default=""),
        sa.Column("accepted_by", sa.Uuid, nullable=True),
        schema=schema,
    )
    op.execute(
        f"INSERT INTO {schema}.terms_acceptances (account_id, version, accepted_at, accepted_by)"
        f" SELECT account_id, terms_version, terms_accepted_at, CASE WHEN minor THEN guardian_account_id END"
        f" FROM {schema}.accounts WHERE terms_version IS NOT NULL AND terms_accepted_at IS NOT NULL"
    )


def downgrade(schema: str) -> None:
    op.drop_table("terms_acceptances", schema=schema)
