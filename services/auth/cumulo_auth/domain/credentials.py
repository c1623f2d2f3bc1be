"""Refresh tokens and remembered logins are stored only as SHA-256 digests: a database leak
gives neither a usable token nor the contacts of deleted accounts."""

from __future__ import annotations

import base64
import hashlib
import secrets

REFRESH_TOKEN_PREFIX = "crt_"


def login_digest(login: str) -> bytes:
    return hashlib.sha256(login.encode()).digest()


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
