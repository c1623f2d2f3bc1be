"""Verification keys: fetched as a set, and unknown key ids cannot turn into a flood of fetches."""

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cumulo_platform.tokens import KeyCache


def _raw_public() -> bytes:
    return Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


async def test_known_key_is_fetched_once_and_unknown_ids_do_not_refetch():
    fetches = []
    keys = {"k1": _raw_public()}

    async def fetch():
        fetches.append(1)
        return dict(keys)

    cache = KeyCache(fetch, min_refetch=3600)
    assert await cache.public_key("k1") is not None
    assert await cache.public_key("k1") is not None
    for forged in ("x1", "x2", "x3"):
        assert await cache.public_key(forged) is None
    assert len(fetches) == 1


async def test_a_new_key_is_found_after_the_refetch_interval():
    keys = {"k1": _raw_public()}

    async def fetch():
        return dict(keys)

    cache = KeyCache(fetch, min_refetch=0)
    assert await cache.public_key("k2") is None
    keys["k2"] = _raw_public()  # auth rotated its key
    assert await cache.public_key("k2") is not None
