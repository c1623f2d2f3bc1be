"""The lifecycle schema. Only the lifecycle service reads or writes these tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cumulo_platform.account_states import account_states_table
from cumulo_platform.db import outbox_table, processed_events_table
from cumulo_platform.legal_holds import legal_holds_table
from cumulo_platform.revocations import revocations_table

SCHEMA = "lifecycle"
metadata = sa.MetaData(schema=SCHEMA)
TIMESTAMP = sa.DateTime(timezone=True)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    # Grows with every transition; carried by account.state_changed so late events lose.
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", TIMESTAMP),
    sa.Column("last_access_at", TIMESTAMP, nullable=False),
    sa.Column("freeze_at", TIMESTAMP),
    sa.Column("frozen_at", TIMESTAMP),
    sa.Column("delete_at", TIMESTAMP),
    sa.Column("reminders_done", sa.Integer, nullable=False, server_default="0"),
    # When the next thing falls due (a deletion: its delete_at, the sweeper adds the safety
    # margin); NULL when nothing is scheduled.
    sa.Column("next_due_at", TIMESTAMP),
    sa.Column("cancel_requested_at", TIMESTAMP),
    # What the waiting deletion is for: "cancellation" or "termination".
    sa.Column("cancel_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("deletion_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("deletion_started_at", TIMESTAMP),
    sa.Column("deleted_at", TIMESTAMP),
    sa.Column("email", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("locale", sa.Text, nullable=False, server_default="zh-CN"),
    # A minor's guardian, who gets the minor's notices too, until the minor comes of age.
    sa.Column("guardian_email", sa.Text),
    sa.Column("guardian_phone", sa.Text),
    sa.Column("guardian_until", TIMESTAMP),
    # Set when auth announced new contacts; cleared once auth was asked for them (accounts.py).
    sa.Column("contacts_wanted_at", TIMESTAMP),
    sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("state IN ('active', 'frozen', 'deleting', 'deleted')", name="accounts_state_known"),
    sa.Index("accounts_next_due", "next_due_at", postgresql_where=sa.text("next_due_at IS NOT NULL")),
    sa.Index("accounts_state", "state"),
    sa.Index("accounts_contacts_wanted", "contacts_wanted_at", postgresql_where=sa.text("contacts_wanted_at IS NOT NULL")),
    # A guardian's change of contacts finds the minors whose copies hold the old ones.
    sa.Index("accounts_guardian_email", "guardian_email", postgresql_where=sa.text("guardian_email IS NOT NULL")),
    sa.Index("accounts_guardian_phone", "guardian_phone", postgresql_where=sa.text("guardian_phone IS NOT NULL")),
)

# The settings the stored due times were last computed with, per scope (retiming.py).
schedule_settings = sa.Table(
    "schedule_settings",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("applied_at", TIMESTAMP, nullable=False),
)

# The links in notices (freeze, deletion reminders): SHA-256 of each token, valid while the
# account is frozen; a reactivation or the start of a deletion removes them all.
reactivation_links = sa.Table(
    "reactivation_links",
    metadata,
    sa.Column("token_hash", sa.LargeBinary, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "token_hash", name="reactivation_links_pkey"),
    # The notice's link carries its token alone.
    sa.Index("reactivation_links_token_hash", "token_hash", unique=True),
)

transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column("transition_id", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("from_state", sa.Text, nullable=False),
    sa.Column("to_state", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    # Who decided, for an operator's or a moderator's action (a legal hold); "" for the lifecycle's own.
    sa.Column("actor", sa.Text, nullable=False, server_default=""),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "transition_id", name="transitions_pkey"),
)

notices = sa.Table(
    "notices",
    metadata,
    sa.Column("notice_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    # Which occurrence: one notice per kind, occurrence and channel, however often asked.
    sa.Column("cycle", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),  # "email", "sms", or "none" (no contact)
    sa.Column("destination", sa.Text, nullable=False, server_default=""),
    sa.Column("locale", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    # Cleared once delivered or given up: it may carry a reactivation link.
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending, sent, undeliverable, cancelled (the account was deleted first)
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TIMESTAMP),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("sent_at", TIMESTAMP),
    sa.PrimaryKeyConstraint("account_id", "notice_id", name="notices_pkey"),
    sa.UniqueConstraint("account_id", "kind", "cycle", "channel", name="notices_once"),
    sa.Index("notices_pending", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
)

# Columns a schema before migration 0009 lacks: the rows every use case reads leave them out, so
# that replicas of a new release sweep on while the migration Job has not run yet (the notices
# read them by themselves once they are there: cumulo_lifecycle.notices).
GUARDIAN_COLUMNS = ("guardian_email", "guardian_phone", "guardian_until")
LEDGER_COLUMNS = tuple(c for c in accounts.c if c.name not in GUARDIAN_COLUMNS)

# What the operator tells every account (cumulo_lifecycle.announcements): a new version of the
# terms of service, a maintenance window. A job queues one notice per account and channel in
# batches by account id, `cursor` the last account queued (so a restart goes on from there).
announcements = sa.Table(
    "announcements",
    metadata,
    sa.Column("announcement_id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("starts_at", TIMESTAMP, nullable=False),
    sa.Column("ends_at", TIMESTAMP),
    sa.Column("message_en", sa.Text, nullable=False, server_default=""),
    sa.Column("message_zh", sa.Text, nullable=False, server_default=""),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("cursor", sa.Uuid),
    sa.Column("accounts_queued", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("queued_at", TIMESTAMP),
    sa.CheckConstraint("kind IN ('terms', 'maintenance')", name="announcements_kind_known"),
    sa.UniqueConstraint("kind", "reference", name="announcements_once"),
    sa.Index("announcements_unqueued", "created_at", postgresql_where=sa.text("queued_at IS NULL")),
)

# Deletions asked for a later time: a termination that leaves its owner a window to take their
# data out (account.status_changed with export_until). The sweeper starts them when due.
deferred_deletions = sa.Table(
    "deferred_deletions",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("due_at", TIMESTAMP, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Index("deferred_deletions_due", "due_at"),
)

purges = sa.Table(
    "purges",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("started_at", TIMESTAMP, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("next_retry_at", TIMESTAMP),
    sa.Column("completed_at", TIMESTAMP),
    sa.Index("purges_retry", "next_retry_at", postgresql_where=sa.text("completed_at IS NULL")),
)

purge_participants = sa.Table(
    "purge_participants",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("service", sa.Text, primary_key=True),
    sa.Column("requested_at", TIMESTAMP, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("completed_at", TIMESTAMP),
    sa.Column("items_deleted", sa.BigInteger, nullable=False, server_default="0"),
)

# What is kept of a deleted account, for audit: no contact, no content.
tombstones = sa.Table(
    "tombstones",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("created_at", TIMESTAMP),
    sa.Column("last_access_at", TIMESTAMP, nullable=False),
    sa.Column("frozen_at", TIMESTAMP),
    sa.Column("deletion_started_at", TIMESTAMP, nullable=False),
    sa.Column("deleted_at", TIMESTAMP, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("participants", postgresql.JSONB, nullable=False),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
account_states = account_states_table(metadata)
revocations = revocations_table(metadata)
# The legal holds: the holds use case (the authority) writes them, the sweeper asks them
# (cumulo_platform.legal_holds); declared here for the schema check.
legal_holds_table(metadata)
