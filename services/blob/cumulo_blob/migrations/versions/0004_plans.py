"""Storage plans with versioned prices, and purchases.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "plan_prices",
        sa.Column("plan_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("price_minor_units", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("period_days", sa.Integer, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_table(
        "purchases",
        sa.Column("purchase_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("plan_id", sa.Text, nullable=False),
        sa.Column("price_version", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("price_minor_units", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("payment_reference", sa.Text, nullable=False, unique=True),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id", "price_version"], [f"{schema}.plan_prices.plan_id", f"{schema}.plan_prices.version"]
        ),
        schema=schema,
    )
    op.create_index("purchases_account", "purchases", ["account_id", "ends_at"], schema=schema)


def downgrade(schema: str) -> None:
    op.drop_table("purchases", schema=schema)
    op.drop_table("plan_prices", schema=schema)
