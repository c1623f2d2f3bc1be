"""Evidence manifests signed with moderation's own Ed25519 keys (`signing_keys`), the signature
and the key recorded with each export, and the Object Lock retention its objects were given.

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
        "signing_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False, unique=True),
        sa.Column("algorithm", sa.Text, nullable=False),
        sa.Column("private_key", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.add_column("exports", sa.Column("signature_key", sa.Text), schema=schema)
    op.add_column("exports", sa.Column("signature", sa.LargeBinary), schema=schema)
    op.add_column("exports", sa.Column("signing_key_id", sa.Text), schema=schema)
    op.add_column("exports", sa.Column("signing_key_fingerprint", sa.Text), schema=schema)
    op.add_column("exports", sa.Column("lock_mode", sa.Text, nullable=False, server_default=""), schema=schema)
    op.add_column("exports", sa.Column("retain_until", TIMESTAMP), schema=schema)
    op.create_foreign_key(
        "exports_signing_key_id_fkey", "exports", "signing_keys", ["signing_key_id"], ["key_id"], source_schema=schema, referent_schema=schema
    )


def downgrade(schema: str) -> None:
    op.drop_constraint("exports_signing_key_id_fkey", "exports", schema=schema)
    for column in ("retain_until", "lock_mode", "signing_key_fingerprint", "signing_key_id", "signature", "signature_key"):
        op.drop_column("exports", column, schema=schema)
    op.drop_table("signing_keys", schema=schema)
