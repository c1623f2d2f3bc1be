"""Legal holds and the deleted-account gate are the platform's: the held accounts as the
lifecycle announces them (`legal_holds`, fed by account.hold_changed) replace the holds set by
RPC, and purged accounts are in the account-state gate (`account_states`) like every other
deleted account.

Holds placed through the old RPC are carried over as of when they were placed: a hold must
never be lost, and any later change the lifecycle announces replaces them.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from cumulo_platform.migrations import create_legal_holds_table

revision = "0009"
down_revision = "0008"

# The version a purge writes in the account-state gate (cumulo_platform.account_states.PURGED_VERSION).
PURGED_VERSION = 2**62


def upgrade(schema: str) -> None:
    create_legal_holds_table(schema)
    op.execute(
        sa.text(
            f'INSERT INTO "{schema}".legal_holds (account_id, held, changed_at) '
            f'SELECT account_id, true, since FROM "{schema}".holds'
        )
    )
    # Accounts purged before this revision stay refused, now by the platform's gate.
    op.execute(
        sa.text(
            f'INSERT INTO "{schema}".account_states (account_id, state, version, updated_at) '
            f"SELECT account_id, 'deleted', {PURGED_VERSION}, now() FROM \"{schema}\".purged_accounts "
            "ON CONFLICT (account_id) DO UPDATE SET state = 'deleted', version = EXCLUDED.version, updated_at = now()"
        )
    )
    op.drop_table("purged_accounts", schema=schema)
    op.drop_table("holds", schema=schema)


def downgrade(schema: str) -> None:
    op.create_table(
        "holds",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    op.create_table(
        "purged_accounts",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    # Back to the old tables without losing a hold or letting a purged account in again.
    op.execute(
        sa.text(
            f'INSERT INTO "{schema}".holds (account_id, reason, actor, since) '
            f"SELECT account_id, 'carried over', 'migration', changed_at FROM \"{schema}\".legal_holds WHERE held"
        )
    )
    op.execute(
        sa.text(
            f'INSERT INTO "{schema}".purged_accounts (account_id, purged_at) '
            f"SELECT account_id, updated_at FROM \"{schema}\".account_states WHERE version = {PURGED_VERSION}"
        )
    )
    op.drop_table("legal_holds", schema=schema)
