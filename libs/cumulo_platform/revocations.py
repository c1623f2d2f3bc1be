"""Access tokens revoked before they expire: refused by every replica of every service.

An access token is verified locally (signature, expiry), so on its own it would keep working
for its whole lifetime after a logout, a revoked session, a reused refresh token, a password
change, a suspension or a change of roles. Auth announces each of these as a `tokens.revoked`
event; every service keeps the revocations that still matter (until the last token concerned
expires) in a table of its own schema and in memory, and the interceptor's account gate
refuses a token that is:

- of a revoked session (`session_ids`): `SESSION_REVOKED`, as auth itself says (a client signs
  out), or
- of the account, issued before an account-wide cut-off (`issued_before`, no sessions named:
  a suspension, a change of roles): `TOKEN_REVOKED` (a client refreshes: after a change of
  roles it gets a token with the roles as they are now; while suspended the refresh is refused).

Replicas: the service's durable consumer hands each event to one replica, which writes the
table and remembers it at once; every replica reads the table's recent changes every half
second. A revocation is therefore refused on the replica that applied it at once and on every
other within about a second of the event's arrival.

Tokens carry their issue time to the millisecond (the JWT's `iat`), and auth's clock gives
both it and the cut-off: a token issued before the change is refused, one issued after it (a
refresh once a suspension is lifted, a new login) works, even within the same second.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo.events.v1 import events_pb2
from cumulo_platform.consumer import EventConsumer
from cumulo_platform.db import Database, UnitOfWork, Watermark
from cumulo_platform.errors import Unauthenticated
from cumulo_platform.event_types import Event
from cumulo_platform.events import Nats
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.runtime import Job, periodic
from cumulo_platform.tokens import Principal

EVENT_TYPE = "tokens.revoked"
# The longest an access token lives (auth refuses a longer CUMULO_AUTH_ACCESS_TOKEN_TTL): a
# revocation is kept that long, then every token it concerns has expired anyway.
LONGEST_ACCESS_TOKEN = dt.timedelta(hours=1)
EVERY_SESSION = "*"  # the session key of an account-wide cut-off
REFRESH_EVERY = 0.5  # seconds between a replica's looks at what the others wrote


def revocations_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "revocations",
        metadata,
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("session_key", sa.Text, primary_key=True),  # a session id, or "*"
        sa.Column("issued_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Index(f"{metadata.schema}_revocations_updated_at", "updated_at"),
    )


def announce(
    uow: UnitOfWork, account_id: str, *, now: dt.datetime, reason: str, session_ids: list[str] | None = None,
    local: Revocations | None = None,
) -> None:
    """Auth's side: the account's tokens issued before `now` (or only those of `session_ids`)
    stop working everywhere, in the same unit of work as the change that voids them; with
    `local` (the announcing replica's own), there at once when the change commits, not only once
    the event has come back to it."""
    if local is not None:
        uow.after_commit(functools.partial(local.hold, account_id, session_ids or [EVERY_SESSION], now, now + LONGEST_ACCESS_TOKEN))
    uow.emit(
        EVENT_TYPE,
        events_pb2.TokensRevoked(
            account_id=account_id, session_ids=session_ids or [], issued_before=timestamp(now),
            expires_at=timestamp(now + LONGEST_ACCESS_TOKEN), reason=reason,
        ),
        account_id=account_id,
    )


class TokenRevoked(Unauthenticated):
    default_reason = "TOKEN_REVOKED"

    def __init__(self) -> None:
        super().__init__("this access token was revoked (the account changed); refresh it, or sign in again")


class SessionRevoked(Unauthenticated):
    """What auth itself answers for a revoked session's token, so that clients sign out alike."""

    default_reason = "SESSION_REVOKED"

    def __init__(self) -> None:
        super().__init__("this session has ended (signed out or revoked); sign in again")


class Revocations:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.table = revocations_table(db.metadata)
        # (account, session key) -> tokens issued before this instant (epoch seconds) are void
        self._cutoffs: dict[tuple[str, str], float] = {}
        self._expiry: dict[tuple[str, str], float] = {}
        self._watermark = Watermark()

    async def load(self) -> None:
        """Every revocation still in force (at start)."""
        self._watermark.reset()
        await self.refresh()

    async def refresh(self) -> int:
        """What other replicas wrote lately (cumulo_platform.db.Watermark); what has expired is
        forgotten."""
        async with self.db.read() as conn:
            since, now = await self._watermark.window(conn)
            changed = self.table.c.expires_at > now if since is None else self.table.c.updated_at > since
            rows = (await conn.execute(sa.select(self.table).where(changed))).all()
        if since is None:
            self._cutoffs, self._expiry = {}, {}
        for row in rows:
            self._remember(str(row.account_id), row.session_key, row.issued_before, row.expires_at)
        self._watermark.advance(now)
        self._forget_expired(now.timestamp())
        return len(rows)

    def hold(self, account_id: str, session_keys: list[str], issued_before: dt.datetime, expires_at: dt.datetime) -> None:
        """A cut-off this replica announced, held at once (`announce(local=...)`)."""
        for session_key in session_keys:
            self._remember(account_id, session_key, issued_before, expires_at)

    def _remember(self, account_id: str, session_key: str, issued_before: dt.datetime, expires_at: dt.datetime) -> None:
        key = (account_id, session_key)
        self._cutoffs[key] = max(self._cutoffs.get(key, 0.0), issued_before.timestamp())
        self._expiry[key] = max(self._expiry.get(key, 0.0), expires_at.timestamp())

    def _forget_expired(self, now: float) -> None:
        for key in [key for key, until in self._expiry.items() if until < now]:
            self._cutoffs.pop(key, None)
            self._expiry.pop(key, None)

    def revoked(self, principal: Principal) -> Unauthenticated | None:
        """Why the token is refused: its session ended, or the account's tokens from before a
        change were cut off; None when it is not."""
        if not self._cutoffs:
            return None
        session = self._cutoffs.get((principal.account_id, principal.session_id))
        if session is not None and principal.issued_at < session:
            return SessionRevoked()
        account = self._cutoffs.get((principal.account_id, EVERY_SESSION))
        if account is not None and principal.issued_at < account:
            return TokenRevoked()
        return None

    async def gate(self, principal: Principal) -> None:
        refused = self.revoked(principal)
        if refused is not None:
            raise refused

    async def apply(self, received: Event[events_pb2.TokensRevoked], uow: UnitOfWork) -> None:
        """The `tokens.revoked` handler: a later cut-off replaces an earlier one, never the
        other way round (events may come late or twice)."""
        event = received.message
        issued_before = event.issued_before.ToDatetime(dt.UTC)
        expires_at = event.expires_at.ToDatetime(dt.UTC)
        account = uuid.UUID(event.account_id)
        for session_key in list(event.session_ids) or [EVERY_SESSION]:
            insert = pg_insert(self.table).values(
                account_id=account, session_key=session_key, issued_before=issued_before, expires_at=expires_at,
                updated_at=sa.func.clock_timestamp(),
            )
            await uow.execute(
                insert.on_conflict_do_update(
                    index_elements=[self.table.c.account_id, self.table.c.session_key],
                    set_={
                        "issued_before": sa.func.greatest(self.table.c.issued_before, insert.excluded.issued_before),
                        "expires_at": sa.func.greatest(self.table.c.expires_at, insert.excluded.expires_at),
                        "updated_at": sa.func.clock_timestamp(),
                    },
                )
            )
            self._remember(event.account_id, session_key, issued_before, expires_at)

    async def prune(self) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.delete(self.table).where(self.table.c.expires_at < sa.func.now()))
            await uow.commit()

    def jobs(self, nats_client: Nats, service: str) -> list[Job]:
        """Run by every replica: the shared consumer (one replica per event), the refresh, and
        the clearing of what has expired."""
        consumer = EventConsumer(self.db, nats_client, durable=f"{service}-revocations", event_types=[EVENT_TYPE], handler=self.apply)
        return [consumer.run, periodic(self.refresh, every=REFRESH_EVERY), periodic(self.prune, every=3600)]
