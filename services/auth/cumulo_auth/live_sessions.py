"""The session-and-account row every authenticated call of auth needs (`Sessions.
require_live_session`: is the session alive, whose is it, may the account be used), kept in
memory per replica instead of read from the database on every call.

It cannot go stale for long, nor at all where it matters:
- a change this replica makes forgets what it touched as soon as it commits (`forget_account`,
  `forget_session`, called by every writer of accounts and sessions);
- every replica reads what changed since it last looked (accounts by `updated_at`, sessions by
  `revoked_at`, both indexed) every `REFRESH_EVERY` seconds and forgets those, re-reading a
  while back (a transaction may commit after a later one started; clocks of replicas differ
  a little), which is harmless;
- and before any of this, every replica's interceptor refuses the tokens of revoked sessions
  and cut-off accounts (cumulo_platform.revocations).
A row read while a change is being committed may be cached just before the change lands: the
next look at the tables forgets it. And whatever the clocks do (a change stamped by a replica
whose clock lags, a commit long after its stamp), no row is served from memory for longer than
`MAX_AGE`."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa

from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts, sessions
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork, Watermark
from cumulo_platform.logging import get_logger

log = get_logger(__name__)
REFRESH_EVERY = 0.25  # seconds between a replica's looks at what changed
MAX_ENTRIES = 100_000
MAX_AGE = 30.0  # seconds a row is served from memory at most


class LiveSessions:
    def __init__(self, db: Database, clock: Clock, *, max_entries: int = MAX_ENTRIES) -> None:
        self.db = db
        self.clock = clock
        self.max_entries = max_entries
        self._rows: OrderedDict[uuid.UUID, Any] = OrderedDict()  # session id -> row, least recently used first
        self._read_at: dict[uuid.UUID, float] = {}  # session id -> when its row was read (monotonic)
        self._sessions_of: dict[uuid.UUID, set[uuid.UUID]] = {}  # account id -> its cached sessions
        self._watermark = Watermark()
        self.reads = 0  # database reads made for calls (what the cache saves is the rest)

    async def row(self, session_id: uuid.UUID) -> Any | None:
        """The session's row joined with its account's, or None when there is no such session."""
        row = self._rows.get(session_id)
        if row is not None:
            if time.monotonic() - self._read_at[session_id] < MAX_AGE:
                self._rows.move_to_end(session_id)
                return row
            self.forget_session(session_id)
        self.reads += 1
        row = await account_table.session_account(self.db, session_id)
        if row is not None:
            self._keep(session_id, row)
        return row

    def _keep(self, session_id: uuid.UUID, row: Any) -> None:
        self.forget_session(session_id)  # (two calls may read the same session at once)
        if len(self._rows) >= self.max_entries:
            old_session, old_row = self._rows.popitem(last=False)
            self._read_at.pop(old_session, None)
            self._drop_index(old_row.account_id, old_session)
        self._rows[session_id] = row
        self._read_at[session_id] = time.monotonic()
        self._sessions_of.setdefault(row.account_id, set()).add(session_id)

    def _drop_index(self, account_id: uuid.UUID, session_id: uuid.UUID) -> None:
        held = self._sessions_of.get(account_id)
        if held is not None:
            held.discard(session_id)
            if not held:
                del self._sessions_of[account_id]

    def forget_account(self, account_id: uuid.UUID) -> None:
        for session_id in self._sessions_of.pop(account_id, set()):
            self._rows.pop(session_id, None)
            self._read_at.pop(session_id, None)

    def forget_session(self, session_id: uuid.UUID) -> None:
        row = self._rows.pop(session_id, None)
        self._read_at.pop(session_id, None)
        if row is not None:
            self._drop_index(row.account_id, session_id)

    def forget_after_commit(self, uow: UnitOfWork, account_id: uuid.UUID) -> None:
        """What a writer calls in its unit of work: the account's rows are forgotten now and
        again once the change is committed (a call in between may have cached the old row)."""
        self.forget_account(account_id)
        uow.after_commit(lambda: self.forget_account(account_id))

    async def refresh(self) -> int:
        """Forgets what changed in the tables since it was read (every replica): an account
        whose row is newer than the one kept, a session revoked since."""
        async with self.db.read() as conn:
            since, now = await self._watermark.window(conn)
            if since is None:  # nothing is kept from before the first look
                self._watermark.advance(now)
                return 0
            changed = (await conn.execute(sa.select(accounts.c.account_id, accounts.c.updated_at).where(accounts.c.updated_at > since))).all()
            revoked = (await conn.execute(sa.select(sessions.c.session_id).where(sessions.c.revoked_at > since))).scalars().all()
        forgotten = 0
        for account_id, updated_at in changed:
            held = self._sessions_of.get(account_id)
            if held and any(self._rows[s].updated_at != updated_at for s in held if s in self._rows):
                self.forget_account(account_id)
                forgotten += 1
        for session_id in revoked:
            row = self._rows.get(session_id)
            if row is not None and row.revoked_at is None:
                self.forget_session(session_id)
                forgotten += 1
        self._watermark.advance(now)
        return forgotten
