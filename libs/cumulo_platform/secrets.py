"""A service's own secret keys, from configuration: never in the database, never in an image.

`CUMULO_SECRETS_DIR` names a folder holding one folder per service, each with that service's
key files (`<dir>/<service>/<name>.key`, at least 32 random bytes each), as a Kubernetes
Secret mounted at `/var/run/cumulo/secrets/<service>` has them. `make run` and the tests make
them under their own folders (`cumulo_devstack`); `python -m cumulo_devstack k8s-secrets`
prints new ones as Secrets for a cluster. A service whose key is missing does not start,
naming the variable and the file.

Auth's `signing-kek` key seals its token-signing keys in its table (AES-256-GCM), and
moderation's `evidence-kek` its evidence-signing keys, each bound to its key id and public
half: whoever reads or writes those tables (a copy of the database) can neither sign with a key
nor put in one of their own. Auth's
`login-hash` key makes the keyed hashes (HMAC-SHA-256) under which it remembers the
logins of deleted accounts and counts failed logins for unknown ones: a copy of the database
alone cannot be searched for phone numbers (an unkeyed hash of a phone number is found by
trying every number)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import pathlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cumulo_platform.settings import Env, SettingsError

VARIABLE = "CUMULO_SECRETS_DIR"
KUBERNETES_SECRETS_DIR = "/var/run/cumulo/secrets"
MIN_KEY_BYTES = 32
# Every secret key a service reads: (service, name).
KEYS = (("auth", "login-hash"), ("auth", "signing-kek"), ("moderation", "evidence-kek"))


def key_path(folder: pathlib.Path, service: str, name: str) -> pathlib.Path:
    return folder / service / f"{name}.key"


def load_key(env: Env, name: str) -> bytes:
    """The service's key `name`, read from `CUMULO_SECRETS_DIR/<service>/<name>.key`."""
    found = env.lookup("SECRETS_DIR")
    if found is None:
        raise SettingsError(f"{VARIABLE} must name the folder of secret keys ({env.service}'s {name} is <dir>/{env.service}/{name}.key)")
    variable, value = found
    path = key_path(pathlib.Path(value), env.service, name)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {env.service}/{name}.key ({exc.strerror})") from None
    if len(key) < MIN_KEY_BYTES:
        raise SettingsError(f"{variable}: {env.service}/{name}.key holds {len(key)} bytes; a key has at least {MIN_KEY_BYTES}")
    return key


_SEALED = b"kek1"  # what a sealed value starts with


class NotSealed(ValueError):
    """A stored value the key-encryption key does not open (another key, tampered, or never sealed)."""


def _aes_key(kek: bytes) -> bytes:
    """The AES-256 key of a key file: its 32 bytes, or a digest of all of a longer one (a key
    written as hex or base64 must not lose half of itself to truncation)."""
    return kek if len(kek) == 32 else hashlib.sha256(b"cumulo-kek\0" + kek).digest()


def seal(kek: bytes, label: str, secret: bytes) -> bytes:
    """`secret` encrypted under `kek` (AES-256-GCM), bound to `label` (a key id): sealed for
    one row, it does not open in another."""
    nonce = os.urandom(12)
    return _SEALED + nonce + AESGCM(_aes_key(kek)).encrypt(nonce, secret, label.encode())


def unseal(kek: bytes, label: str, stored: bytes, *, variable: str) -> bytes:
    """What `seal` sealed; NotSealed naming `variable` (the key file) when it does not open."""
    if not stored.startswith(_SEALED):
        raise NotSealed(f"{label} is not sealed under {variable}")
    nonce, sealed = stored[len(_SEALED) : len(_SEALED) + 12], stored[len(_SEALED) + 12 :]
    try:
        return AESGCM(_aes_key(kek)).decrypt(nonce, sealed, label.encode())
    except InvalidTag:
        raise NotSealed(f"{label} does not open with the key-encryption key {variable}") from None


def _signing_label(key_id: str, public_key: bytes) -> str:
    """What a signing key's private half is sealed to: its id and its public half, so that
    neither can be changed in its row (nor the sealed key moved to another row) without it
    failing to open."""
    return f"{key_id}:{public_key.hex()}"


def seal_signing_key(kek: bytes, key_id: str, public_key: bytes, private_key: bytes) -> bytes:
    """A raw Ed25519 private key sealed for its row (auth's token keys, moderation's evidence keys)."""
    return seal(kek, _signing_label(key_id, public_key), private_key)


@functools.lru_cache(maxsize=64)
def unseal_signing_key(kek: bytes, key_id: str, public_key: bytes, stored: bytes, *, variable: str) -> bytes:
    """The raw private key of a row, proven: it opens with `kek` for this id and public half,
    and its public half is the row's; NotSealed otherwise. Kept once opened (a row's values
    are its cache key), so a key is not decrypted again on every signature."""
    private_key = unseal(kek, _signing_label(key_id, public_key), stored, variable=variable)
    if Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) != public_key:
        raise NotSealed(f"signing key {key_id}: its public half is not its private key's")
    return private_key


def keyed_hash(key: bytes, text: str) -> bytes:
    """HMAC-SHA-256 of `text` under `key`."""
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def ensure_keys(folder: pathlib.Path) -> pathlib.Path:
    """Every service's keys under `folder` (made once, kept: a new login-hash key would forget
    the deleted accounts' logins): what `make run` and the tests name as CUMULO_SECRETS_DIR."""
    import secrets as random

    for service, name in KEYS:
        path = key_path(folder, service, name)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(random.token_bytes(MIN_KEY_BYTES))
    return folder
