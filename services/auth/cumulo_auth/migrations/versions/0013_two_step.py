"""Two-step sign-in: when an account turned it on, its authenticator secret (sealed), the last
step used (a code is good once), and its recovery codes (keyed hashes).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("two_step_at", sa.DateTime(timezone=True)), schema=schema)
    op.create_table(
        "second_factors",
        sa.Column("account_id", sa.Uuid, sa.ForeignKey(f"{schema}.accounts.account_id"), primary_key=True),
        sa.Column("secret_sealed", sa.LargeBinary, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    op.create_table(
        "recovery_codes",
        sa.Column("account_id", sa.Uuid, sa.ForeignKey(f"{schema}.accounts.account_id"), primary_key=True),
        sa.Column("code_digest", sa.LargeBinary, primary_key=True),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        schema=schema,
    )


def downgrade(schema: str) -> None:
    op.drop_table("recovery_codes", schema=schema)
    op.drop_table("second_factors", schema=schema)
    op.drop_column("accounts", "two_step_at", schema=schema)
