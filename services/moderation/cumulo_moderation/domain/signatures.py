"""Signatures on evidence manifests: Ed25519 over the manifest's bytes exactly as stored, by a
key of moderation's own. The signature document lies next to the manifest in the bundle and
names the key (its id and the SHA-256 of its raw public key), so that anyone holding the public
key can check a bundle offline, without cumulo. No I/O here."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
SIGNATURE_NAME = "manifest.sig.json"  # next to manifest.json


def new_private_key() -> bytes:
    """A fresh key, raw (the 32-byte seed)."""
    return Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def public_key_of(private_key: bytes) -> bytes:
    """The raw 32-byte public key of a raw private key."""
    return Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: bytes) -> str:
    """SHA-256 of the raw public key, lower-case hex: what an outside verifier pins."""
    return hashlib.sha256(public_key).hexdigest()


def key_id_for(public_key: bytes) -> str:
    """A key's id: short, and telling at a glance which fingerprint it belongs to."""
    return f"ed25519-{fingerprint(public_key)[:16]}"


def public_pem(public_key: bytes) -> str:
    """The public key as PEM (SubjectPublicKeyInfo), as openssl and most libraries read it."""
    key = Ed25519PublicKey.from_public_bytes(public_key)
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(private_key: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(private_key).sign(message)


def valid(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_document(*, key_id: str, public_key: bytes, manifest_key: str, manifest_sha256: str, signature: bytes) -> bytes:
    """The bundle's signature file: the signature (base64) over the manifest's bytes, the key
    that made it and its public half, for a verifier that pins the fingerprint."""
    return json.dumps(
        {
            "algorithm": ALGORITHM,
            "key_id": key_id,
            "public_key_sha256": fingerprint(public_key),
            "public_key_pem": public_pem(public_key),
            "signed": manifest_key,
            "manifest_sha256": manifest_sha256,
            "signature": base64.b64encode(signature).decode(),
        },
        indent=1,
        sort_keys=True,
    ).encode()


def read_signature_document(data: bytes) -> dict[str, Any] | None:
    """The document's fields, with `signature` as bytes; None if it is not one."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("algorithm") != ALGORITHM:
            return None
        for field in ("key_id", "public_key_sha256", "signature"):
            if not isinstance(document.get(field), str):
                return None
        document["signature"] = base64.b64decode(document["signature"], validate=True)
    except (ValueError, UnicodeDecodeError):
        return None
    return document
