"""Blocklist entries reach blob (BlockContent) as effects: an effect may name no account and
carries the digests it puts in or takes out. Entries listed before this are put into blob by
effects due at once, a thousand digests each, which `resume_due` carries out: stored copies
of listed content are blocked in every account, and uploads of it refused.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"

BATCH = 1000  # cumulo_moderation.blocklist.EFFECT_BATCH, as of this revision


def upgrade(schema: str) -> None:
    op.alter_column("effects", "account_id", existing_type=sa.Uuid, nullable=True, schema=schema)
    op.add_column("effects", sa.Column("digests", postgresql.ARRAY(sa.Text)), schema=schema)
    op.execute(
        f"""
        INSERT INTO {schema}.effects
            (effect_id, purpose, subject, action, digests, actor, reason, call_reason, created_at, due_at)
        SELECT gen_random_uuid(), 'blocklist_entry',
               'sha256:' || min(sha256) || CASE WHEN count(*) > 1 THEN ' (+' || (count(*) - 1) || ')' ELSE '' END,
               'block_content', array_agg(sha256 ORDER BY sha256), 'system:blocklist',
               'listed before blob enforced the blocklist', 'blocklist entries listed before blob enforced them', now(), now()
        FROM (SELECT sha256, (row_number() OVER (ORDER BY sha256) - 1) / {BATCH} AS batch FROM {schema}.blocklist) listed
        GROUP BY batch
        """
    )


def downgrade(schema: str) -> None:
    op.execute(f"DELETE FROM {schema}.effects WHERE account_id IS NULL")
    op.drop_column("effects", "digests", schema=schema)
    op.alter_column("effects", "account_id", existing_type=sa.Uuid, nullable=False, schema=schema)
