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

from cumulo_platform.migrations import replace_primary_key

revision = "0017"
down_revision = "0016"


def upgrade(schema: str) -> None:
    op.execute(f"ALTER TABLE {schema}.refresh_tokens ADD COLUMN account_id uuid")
    op.execute(
        f"UPDATE {schema}.refresh_tokens r SET account_id = s.account_id "
        f"FROM {schema}.sessions s WHERE s.session_id = r.session_id"
    )
    op.execute(f"ALTER TABLE {schema}.refresh_tokens ALTER COLUMN account_id SET NOT NULL")
    # The foreign key rests on the sessions' primary key: it goes first, and comes back on
    # the new one.
    op.execute(f"ALTER TABLE {schema}.refresh_tokens DROP CONSTRAINT refresh_tokens_session_id_fkey")
    op.execute(f"CREATE UNIQUE INDEX sessions_session_id ON {schema}.sessions (session_id)")
    replace_primary_key(schema, "sessions", "account_id", "session_id")
    op.execute(f"DROP INDEX {schema}.ix_auth_sessions_account_id")  # the primary key's first column now
    op.execute(f"CREATE UNIQUE INDEX refresh_tokens_token_hash ON {schema}.refresh_tokens (token_hash)")
    replace_primary_key(schema, "refresh_tokens", "account_id", "token_hash")
    op.execute(
        f"ALTER TABLE {schema}.refresh_tokens ADD CONSTRAINT refresh_tokens_session_fkey "
        f"FOREIGN KEY (account_id, session_id) REFERENCES {schema}.sessions (account_id, session_id)"
    )

    replace_primary_key(schema, "status_changes", "account_id", "change_id")
    op.execute(f"DROP INDEX {schema}.ix_auth_status_changes_account_id")

    op.execute(f"CREATE UNIQUE INDEX deleted_logins_login_digest ON {schema}.deleted_logins (login_digest)")
    replace_primary_key(schema, "deleted_logins", "account_id", "login_digest")


def downgrade(schema: str) -> None:
    replace_primary_key(schema, "deleted_logins", "login_digest")
    op.execute(f"DROP INDEX {schema}.deleted_logins_login_digest")

    op.execute(f"CREATE INDEX ix_auth_status_changes_account_id ON {schema}.status_changes (account_id)")
    replace_primary_key(schema, "status_changes", "change_id")

    op.execute(f"ALTER TABLE {schema}.refresh_tokens DROP CONSTRAINT refresh_tokens_session_fkey")
    replace_primary_key(schema, "refresh_tokens", "token_hash")
    op.execute(f"DROP INDEX {schema}.refresh_tokens_token_hash")
    op.execute(f"CREATE INDEX ix_auth_sessions_account_id ON {schema}.sessions (account_id)")
    replace_primary_key(schema, "sessions", "session_id")
    op.execute(f"DROP INDEX {schema}.sessions_session_id")
    op.execute(
        f"ALTER TABLE {schema}.refresh_tokens ADD CONSTRAINT refresh_tokens_session_id_fkey "
        f"FOREIGN KEY (session_id) REFERENCES {schema}.sessions (session_id)"
    )
    op.execute(f"ALTER TABLE {schema}.refresh_tokens DROP COLUMN account_id")
