"""Access tokens: their claims and signature (written by auth, `access_claims` + `sign`), and
their verification, done locally by every service from a cached public key.

Tokens are EdDSA (Ed25519) JWTs with the key id in the header. Only EdDSA is accepted:
`alg: none` and every HMAC trick fail before any key is looked at.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.errors import FailedPrecondition, PermissionDenied, Unauthenticated, Unavailable
from cumulo_platform.remote import Remote

ISSUER = "cumulo-auth"
AUDIENCE = "cumulo"
ALGORITHM = "EdDSA"


def access_claims(
    *,
    account_id: str,
    session_id: str,
    client_id: str,
    minor: bool,
    roles: list[str],
    issued_at: dt.datetime,
    expires_at: dt.datetime,
    password_at: dt.datetime | None = None,
    scope: str = "",
) -> dict[str, Any]:
    """What an access token says, as `TokenVerifier` reads it back into a `Principal`. A
    `scope` (SCOPES) narrows what the token may call."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": account_id,
        "sid": session_id,
        "azp": client_id,
        "minor": minor,
        "roles": roles,
        # To the millisecond (a JWT NumericDate may have a fraction): a revocation cuts off
        # the tokens issued before it, not those of the same second after it.
        "iat": round(issued_at.timestamp(), 3),
        "exp": int(expires_at.timestamp()),
        "jti": secrets.token_urlsafe(12),
    }
    if password_at is not None:
        claims["pwd_at"] = int(password_at.timestamp())
    if scope:
        claims["scp"] = scope
    return claims


# Tokens of a narrowed scope, and the only methods they may call (every service's interceptor
# checks: cumulo_platform.interceptors). "takeout": a terminated account whose decision leaves
# its owner a window to take their data out before its deletion.
TAKEOUT_SCOPE = "takeout"
SCOPES: dict[str, frozenset[str]] = {
    TAKEOUT_SCOPE: frozenset({
        "/cumulo.takeout.v1.TakeoutService/StartExport",
        "/cumulo.takeout.v1.TakeoutService/GetExport",
        "/cumulo.takeout.v1.TakeoutService/ListExports",
        "/cumulo.auth.v1.AuthService/GetAccount",
        "/cumulo.auth.v1.AuthService/Logout",
        "/cumulo.lifecycle.v1.LifecycleService/GetAccountState",
    }),
}


def within_scope(principal: Principal, method: str) -> None:
    """Refuses a call a scoped token may not make (an unknown scope may make none)."""
    if principal.scope and method not in SCOPES.get(principal.scope, frozenset()):
        raise PermissionDenied(
            "this account has been terminated: only the take-out of its data is open until its deletion", reason="ACCOUNT_TERMINATED"
        )


def sign(claims: Mapping[str, Any], key_id: str, private_key: Ed25519PrivateKey) -> str:
    return jwt.encode(dict(claims), private_key, algorithm=ALGORITHM, headers={"kid": key_id})


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the verified content of an access token."""

    account_id: str
    session_id: str
    client_id: str
    minor: bool
    roles: tuple[str, ...]
    expires_at: float
    # When the password was last entered in the token's session (0: not known).
    password_at: float = 0.0
    # When the token was issued (its `iat`, to the millisecond): revocations cut off by it.
    issued_at: float = 0.0
    # A narrowed token's scope (SCOPES); "" for an account's full use.
    scope: str = ""


def require_recent_password(principal: Principal, *, now: dt.datetime, within: dt.timedelta, action: str) -> None:
    """Actions that undo protection (wiping or removing a device) want the password entered in
    the token's session within `within` (AuthService.ConfirmPassword, then a refreshed token)."""
    confirmed_for = now.timestamp() - principal.password_at
    if principal.password_at <= 0 or confirmed_for > within.total_seconds():
        raise FailedPrecondition(
            f"{action} needs your password confirmed within the last {int(within.total_seconds() // 60)} minutes "
            "(AuthService.ConfirmPassword)",
            reason="RECENT_PASSWORD_REQUIRED",
        )


class KeySource(Protocol):
    async def public_key(self, key_id: str) -> Ed25519PublicKey | None: ...


FetchKeys = Callable[[], Awaitable[dict[str, bytes]]]


