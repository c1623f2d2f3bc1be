"""The auth schema. Only the auth service reads or writes these tables."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cumulo_platform.account_states import account_states_table
from cumulo_platform.db import outbox_table, processed_events_table
from cumulo_platform.revocations import revocations_table

SCHEMA = "auth"
metadata = sa.MetaData(schema=SCHEMA)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.Uuid, primary_key=True),
    sa.Column("email", sa.Text, unique=True),
    sa.Column("phone", sa.Text, unique=True),
    sa.Column("password_hash", sa.Text),
    sa.Column("birth_date", sa.Date, nullable=True),
    sa.Column("minor", sa.Boolean, nullable=False),
    sa.Column("guardian_account_id", sa.Uuid, sa.ForeignKey("accounts.account_id")),
    sa.Column("guardian_consent_at", sa.DateTime(timezone=True)),
    sa.Column("guardian_revoked_at", sa.DateTime(timezone=True)),
    sa.Column("terms_version", sa.Text, nullable=True),
    sa.Column("terms_accepted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("status_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("suspended_until", sa.DateTime(timezone=True)),
    # A terminated account whose decision lets its owner take their data out: until then they
    # may sign in, to the take-out only.
    sa.Column("export_until", sa.DateTime(timezone=True)),
    sa.Column("roles", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    sa.Column("locale", sa.Text, nullable=True, server_default="zh-CN"),
    # When the owner proved the contact theirs (a code sent to it); None: not (yet) verified.
    # Only a verified contact gets notices and finds the account.
    sa.Column("email_verified_at", sa.DateTime(timezone=True)),
    sa.Column("phone_verified_at", sa.DateTime(timezone=True)),
    # When two-step sign-in was turned on (cumulo_auth.two_step); None: off.
    sa.Column("two_step_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("status = 'deleted' OR email IS NOT NULL OR phone IS NOT NULL", name="accounts_has_contact"),
    sa.CheckConstraint("email IS NOT NULL OR email_verified_at IS NULL", name="accounts_email_verified_has_email"),
    sa.CheckConstraint("phone IS NOT NULL OR phone_verified_at IS NULL", name="accounts_phone_verified_has_phone"),
    sa.CheckConstraint(
        "status IN ('active', 'suspended', 'terminated', 'cancelled', 'deleted')", name="accounts_status_known"
    ),
    # What every replica looks at to forget the accounts it keeps in memory (live_sessions).
    sa.Index("accounts_updated_at", "updated_at"),
    # A guardian's minors (ListMinors, SetMinorPassword).
    sa.Index("accounts_guardian", "guardian_account_id", postgresql_where=sa.text("guardian_account_id IS NOT NULL")),
    # A deleted account's row is its tombstone: id, status and when, nothing personal.
    sa.CheckConstraint(
        "status = 'deleted' OR (birth_date IS NOT NULL AND terms_version IS NOT NULL AND terms_accepted_at IS NOT NULL"
        " AND created_at IS NOT NULL AND locale IS NOT NULL)",
        name="accounts_alive_have_details",
    ),
)

# The code last sent to a contact, one per account, channel and purpose ("verify": its owner
# proves it theirs; "reset": a forgotten password): stored as a keyed hash, good until
# expires_at and for a few wrong guesses; a change of the contact voids it. `sends` counts the
# codes sent since `window_started_at` (at most a few an hour).
contact_codes = sa.Table(
    "contact_codes",
    metadata,
    sa.Column("account_id", sa.Uuid, sa.ForeignKey("accounts.account_id"), primary_key=True),
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("purpose", sa.Text, primary_key=True),
    sa.Column("code_digest", sa.LargeBinary, nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("channel IN ('email', 'phone')", name="contact_codes_channel_known"),
    sa.CheckConstraint("purpose IN ('verify', 'reset')", name="contact_codes_purpose_known"),
)

# Every version of the terms of service an account accepted, when, and from which client app
# (by whom, when a guardian accepted for a minor): a history, not the latest alone.
terms_acceptances = sa.Table(
    "terms_acceptances",
    metadata,
    sa.Column("account_id", sa.Uuid, sa.ForeignKey("accounts.account_id"), primary_key=True),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("client_id", sa.Text, nullable=False, server_default=""),
    sa.Column("accepted_by", sa.Uuid, nullable=True),
)

# Two-step sign-in: the authenticator's secret (sealed with signing-kek, bound to the account),
# the last step whose code was used (a code is good once), and the recovery codes.
second_factors = sa.Table(
    "second_factors",
    metadata,
    sa.Column("account_id", sa.Uuid, sa.ForeignKey("accounts.account_id"), primary_key=True),
    sa.Column("secret_sealed", sa.LargeBinary, nullable=False),
    sa.Column("last_step", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    sa.Column("account_id", sa.Uuid, sa.ForeignKey("accounts.account_id"), primary_key=True),
    sa.Column("code_digest", sa.LargeBinary, primary_key=True),
    sa.Column("used_at", sa.DateTime(timezone=True)),
)

deleted_logins = sa.Table(
    "deleted_logins",
    metadata,
    sa.Column("login_digest", sa.LargeBinary, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_id", "login_digest", name="deleted_logins_pkey"),
    # Signing in looks a login up before any account is known (and a purge upserts by it).
    sa.Index("deleted_logins_login_digest", "login_digest", unique=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_id", sa.Uuid, nullable=False),
    sa.Column("account_id", sa.Uuid, sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("client_id", sa.Text, nullable=False),
    sa.Column("device_name", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("revoke_reason", sa.Text, nullable=False, server_default=""),
    # When the password was last entered in this session (login, ConfirmPassword).
    sa.Column("password_at", sa.DateTime(timezone=True)),
    # SHA-256 of the token in the new-session notice's link, which ends this session.
    sa.Column("revoke_token_hash", sa.LargeBinary),
    sa.PrimaryKeyConstraint("account_id", "session_id", name="sessions_pkey"),
    # A session is still found by its id alone: a refresh token's, a revocation by id, an
    # access token's (which names its account too, but the lookups predate that).
    sa.Index("sessions_session_id", "session_id", unique=True),
    sa.Index("sessions_revoked_at", "revoked_at", postgresql_where=sa.text("revoked_at IS NOT NULL")),
    sa.Index("sessions_revoke_token", "revoke_token_hash", unique=True, postgresql_where=sa.text("revoke_token_hash IS NOT NULL")),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    # SHA-256 of the token: a database leak gives no usable token.
    sa.Column("token_hash", sa.LargeBinary, nullable=False),
    sa.Column("account_id", sa.Uuid, nullable=False),
    sa.Column("session_id", sa.Uuid, nullable=False, index=True),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True)),
    sa.PrimaryKeyConstraint("account_id", "token_hash", name="refresh_tokens_pkey"),
    sa.ForeignKeyConstraint(
        ["account_id", "session_id"], ["sessions.account_id", "sessions.session_id"], name="refresh_tokens_session_fkey"
    ),
    # The client presents the token alone.
    sa.Index("refresh_tokens_token_hash", "token_hash", unique=True),
)

client_apps = sa.Table(
    "client_apps",
    metadata,
    sa.Column("client_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    # Sealed under the key-encryption key (cumulo_auth.adapters.signing).
    sa.Column("private_key", sa.LargeBinary, nullable=False),
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Announced from created_at, signing from here.
    sa.Column("signs_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("retired_at", sa.DateTime(timezone=True)),
)

login_throttle = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),  # "account_address", "account", "address" or "session"
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("blocked_until", sa.DateTime(timezone=True)),
    # Attempts being checked right now, and when they count as abandoned (a crashed replica).
    sa.Column("pending", sa.Integer, nullable=False, server_default="0"),
    sa.Column("pending_until", sa.DateTime(timezone=True)),
)

status_changes = sa.Table(
    "status_changes",
    metadata,
    sa.Column("change_id", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column("account_id", sa.Uuid, sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_id", "change_id", name="status_changes_pkey"),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
account_states = account_states_table(metadata)
revocations = revocations_table(metadata)
