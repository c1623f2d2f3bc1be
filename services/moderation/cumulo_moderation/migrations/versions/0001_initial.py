"""The moderation schema's first tables: cases, complaints, strikes, the audit log (append-only,
enforced by a trigger), the blocklist, holds, evidence exports and rate counters.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cumulo_platform.migrations import create_account_states_table, create_event_tables, index_account_states

revision = "0001"
down_revision = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade(schema: str) -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.Uuid, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("target_kind", sa.Text, nullable=False),
        sa.Column("account_id", sa.Uuid),
        sa.Column("node_id", sa.Uuid),
        sa.Column("node_kind", sa.Text, nullable=False, server_default=""),
        sa.Column("link_id", sa.Uuid),
        sa.Column("sha256", sa.Text, nullable=False, server_default=""),
        sa.Column("open_key", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("auto_blocked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("claimed_by", sa.Text, nullable=False, server_default=""),
        sa.Column("claimed_at", TIMESTAMP),
        sa.Column("decision", sa.Text, nullable=False, server_default=""),
        sa.Column("decided_by", sa.Text, nullable=False, server_default=""),
        sa.Column("decided_at", TIMESTAMP),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("suspended_until", TIMESTAMP),
        sa.Column("counter_state", sa.Text, nullable=False, server_default="none"),
        sa.Column("counter_notice", postgresql.JSONB),
        sa.Column("counter_at", TIMESTAMP),
        sa.Column("restore_at", TIMESTAMP),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("state IN ('open', 'claimed', 'decided')", name="cases_state_known"),
        schema=schema,
    )
    op.create_index("cases_queue", "cases", ["state", "created_at"], schema=schema)
    op.create_index("cases_open_key", "cases", ["open_key"], unique=True, schema=schema, postgresql_where=sa.text("state <> 'decided'"))
    op.create_index("cases_account", "cases", ["account_id"], schema=schema)
    op.create_index("cases_restore_due", "cases", ["restore_at"], schema=schema, postgresql_where=sa.text("counter_state = 'waiting'"))
    op.create_table(
        "complaints",
        sa.Column("complaint_id", sa.Uuid, primary_key=True),
        sa.Column("case_id", sa.Uuid, sa.ForeignKey(f"{schema}.cases.case_id"), nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("reporter_account_id", sa.Uuid),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("contact_address", sa.Text, nullable=False, server_default=""),
        sa.Column("copyright", postgresql.JSONB),
        sa.Column("receipt_hash", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("legal_action_at", TIMESTAMP),
        sa.Column("legal_action", sa.Text, nullable=False, server_default=""),
        schema=schema,
    )
    op.create_index("ix_moderation_complaints_case_id", "complaints", ["case_id"], schema=schema)
    op.create_index("ix_moderation_complaints_reporter_account_id", "complaints", ["reporter_account_id"], schema=schema)
    op.create_table(
        "strikes",
        sa.Column("case_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("withdrawn_at", TIMESTAMP),
        schema=schema,
    )
    op.create_index("ix_moderation_strikes_account_id", "strikes", ["account_id"], schema=schema)
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("account_id", sa.Uuid),
        sa.Column("case_id", sa.Uuid),
        sa.Column("target", sa.Text, nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        schema=schema,
    )
    op.create_index("ix_moderation_audit_log_account_id", "audit_log", ["account_id"], schema=schema)
    op.create_index("ix_moderation_audit_log_case_id", "audit_log", ["case_id"], schema=schema)
    # Append-only for everyone who connects, not only for the service's own code.
    op.execute(
        f"""
        CREATE FUNCTION {schema}.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the moderation audit log is append-only' USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON {schema}.audit_log "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.audit_log_append_only()"
    )
    op.execute(
        f"CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON {schema}.audit_log "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.audit_log_append_only()"
    )
    op.create_table(
        "blocklist",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("added_by", sa.Text, nullable=False),
        sa.Column("added_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_table(
        "holds",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("since", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_table(
        "exports",
        sa.Column("export_id", sa.Uuid, primary_key=True),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("bucket", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("manifest_key", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.Text, nullable=False),
        sa.Column("files", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        schema=schema,
    )
    op.create_index("ix_moderation_exports_account_id", "exports", ["account_id"], schema=schema)
    op.create_table(
        "counters",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("window_start", TIMESTAMP, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        schema=schema,
    )
    op.create_index("counters_window", "counters", ["window_start"], schema=schema)
    create_event_tables(schema)
    create_account_states_table(schema)
    index_account_states(schema)


def downgrade(schema: str) -> None:
    for table in ("account_states", "processed_events", "outbox", "counters", "exports", "holds", "blocklist", "audit_log", "strikes",
                  "complaints", "cases"):
        op.drop_table(table, schema=schema)
    op.execute(f"DROP FUNCTION {schema}.audit_log_append_only()")
