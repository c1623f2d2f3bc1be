"""An upload's writer holds a lease on a row of its own, renewed while it streams, instead of
a session-level advisory lock that kept a database connection for the stream's whole life.

(During a rolling upgrade an old replica's advisory lock and a new replica's lease do not see
each other: drain the old replicas' upload streams first, as any rolling upgrade does.)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade(schema: str) -> None:
    op.create_table(
        "upload_writers",
        sa.Column("upload_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("writer_id", sa.Uuid, nullable=False),
        sa.Column("held_until", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    op.create_index("upload_writers_account", "upload_writers", ["account_id"], schema=schema)


def downgrade(schema: str) -> None:
    op.drop_table("upload_writers", schema=schema)
