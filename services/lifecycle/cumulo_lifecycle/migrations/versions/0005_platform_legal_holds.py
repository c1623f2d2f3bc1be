"""Legal holds move to the platform's `legal_holds` table, the one store every question asks;
who placed a hold is kept with its transition (`actor`), so the answers still show why. Contacts
are looked up after an event's unit of work: `contacts_wanted_at` marks the accounts waiting.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from cumulo_platform.migrations import create_legal_holds_table

revision = "0005"
down_revision = "0004"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    create_legal_holds_table(schema)
    op.add_column("transitions", sa.Column("actor", sa.Text, nullable=False, server_default=""), schema=schema)
    op.add_column("accounts", sa.Column("contacts_wanted_at", TIMESTAMP), schema=schema)
    op.create_index(
        "accounts_contacts_wanted", "accounts", ["contacts_wanted_at"], schema=schema,
        postgresql_where=sa.text("contacts_wanted_at IS NOT NULL"),
    )
    # The placement of each current hold names its actor, as new placements do.
    op.execute(
        f"""
        UPDATE {schema}.transitions AS t SET actor = a.hold_actor
        FROM {schema}.accounts AS a
        WHERE a.held AND a.hold_actor <> '' AND t.account_id = a.account_id
          AND t.reason = 'legal hold placed by ' || a.hold_actor || ': ' || a.hold_reason
        """
    )
    op.execute(
        f"""
        INSERT INTO {schema}.legal_holds (account_id, held, changed_at)
        SELECT account_id, true, updated_at FROM {schema}.accounts WHERE held
        ON CONFLICT (account_id) DO NOTHING
        """
    )
    for column in ("held", "hold_reason", "hold_actor"):
        op.drop_column("accounts", column, schema=schema)


def downgrade(schema: str) -> None:
    op.add_column("accounts", sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()), schema=schema)
    op.add_column("accounts", sa.Column("hold_reason", sa.Text, nullable=False, server_default=""), schema=schema)
    op.add_column("accounts", sa.Column("hold_actor", sa.Text, nullable=False, server_default=""), schema=schema)
    op.execute(
        f"""
        UPDATE {schema}.accounts AS a SET held = true
        FROM {schema}.legal_holds AS h WHERE h.account_id = a.account_id AND h.held
        """
    )
    op.drop_index("accounts_contacts_wanted", "accounts", schema=schema)
    op.drop_column("accounts", "contacts_wanted_at", schema=schema)
    op.drop_column("transitions", "actor", schema=schema)
    op.drop_table("legal_holds", schema=schema)
