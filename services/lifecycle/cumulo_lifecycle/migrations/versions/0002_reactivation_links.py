"""Reactivation links: one token per notice that carries a link (the freeze notice and each
deletion reminder), any of them valid while the account is frozen.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade(schema: str) -> None:
    op.create_table(
        "reactivation_links",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    op.create_index("ix_lifecycle_reactivation_links_account_id", "reactivation_links", ["account_id"], schema=schema)
    op.drop_column("accounts", "reactivation_token_hash", schema=schema)


def downgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("reactivation_token_hash", sa.LargeBinary, unique=True), schema=schema)
    op.drop_table("reactivation_links", schema=schema)
