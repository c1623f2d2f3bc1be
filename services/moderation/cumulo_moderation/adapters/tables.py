"""The moderation schema. Only the moderation service reads or writes these tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cumulo_platform.account_states import account_states_table
from cumulo_platform.db import outbox_table, processed_events_table
from cumulo_platform.legal_holds import legal_holds_table
from cumulo_platform.revocations import revocations_table

SCHEMA = "moderation"
metadata = sa.MetaData(schema=SCHEMA)
TIMESTAMP = sa.DateTime(timezone=True)

# One case per target and reason to look at it; complaints about a target already in the
# queue join its open case (`open_key` is unique among cases not yet decided).
cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),  # complaint, blocklist_match, link_burst, repeat_infringer
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("target_kind", sa.Text, nullable=False),  # link, file, account
    sa.Column("account_id", sa.Uuid),  # the owner of the content, or the account complained about
    sa.Column("node_id", sa.Uuid),
    sa.Column("node_kind", sa.Text, nullable=False, server_default=""),  # "file" or "folder" (a folder's link)
    sa.Column("link_id", sa.Uuid),
    sa.Column("sha256", sa.Text, nullable=False, server_default=""),
    sa.Column("open_key", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # open, claimed, decided
    sa.Column("auto_blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("claimed_by", sa.Text, nullable=False, server_default=""),
    sa.Column("claimed_at", TIMESTAMP),
    sa.Column("decision", sa.Text, nullable=False, server_default=""),
    sa.Column("decided_by", sa.Text, nullable=False, server_default=""),
    sa.Column("decided_at", TIMESTAMP),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("suspended_until", TIMESTAMP),
    # Copyright takedowns: none, waiting (a counter-notice runs), restored, legal_action.
    sa.Column("counter_state", sa.Text, nullable=False, server_default="none"),
    sa.Column("counter_notice", postgresql.JSONB),
    sa.Column("counter_at", TIMESTAMP),
    sa.Column("restore_at", TIMESTAMP),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.CheckConstraint("state IN ('open', 'claimed', 'decided')", name="cases_state_known"),
    sa.Index("cases_queue", "state", "created_at"),
    sa.Index("cases_open_key", "open_key", unique=True, postgresql_where=sa.text("state <> 'decided'")),
    sa.Index("cases_account", "account_id"),
    sa.Index("cases_restore_due", "restore_at", postgresql_where=sa.text("counter_state = 'waiting'")),
)

complaints = sa.Table(
    "complaints",
    metadata,
    sa.Column("complaint_id", sa.Uuid, primary_key=True),
    sa.Column("case_id", sa.Uuid, sa.ForeignKey("cases.case_id"), nullable=False, index=True),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("reporter_account_id", sa.Uuid, index=True),
    sa.Column("client_id", sa.Text, nullable=False),
    sa.Column("contact_address", sa.Text, nullable=False, server_default=""),
    sa.Column("copyright", postgresql.JSONB),
    # SHA-256 of the receipt handed to the complainant.
    sa.Column("receipt_hash", sa.LargeBinary, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("legal_action_at", TIMESTAMP),
    sa.Column("legal_action", sa.Text, nullable=False, server_default=""),
)

# Upheld copyright takedowns per account (the repeat-infringer policy); a restore after a
# counter-notice withdraws one.
strikes = sa.Table(
    "strikes",
    metadata,
    sa.Column("case_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Column("withdrawn_at", TIMESTAMP),
    sa.PrimaryKeyConstraint("account_id", "case_id", name="strikes_pkey"),
    # One per case, withdrawn by the case's id alone (a restore after a counter-notice).
    sa.Index("strikes_case_id", "case_id", unique=True),
)

# Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE, and no RPC writes but INSERT.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("account_id", sa.Uuid, index=True),
    sa.Column("case_id", sa.Uuid, index=True),
    sa.Column("target", sa.Text, nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
)

blocklist = sa.Table(
    "blocklist",
    metadata,
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("added_by", sa.Text, nullable=False),
    sa.Column("added_at", TIMESTAMP, nullable=False),
)

# Effects another service carries out for moderation (block, unblock, delete, suspend,
# terminate; blocklist entries put into or taken out of blob), each on record from the unit of
# work that decides it until the unit of work that records it done: a row is a pending effect.
# One at a time per subject (the file, link or account acted on; a blocklist entry's digest),
# so that a block and an unblock of the same content never cross.
effects = sa.Table(
    "effects",
    metadata,
    sa.Column("effect_id", sa.Uuid, primary_key=True),
    sa.Column("purpose", sa.Text, nullable=False),  # decision, restore, blocklist, blocklist_entry
    sa.Column("case_id", sa.Uuid, unique=True),  # none for a blocklist match: its case opens once the file is blocked
    sa.Column("subject", sa.Text, nullable=False, unique=True),  # file:<id>, link:<id>, account:<id>, sha256:<first digest>
    # block, unblock, delete, suspend, terminate, block_content, unblock_content
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("account_id", sa.Uuid),  # none for blocklist entries: they act in every account
    sa.Column("node_id", sa.Uuid),
    sa.Column("link_id", sa.Uuid),
    sa.Column("sha256", sa.Text, nullable=False, server_default=""),
    sa.Column("decision", sa.Text, nullable=False, server_default=""),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),  # the purpose's own: a moderator's, a blocklist entry's
    sa.Column("call_reason", sa.Text, nullable=False),  # what the other service records
    sa.Column("suspended_until", TIMESTAMP),
    # A termination that leaves the owner a window to take their data out: its end.
    sa.Column("export_until", TIMESTAMP),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # Until then the effect is being carried out by whoever recorded or last took it up;
    # after it, `Effects.resume_due` takes it up (it was interrupted, or failed for a while).
    sa.Column("due_at", TIMESTAMP, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # Where the content was before a delete, once blob said (a Place); kept for a retry.
    sa.Column("place", postgresql.JSONB),
    # The digests of the blocklist entries a block_content or unblock_content puts into blob
    # (at most 1000); no other pending effect names any of them.
    sa.Column("digests", postgresql.ARRAY(sa.Text)),
    sa.Index("effects_due", "due_at"),
)

# Notices to the owner of content that wait for where the content is (its path, from blob,
# looked up outside any transaction): `OwnerNotices` sends each once it knows, or once it has
# waited long enough, then deletes it. The lifecycle delivers a reference once.
owner_notices = sa.Table(
    "owner_notices",
    metadata,
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # decided, auto_blocked, restored, legal_action
    sa.Column("args", postgresql.JSONB, nullable=False),  # what the message says besides the content's name
    sa.Column("about", postgresql.JSONB, nullable=False),  # the content: its kind, how it was reported, when
    sa.Column("node_id", sa.Uuid, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("due_at", TIMESTAMP, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("account_id", "reference", name="owner_notices_pkey"),
    # Still found by its reference alone: what the lifecycle delivers once.
    sa.Index("owner_notices_reference", "reference", unique=True),
    sa.Index("owner_notices_due", "due_at"),
)

# Moderation's own keys for signing evidence manifests (Ed25519, raw bytes). The newest
# generation signs; older ones stay to verify the bundles they signed. The first is made on
# first need: each replica inserts generation 1 if absent, then all read back the same row.
signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False, unique=True),
    sa.Column("algorithm", sa.Text, nullable=False),
    sa.Column("private_key", sa.LargeBinary, nullable=False),
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),  # SHA-256 of the raw public key, hex
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

exports = sa.Table(
    "exports",
    metadata,
    sa.Column("export_id", sa.Uuid, nullable=False),
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
    # The manifest's signature (also in the bundle, at `signature_key`); none on bundles
    # exported before manifests were signed.
    sa.Column("signature_key", sa.Text),
    sa.Column("signature", sa.LargeBinary),
    sa.Column("signing_key_id", sa.Text, sa.ForeignKey("signing_keys.key_id", name="exports_signing_key_id_fkey")),
    sa.Column("signing_key_fingerprint", sa.Text),
    # S3 Object Lock on every object of the bundle, if the store keeps it write-once.
    sa.Column("lock_mode", sa.Text, nullable=False, server_default=""),
    sa.Column("retain_until", TIMESTAMP),
    sa.PrimaryKeyConstraint("account_id", "export_id", name="exports_pkey"),
    # Still found by its id alone: an operator verifies a bundle by it.
    sa.Index("exports_export_id", "export_id", unique=True),
)

# Fixed-window counters: complaint intake per reporter and per network address, share-link
# creation per account.
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("window_start", TIMESTAMP, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("counters_window", "window_start"),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
account_states = account_states_table(metadata)
revocations = revocations_table(metadata)
# Declared for the schema check only: the code asks the platform's `Foundation.legal_holds()`.
legal_holds_table(metadata)
