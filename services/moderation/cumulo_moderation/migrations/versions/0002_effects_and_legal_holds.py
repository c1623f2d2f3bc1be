"""Legal holds as the lifecycle announces them (the platform's `legal_holds` table) instead of
moderation's own `holds`; pending effects, carried out by other services outside any
transaction.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from cumulo_platform.migrations import create_legal_holds_table

revision = "0002"
down_revision = "0001"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    # The lifecycle is the authority on holds; its `account.hold_changed` events fill the new
    # table from now on. The holds moderation knew are carried over as of when they were
    # placed (the stream keeps events for days, not for ever): a hold must never be lost, and
    # any later change the lifecycle announces replaces them.
    create_legal_holds_table(schema)
    op.execute(
        sa.text(
            f'INSERT INTO "{schema}".legal_holds (account_id, held, changed_at) '
            f'SELECT account_id, true, since FROM "{schema}".holds'
        )
    )
    op.drop_table("holds", schema=schema)
    op.create_table(
        "effects",
        sa.Column("effect_id", sa.Uuid, primary_key=True),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("case_id", sa.Uuid, unique=True),
        sa.Column("subject", sa.Text, nullable=False, unique=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("node_id", sa.Uuid),
        sa.Column("link_id", sa.Uuid),
        sa.Column("sha256", sa.Text, nullable=False, server_default=""),
        sa.Column("decision", sa.Text, nullable=False, server_default=""),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("call_reason", sa.Text, nullable=False),
        sa.Column("suspended_until", TIMESTAMP),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        schema=schema,
    )
    op.create_index("effects_due", "effects", ["due_at"], schema=schema)


def downgrade(schema: str) -> None:
    op.drop_table("effects", schema=schema)
    op.create_table(
        "holds",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("since", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.execute(
        sa.text(
            f'INSERT INTO "{schema}".holds (account_id, reason, actor, since) '
            f"SELECT account_id, 'carried over', 'migration', changed_at FROM \"{schema}\".legal_holds WHERE held"
        )
    )
    op.drop_table("legal_holds", schema=schema)