class KeyCache:
    """Verification keys by key id, fetched as a whole set from their source.

    An unknown key id triggers at most one fetch of the whole set per `min_refetch` seconds;
    between fetches unknown ids are refused at once, so forged tokens with made-up key ids
    cost nothing but a dictionary look-up, never a call to auth or the database. A set older
    than `max_age` is fetched again in the background at the next look-up, so a rotation's new
    key (announced minutes before it signs) is known before its first token arrives, whatever
    a flood of made-up key ids did to the fetches meanwhile.
    """

    def __init__(self, fetch: FetchKeys, *, min_refetch: float = 30.0, max_age: float = 60.0) -> None:
        self._fetch = fetch
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._min_refetch = min_refetch
        self._max_age = max_age
        self._fetched_at = -1e9
        self._failed_at = -1e9
        self._lock = asyncio.Lock()
        self._renewal: asyncio.Task[None] | None = None

    def _renew_if_old(self) -> None:
        now = time.monotonic()
        if now - self._fetched_at > self._max_age and now - self._failed_at > 5.0 and (self._renewal is None or self._renewal.done()):
            # Shared by every call: in a context of its own, not in the call that noticed (its trace).
            self._renewal = asyncio.get_running_loop().create_task(self._renew(), context=contextvars.Context())

    async def _renew(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at <= self._max_age:
                return
            try:
                fetched = await self._fetch()
            except Exception:  # the current set serves on; the next look-up tries again
                self._failed_at = time.monotonic()
                return
            self._fetched_at = time.monotonic()
            self._keys = {kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in fetched.items()}

    async def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        key = self._keys.get(key_id)
        if key is not None:
            self._renew_if_old()
            return key
        async with self._lock:
            if key_id in self._keys:
                return self._keys[key_id]
            now = time.monotonic()
            if now - self._fetched_at < self._min_refetch:
                return None
            if now - self._failed_at < 1.0:
                raise Unavailable("token verification keys are briefly unavailable; retry")
            try:
                fetched = await self._fetch()
            except Exception:
                # A failed fetch proves nothing about the key id: retry soon, answer UNAVAILABLE.
                self._failed_at = now
                raise
            self._fetched_at = now
            self._keys = {kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in fetched.items()}
            return self._keys.get(key_id)


def remote_keys(auth: Remote[auth_pb2_grpc.AuthInternalServiceStub]) -> FetchKeys:
    """The key set from auth's internal API (what every service but auth uses)."""

    async def fetch() -> dict[str, bytes]:
        response = await auth.call(auth.stub.GetSigningKeys, auth_pb2.GetSigningKeysRequest())
        return {k.key_id: k.public_key for k in response.keys if k.algorithm == ALGORITHM}

    return fetch


class TokenVerifier:
    """Verifies access tokens; a token already verified is remembered until it expires, so a
    client's repeated calls cost a dictionary look-up instead of a signature check."""

    def __init__(
        self, keys: KeySource, *, clock: Clock | None = None, leeway: float = 5.0, cache_size: int = 50_000
    ) -> None:
        self._keys = keys
        self._clock = clock or SystemClock()
        self._leeway = leeway
        self._verified: dict[str, Principal] = {}
        self._cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        principal = self._verified.get(token)
        if principal is None:
            principal = await self._verify_signature(token)
            if len(self._verified) >= self._cache_size:
                self._evict()
            self._verified[token] = principal
        # Expiry against the injected clock, so tests can move time.
        if principal.expires_at + self._leeway < self._clock.now().timestamp():
            self._verified.pop(token, None)
            raise Unauthenticated("access token has expired; refresh it", reason="TOKEN_EXPIRED")
        return principal

    def _evict(self) -> None:
        now = self._clock.now().timestamp()
        self._verified = {t: p for t, p in self._verified.items() if p.expires_at + self._leeway >= now}
        if len(self._verified) >= self._cache_size:
            self._verified.clear()

    async def _verify_signature(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("access token is malformed", reason="TOKEN_INVALID") from None
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise Unauthenticated("access token is not signed by cumulo", reason="TOKEN_INVALID")
        key = await self._keys.public_key(header["kid"])
        if key is None:
            raise Unauthenticated("access token is signed by an unknown key", reason="TOKEN_INVALID")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                # exp is checked against the injected clock in verify(); iat/nbf add nothing once
                # the signature holds, and would compare against another clock.
                options={"require": ["exp", "iat", "sub", "sid"], "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            raise Unauthenticated("access token is invalid", reason="TOKEN_INVALID") from None
        return Principal(
            account_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            client_id=str(claims.get("azp", "")),
            minor=bool(claims.get("minor", False)),
            roles=tuple(claims.get("roles", ())),
            expires_at=float(claims["exp"]),
            password_at=float(claims.get("pwd_at", 0)),
            issued_at=float(claims["iat"]),
            scope=str(claims.get("scp", "")),
        )
