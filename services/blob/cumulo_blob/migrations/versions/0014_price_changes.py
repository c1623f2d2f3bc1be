"""Price changes are announced before they apply (§7.2): each price version applies from a
time, its plan's subscribers are told first, and a subscriber's consent to a new price is
recorded (renewals keep the bought price until then). Prices already on record applied when
they were set, and nobody is told about them now.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.add_column("plan_prices", sa.Column("applies_at", TIMESTAMP), schema=schema)
    op.add_column("plan_prices", sa.Column("notified_at", TIMESTAMP), schema=schema)
    op.execute(f"UPDATE {schema}.plan_prices SET applies_at = created_at, notified_at = created_at")
    op.alter_column("plan_prices", "applies_at", nullable=False, schema=schema)
    op.create_table(
        "price_acceptances",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("plan_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("accepted_at", TIMESTAMP, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False, server_default=""),
        schema=schema,
    )
    op.create_index("purchases_plan", "purchases", ["plan_id", "ends_at"], schema=schema)


def downgrade(schema: str) -> None:
    op.drop_table("price_acceptances", schema=schema)
    op.drop_column("plan_prices", "notified_at", schema=schema)
    op.drop_column("plan_prices", "applies_at", schema=schema)
