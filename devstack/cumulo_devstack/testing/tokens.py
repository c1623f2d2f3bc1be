"""Access tokens auth never issued (the forgeries every service's tests try), what a genuine
one says, and auth's signing key that the forgeries imitate."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.testing.channels import open_channel
from cumulo_platform.tokens import access_claims, sign


def b64url(data: bytes) -> str:
    """Base64url without padding, as a JWT writes its parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict) -> str:
    """A JWT header or payload: compact JSON in base64url."""
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# The forgeries of the signature itself, which every service's tests try.
FORGED_SIGNATURES: list[str] = [
    "foreign-key-real-kid",  # signed with a key of the forger's own, under auth's key id
    "foreign-key-unknown-kid",  # the same under a key id auth never had
    "alg-none",  # unsigned, the header saying "none"
    "alg-none-with-real-signature",  # the genuine signature pasted under a header saying "none"
    "hs256-with-public-key",  # the classic confusion: auth's public key used as an HMAC secret
]
# Every kind forge_token makes; each test module tries those that suit it.
FORGERIES: list[str] = [
    *FORGED_SIGNATURES,
    "signature-stripped",  # the genuine token without its signature
    "expiry-extended",  # the genuine token with a later expiry written into it
    "tampered-claims",  # the genuine token's payload edited to name another (made-up) account
    "intruders-token-naming-the-holder",  # another account's genuine token edited to name the holder
    "refresh-token",  # the holder's refresh token where an access token belongs
    "not-a-jwt",
]


def forge_token(kind: str, *, genuine: str, signing_key: tuple[str, bytes], intruder_token: str = "", refresh_token: str = "") -> str:
    """A token of `kind` (one of FORGERIES) naming the holder of the access token `genuine`,
    that auth never issued. `signing_key` is auth's (key id, public key); `intruder_token`,
    another account's genuine access token, is wanted by "intruders-token-naming-the-holder"
    only, and the holder's `refresh_token` by "refresh-token" only."""
    kid, public_key = signing_key
    header, payload, signature = genuine.split(".")
    original = jwt.decode(genuine, options={"verify_signature": False})
    now = int(time.time())
    claims = {**original, "iat": now, "exp": now + 600}  # the holder's, with an expiry well in the future
    if kind == "foreign-key-real-kid":
        return sign(claims, kid, Ed25519PrivateKey.generate())
    if kind == "foreign-key-unknown-kid":
        return sign(claims, "k20260101-deadbeef", Ed25519PrivateKey.generate())
    if kind == "alg-none":
        return f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64json(claims)}."
    if kind == "alg-none-with-real-signature":
        return f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload}.{signature}"
    if kind == "hs256-with-public-key":
        signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64json(claims)}"
        return f"{signing_input}.{b64url(hmac.new(public_key, signing_input.encode(), hashlib.sha256).digest())}"
    if kind == "signature-stripped":
        return f"{header}.{payload}."
    if kind == "expiry-extended":
        return f"{header}.{b64json({**original, 'exp': original['exp'] + 86400})}.{signature}"
    if kind == "tampered-claims":
        return f"{header}.{b64json({**claims, 'sub': str(uuid.uuid4())})}.{signature}"
    if kind == "intruders-token-naming-the-holder":
        assert intruder_token, "intruders-token-naming-the-holder wants the intruder's genuine token"
        intruder_header, _, intruder_signature = intruder_token.split(".")
        intruder_claims = jwt.decode(intruder_token, options={"verify_signature": False})
        return f"{intruder_header}.{b64json({**intruder_claims, 'sub': original['sub']})}.{intruder_signature}"
    if kind == "refresh-token":
        assert refresh_token, "refresh-token wants the holder's refresh token"
        return refresh_token
    if kind == "not-a-jwt":
        return "a.b.c"
    raise AssertionError(f"unknown forgery {kind!r}")


def token_claims(token: str) -> dict[str, Any]:
    """What an access token says, unverified (its expiry, roles, pwd_at ...)."""
    return jwt.decode(token, options={"verify_signature": False})


def token_expiry(token: str) -> float:
    """When an access token expires, in seconds since the epoch."""
    return float(token_claims(token)["exp"])


def forged_access_token(signing_key: tuple[str, bytes]) -> str:
    """A well-formed access token for a made-up account that auth never issued: signed by a
    key of the forger's own under auth's real key id (`signing_key`), so a service gets as
    far as the signature check before it refuses it. Needs no account."""
    kid, _ = signing_key
    now = dt.datetime.now(dt.UTC)
    claims = access_claims(
        account_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()), client_id="cumulo-cli", minor=False,
        roles=["moderator"], issued_at=now, expires_at=now + dt.timedelta(minutes=10),
    )
    return sign(claims, kid, Ed25519PrivateKey.generate())


async def signing_key_of(auth_target: str) -> tuple[str, bytes]:
    """Auth's current (key id, public key), from AuthInternalService.GetSigningKeys: what the
    forgeries imitate. Tests take the root conftest's session fixture `signing_key`."""
    async with open_channel(auth_target, as_="blob") as channel:  # a service that verifies tokens
        response = await auth_pb2_grpc.AuthInternalServiceStub(channel).GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=10)
    assert response.keys, "auth has no signing key"
    return response.keys[0].key_id, response.keys[0].public_key
