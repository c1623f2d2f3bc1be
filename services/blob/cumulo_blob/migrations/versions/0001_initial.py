"""The blob schema's first tables.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cumulo_platform.migrations import create_event_tables

revision = "0001"
down_revision = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("parent_id", sa.Uuid, sa.ForeignKey(f"{schema}.nodes.node_id")),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("sha256", sa.Text),
        sa.Column("content_type", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("modified_at", TIMESTAMP, nullable=False),
        sa.Column("trashed_at", TIMESTAMP),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint("kind IN ('folder', 'file')", name="nodes_kind_known"),
        sa.CheckConstraint("kind = 'folder' OR sha256 IS NOT NULL", name="nodes_file_has_content"),
        schema=schema,
    )
    op.create_index(
        "nodes_live_name",
        "nodes",
        ["account_id", "parent_id", "name"],
        unique=True,
        schema=schema,
        postgresql_where=sa.text("trashed_at IS NULL"),
        postgresql_nulls_not_distinct=True,
    )
    op.create_index("nodes_parent", "nodes", ["parent_id"], schema=schema)
    op.create_index(
        "nodes_account_trash",
        "nodes",
        ["account_id", "trashed_at"],
        schema=schema,
        postgresql_where=sa.text("trashed_at IS NOT NULL"),
    )
    op.create_table(
        "contents",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("refcount", sa.Integer, nullable=False),
        sa.Column("s3_key", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_table(
        "uploads",
        sa.Column("upload_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("parent_id", sa.Uuid),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("s3_upload_id", sa.Text),
        sa.Column("committed_offset", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("part_etags", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("hash_state", sa.LargeBinary),
        sa.Column("state", sa.Text, nullable=False, server_default="open"),
        sa.Column("node_id", sa.Uuid),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "state IN ('open', 'completed', 'cancelled', 'expired', 'failed')", name="uploads_state_known"
        ),
        schema=schema,
    )
    op.create_index(
        "uploads_open_expiry", "uploads", ["expires_at"], schema=schema, postgresql_where=sa.text("state = 'open'")
    )
    op.create_index("uploads_account", "uploads", ["account_id"], schema=schema)
    op.create_table(
        "usage",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reserved", sa.BigInteger, nullable=False, server_default="0"),
        sa.CheckConstraint("used >= 0 AND reserved >= 0", name="usage_not_negative"),
        schema=schema,
    )
    op.create_table(
        "doomed_objects",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    create_event_tables(schema)


def downgrade(schema: str) -> None:
    raise NotImplementedError("the first revision is not reversible")
