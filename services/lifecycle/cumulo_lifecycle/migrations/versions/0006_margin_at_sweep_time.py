"""The safety margin is applied by the sweeper, no longer stored in a frozen account's due time
(a changed margin then applies to accounts already frozen); the settings the due times were last
computed with are recorded, so that a change of them re-times the frozen accounts.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "schedule_settings",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("applied_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    # A frozen account's reminders all come before its delete_at: a due time after it is the
    # deletion with the margin baked in.
    op.execute(f"UPDATE {schema}.accounts SET next_due_at = delete_at WHERE state = 'frozen' AND next_due_at > delete_at")


def downgrade(schema: str) -> None:
    op.drop_table("schedule_settings", schema=schema)
