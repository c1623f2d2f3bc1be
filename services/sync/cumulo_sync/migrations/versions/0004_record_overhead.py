"""The sync quota counts records too: every record row (a tombstone too, until it is pruned)
costs a fixed overhead besides its payload. Accounts are charged for the rows they have.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

# cumulo_sync.domain.rules.RECORD_OVERHEAD_BYTES when this ran (a migration keeps its own).
RECORD_OVERHEAD_BYTES = 512


def _rows_per_account(schema: str) -> str:
    return f"""
        SELECT z.account_id, count(*) AS n FROM {schema}.records r JOIN {schema}.zones z ON z.zone_id = r.zone_id
        GROUP BY z.account_id
    """


def upgrade(schema: str) -> None:
    op.execute(
        sa.text(
            f"""
            INSERT INTO {schema}.usage AS u (account_id, used)
            SELECT c.account_id, {RECORD_OVERHEAD_BYTES} * c.n FROM ({_rows_per_account(schema)}) c
            ON CONFLICT (account_id) DO UPDATE SET used = u.used + excluded.used
            """
        )
    )


def downgrade(schema: str) -> None:
    op.execute(
        sa.text(
            f"""
            UPDATE {schema}.usage u SET used = GREATEST(u.used - {RECORD_OVERHEAD_BYTES} * c.n, 0)
            FROM ({_rows_per_account(schema)}) c WHERE c.account_id = u.account_id
            """
        )
    )
