"""The blob schema. Only the blob service reads or writes these tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cumulo_platform.account_states import account_states_table
from cumulo_platform.db import outbox_table, processed_events_table
from cumulo_platform.legal_holds import legal_holds_table
from cumulo_platform.revocations import revocations_table

SCHEMA = "blob"
metadata = sa.MetaData(schema=SCHEMA)
TIMESTAMP = sa.DateTime(timezone=True)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("node_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("parent_id", sa.Uuid),  # NULL: the root folder
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("sha256", sa.Text),
    sa.Column("content_type", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("modified_at", TIMESTAMP, nullable=False),
    sa.Column("trashed_at", TIMESTAMP),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("account_id", "node_id", name="nodes_pkey"),
    sa.ForeignKeyConstraint(["account_id", "parent_id"], ["nodes.account_id", "nodes.node_id"], name="nodes_parent_fkey"),
    # Still found by its id alone: a moderator's block, a link's or a share's file.
    sa.Index("nodes_node_id", "node_id", unique=True),
    sa.CheckConstraint("kind IN ('folder', 'file')", name="nodes_kind_known"),
    sa.CheckConstraint("kind = 'folder' OR sha256 IS NOT NULL", name="nodes_file_has_content"),
    # One live item of a name per folder; trashed ones do not count.
    sa.Index(
        "nodes_live_name",
        "account_id",
        "parent_id",
        "name",
        unique=True,
        postgresql_where=sa.text("trashed_at IS NULL"),
        postgresql_nulls_not_distinct=True,
    ),
    sa.Index("nodes_parent", "parent_id"),
    sa.Index("nodes_account_trash", "account_id", "trashed_at", postgresql_where=sa.text("trashed_at IS NOT NULL")),
    # The files of a content, in one account or in all (a block reaches every copy).
    sa.Index("nodes_content", "sha256", "account_id", postgresql_where=sa.text("sha256 IS NOT NULL")),
)

contents = sa.Table(
    "contents",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("refcount", sa.Integer, nullable=False),
    # Each stored copy has a key of its own, never reused: deleting an old copy can never
    # touch a newer upload of the same bytes.
    sa.Column("s3_key", sa.Text, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Index("contents_sha256", "sha256"),
)

# Blocks act on content, not on one file record: a moderator's block holds the content in its
# account, the blocklist in every account. Every file of blocked content has `nodes.blocked`
# set (so a download or a share looks at its own row only), and no upload, instant or not,
# brings the content back. Who changes them locks the `contents` rows of the content first,
# and a completing upload looks here after locking its own (cumulo_blob.content_blocks).
content_blocks = sa.Table(
    "content_blocks",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

# Moderation's blocklist as blob was told it (BlockContent): not any account's data.
blocklisted_contents = sa.Table(
    "blocklisted_contents",
    metadata,
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("upload_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("parent_id", sa.Uuid),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("s3_upload_id", sa.Text),
    sa.Column("committed_offset", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("part_etags", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
    # SHA-256 state after the committed bytes: a resumed upload goes on hashing from here.
    sa.Column("hash_state", sa.LargeBinary),
    sa.Column("state", sa.Text, nullable=False, server_default="open"),
    sa.Column("node_id", sa.Uuid),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "upload_id", name="uploads_pkey"),
    # Still found by its id alone: completion (an upsert by it), expiry, the writer's lease.
    sa.Index("uploads_upload_id", "upload_id", unique=True),
    sa.CheckConstraint("state IN ('open', 'completed', 'cancelled', 'expired', 'failed')", name="uploads_state_known"),
    sa.Index("uploads_open_expiry", "expires_at", postgresql_where=sa.text("state = 'open'")),
    # Open uploads of a content: a blocklist entry waits for those completing (content_blocks).
    sa.Index("uploads_open_sha256", "sha256", postgresql_where=sa.text("state = 'open'")),
)

# The one UploadChunks stream writing an upload: a lease it renews while it streams (judged by
# the database's clock), so that no stream keeps a database connection while it waits for its
# client (cumulo_blob.writer_lock).
upload_writers = sa.Table(
    "upload_writers",
    metadata,
    sa.Column("upload_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("writer_id", sa.Uuid, nullable=False),
    sa.Column("held_until", TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "upload_id", name="upload_writers_pkey"),
    # The lease is taken (an upsert) and checked by the upload's id alone.
    sa.Index("upload_writers_upload_id", "upload_id", unique=True),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("reserved", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("used >= 0 AND reserved >= 0", name="usage_not_negative"),
)

# S3 objects whose last reference went away: deleted right after the commit, and by a
# sweeper if the process died first.
doomed_objects = sa.Table(
    "doomed_objects",
    metadata,
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "key", name="doomed_objects_pkey"),
)

share_links = sa.Table(
    "share_links",
    metadata,
    sa.Column("link_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("node_id", sa.Uuid, nullable=False),
    # SHA-256 of the link's token: a database leak gives no working link.
    sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP),
    sa.Column("revoked_at", TIMESTAMP),
    sa.Column("revoke_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("failed_passwords", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", TIMESTAMP),
    sa.PrimaryKeyConstraint("account_id", "link_id", name="share_links_pkey"),
    sa.ForeignKeyConstraint(
        ["account_id", "node_id"], ["nodes.account_id", "nodes.node_id"], name="share_links_node_fkey", ondelete="CASCADE"
    ),
    # Still found by its id alone: a moderator's disconnection, a wrong password's lockout.
    sa.Index("share_links_link_id", "link_id", unique=True),
    sa.Index("share_links_account", "account_id", "created_at"),
    sa.Index("share_links_node", "node_id"),
)

user_shares = sa.Table(
    "user_shares",
    metadata,
    sa.Column("share_id", sa.Uuid, nullable=False),
    sa.Column("owner_id", sa.Uuid, nullable=False),  # the account: the file's owner
    sa.Column("node_id", sa.Uuid, nullable=False),
    sa.Column("recipient_id", sa.Uuid, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint("owner_id", "share_id", name="user_shares_pkey"),
    sa.ForeignKeyConstraint(
        ["owner_id", "node_id"], ["nodes.account_id", "nodes.node_id"], name="user_shares_node_fkey", ondelete="CASCADE"
    ),
    # Still found by its id alone: the recipient's view knows the recipient, not the owner.
    sa.Index("user_shares_share_id", "share_id", unique=True),
    sa.Index("user_shares_once", "owner_id", "node_id", "recipient_id", unique=True),
    sa.Index("user_shares_recipient", "recipient_id"),
)

# Plan prices are versioned, never edited: a purchase points at the version the user agreed to.
plan_prices = sa.Table(
    "plan_prices",
    metadata,
    sa.Column("plan_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("price_minor_units", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("period_days", sa.Integer, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # A new price applies from then; the plan's subscribers are told first (notified_at).
    sa.Column("applies_at", TIMESTAMP, nullable=False),
    sa.Column("notified_at", TIMESTAMP),
)

# A subscriber's consent to a plan's new price (§7.2): their renewals are at it from then on.
price_acceptances = sa.Table(
    "price_acceptances",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("plan_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("accepted_at", TIMESTAMP, nullable=False),
    sa.Column("client_id", sa.Text, nullable=False, server_default=""),
)

purchases = sa.Table(
    "purchases",
    metadata,
    sa.Column("purchase_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("plan_id", sa.Text, nullable=False),
    sa.Column("price_version", sa.Integer, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("price_minor_units", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("payment_reference", sa.Text, nullable=False, unique=True),
    sa.Column("starts_at", TIMESTAMP, nullable=False),
    sa.Column("ends_at", TIMESTAMP, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "purchase_id", name="purchases_pkey"),
    sa.ForeignKeyConstraint(["plan_id", "price_version"], ["plan_prices.plan_id", "plan_prices.version"]),
    sa.Index("purchases_account", "account_id", "ends_at"),
    # A plan's subscribers, told of its new price.
    sa.Index("purchases_plan", "plan_id", "ends_at"),
)

# Take-outs (cumulo_blob.takeout): one queued or running per account; the archives' keys,
# sizes and hashes once ready, until they expire.
exports = sa.Table(
    "exports",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("export_id", sa.Uuid, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("requested_at", TIMESTAMP, nullable=False),
    sa.Column("started_at", TIMESTAMP),
    sa.Column("finished_at", TIMESTAMP),
    sa.Column("expires_at", TIMESTAMP),
    # A running export's worker renews this; past it, another replica takes the export over.
    sa.Column("lease_until", TIMESTAMP),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("files_done", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("files_total", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes_written", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("archives", postgresql.JSONB, nullable=False, server_default="[]"),
    sa.Column("failure", sa.Text, nullable=False, server_default=""),
    sa.CheckConstraint("state IN ('queued', 'running', 'ready', 'failed', 'expired')", name="exports_state_known"),
    sa.Index("exports_one_at_a_time", "account_id", unique=True, postgresql_where=sa.text("state IN ('queued', 'running')")),
    sa.Index("exports_pending", "requested_at", postgresql_where=sa.text("state IN ('queued', 'running')")),
    sa.Index("exports_expiring", "expires_at", postgresql_where=sa.text("state = 'ready'")),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
account_states = account_states_table(metadata)
revocations = revocations_table(metadata)
# Held accounts (fed by account.hold_changed): nothing of theirs leaves storage.
legal_holds = legal_holds_table(metadata)
