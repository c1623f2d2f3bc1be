"""The auth schema's first tables.

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None


def upgrade(schema: str) -> None:
    # The tables as first released; later revisions alter them with op.* calls.
    from cumulo_auth.adapters.tables import metadata

    assert metadata.schema == schema
    metadata.create_all(op.get_bind())


def downgrade(schema: str) -> None:
    raise NotImplementedError("the first revision is not reversible")
