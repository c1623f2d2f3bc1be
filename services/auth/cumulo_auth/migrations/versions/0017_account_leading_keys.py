"""Every per-account table leads with the account id (sharding later, keyed now): the primary
keys of sessions, status changes and deleted logins become (account_id, their own key), and
refresh tokens carry their session's account, filled from the sessions they belong to.

Where the code still finds a row by its own key alone, a unique index on that key stays: a
session by its id (a refresh token's session, a revocation by id), a refresh token by the token
the client presents, a deleted login by the login typed in. In a distributed setup each of
those would hold per shard only, until the lookup carries the account.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

from cumulo_platform.migrations import account_led_no_more, add_account_from, lead_with_account

revision = "0017"
down_revision = "0016"


def upgrade(schema: str) -> None:
    add_account_from(schema, "refresh_tokens", "sessions", "session_id")
    # The foreign key rests on the sessions' primary key: it goes first, and comes back on
    # the new one.
    op.execute(f"ALTER TABLE {schema}.refresh_tokens DROP CONSTRAINT refresh_tokens_session_id_fkey")
    lead_with_account(schema, "sessions", "session_id", unique="sessions_session_id", account_index="ix_auth_sessions_account_id")
    lead_with_account(schema, "refresh_tokens", "token_hash", unique="refresh_tokens_token_hash")
    op.execute(
        f"ALTER TABLE {schema}.refresh_tokens ADD CONSTRAINT refresh_tokens_session_fkey "
        f"FOREIGN KEY (account_id, session_id) REFERENCES {schema}.sessions (account_id, session_id)"
    )
    lead_with_account(schema, "status_changes", "change_id", account_index="ix_auth_status_changes_account_id")
    lead_with_account(schema, "deleted_logins", "login_digest", unique="deleted_logins_login_digest")


def downgrade(schema: str) -> None:
    account_led_no_more(schema, "deleted_logins", "login_digest", unique="deleted_logins_login_digest")
    account_led_no_more(schema, "status_changes", "change_id", account_index="ix_auth_status_changes_account_id")
    op.execute(f"ALTER TABLE {schema}.refresh_tokens DROP CONSTRAINT refresh_tokens_session_fkey")
    account_led_no_more(schema, "refresh_tokens", "token_hash", unique="refresh_tokens_token_hash")
    account_led_no_more(schema, "sessions", "session_id", unique="sessions_session_id", account_index="ix_auth_sessions_account_id")
    op.execute(
        f"ALTER TABLE {schema}.refresh_tokens ADD CONSTRAINT refresh_tokens_session_id_fkey "
        f"FOREIGN KEY (session_id) REFERENCES {schema}.sessions (session_id)"
    )
    op.execute(f"ALTER TABLE {schema}.refresh_tokens DROP COLUMN account_id")
