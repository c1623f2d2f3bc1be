"""Refresh tokens are stored only as SHA-256 digests (a database leak gives no usable token),
and logins only as keyed hashes (HMAC-SHA-256 under auth's login-hash key, from configuration:
a database leak alone gives not even the phone numbers of deleted accounts, which an unkeyed
hash would, tried number by number)."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cumulo_platform.secrets import keyed_hash

REFRESH_TOKEN_PREFIX = "crt_"


def login_digest(key: bytes, login: str) -> bytes:
    return keyed_hash(key, login)


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
