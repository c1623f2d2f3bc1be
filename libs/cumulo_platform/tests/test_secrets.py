"""Sealing under a key-encryption key: bound to its label, every byte of the key counts, and a
signing key proves its halves belong together."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from cumulo_platform.secrets import NotSealed, seal, seal_signing_key, unseal, unseal_signing_key


def test_a_sealed_value_opens_only_with_its_key_and_label() -> None:
    kek = os.urandom(32)
    stored = seal(kek, "row-1", b"secret")
    assert unseal(kek, "row-1", stored, variable="KEY") == b"secret"
    with pytest.raises(NotSealed):
        unseal(kek, "row-2", stored, variable="KEY")
    with pytest.raises(NotSealed):
        unseal(os.urandom(32), "row-1", stored, variable="KEY")
    with pytest.raises(NotSealed, match="not sealed"):
        unseal(kek, "row-1", b"plain", variable="KEY")


def test_every_byte_of_a_longer_key_counts() -> None:
    """A key file written as 64 hex characters: its second half must matter too."""
    first = os.urandom(32).hex().encode()
    second = first[:32] + os.urandom(16).hex().encode()
    stored = seal(first, "row", b"secret")
    assert unseal(first, "row", stored, variable="KEY") == b"secret"
    with pytest.raises(NotSealed):
        unseal(second, "row", stored, variable="KEY")


def _pair() -> tuple[bytes, bytes]:
    private = Ed25519PrivateKey.generate()
    return (
        private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
    )


def test_a_signing_key_opens_only_for_its_own_public_half() -> None:
    kek = os.urandom(32)
    private, public = _pair()
    stored = seal_signing_key(kek, "k1", public, private)
    assert unseal_signing_key(kek, "k1", public, stored, variable="KEY") == private
    _, other_public = _pair()
    with pytest.raises(NotSealed):  # the row's public half changed: the seal's label no longer fits
        unseal_signing_key(kek, "k1", other_public, stored, variable="KEY")
    # A private key sealed by someone with the key-encryption key, but under another key's public half.
    forged, _ = _pair()
    with pytest.raises(NotSealed, match="public half"):
        unseal_signing_key(kek, "k1", public, seal_signing_key(kek, "k1", public, forged), variable="KEY")
