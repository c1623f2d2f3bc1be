"""Who is calling, inside the cluster: every service, the gateway and the operator's tools hold
an identity — a certificate from the cluster's internal CA whose name (common name and DNS
name) is theirs — and every call between them is mutual TLS. A service's port takes no
connection without such a certificate; which identity may call which method is
`cumulo_platform.trust`'s allow-list.

An identity is a folder in the layout of a Kubernetes TLS Secret that cert-manager fills:

    ca.crt    the internal CA: the only one whose certificates are trusted, either way
    tls.crt   this identity's certificate (then the chain to the CA, if any)
    tls.key   its private key

`CUMULO_IDENTITY_DIR` names the folder that holds one such folder per identity
(`<dir>/auth/`, `<dir>/gateway/`, `<dir>/operator/` ...): `make run` makes them under
var/identity/, Kubernetes mounts each pod's own Secret there.

Why mutual TLS and not signed service tokens: the identity is checked by the TLS handshake
before a byte of a request is read, the traffic between pods is encrypted as well, there is
nothing to replay, and per call it costs a lookup of what the handshake already proved."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import ssl
from collections.abc import Sequence
from typing import Any

import grpc

CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"
GATEWAY = "gateway"  # Envoy, in front of the public services
OPERATOR = "operator"  # cumulo-admin and the moderation console's operator commands


class IdentityError(ValueError):
    """An identity cannot be used: the message names the file and what is wrong with it."""


@dataclasses.dataclass(frozen=True)
class Identity:
    name: str
    ca: bytes = dataclasses.field(repr=False)
    cert: bytes = dataclasses.field(repr=False)
    key: bytes = dataclasses.field(repr=False)
    home: pathlib.Path | None = None  # the folder it was read from

    @classmethod
    def load(cls, folder: pathlib.Path | str, name: str) -> Identity:
        """The identity `name` from `<folder>/<name>/`."""
        if not str(folder):
            raise IdentityError(
                f"CUMULO_IDENTITY_DIR must name the folder of identities ({name}'s is <dir>/{name}/; make run makes them under var/identity/)"
            )
        home = pathlib.Path(folder) / name
        if not home.is_dir():
            raise IdentityError(f"CUMULO_IDENTITY_DIR: {folder} has no folder {name}/ with {name}'s identity")
        ca, cert, key = (_read(home / file) for file in (CA_FILE, CERT_FILE, KEY_FILE))
        if b"-----BEGIN CERTIFICATE-----" not in ca or b"-----BEGIN CERTIFICATE-----" not in cert:
            raise IdentityError(f"{home}: {CA_FILE} and {CERT_FILE} must hold PEM certificates")
        if b"PRIVATE KEY-----" not in key:
            raise IdentityError(f"{home / KEY_FILE}: not a PEM private key")
        return cls(name, ca, cert, key, home)

    def server_credentials(self) -> grpc.ServerCredentials:
        """A port that takes only peers with a certificate of the internal CA."""
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True)

    @functools.cached_property
    def _channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert)

    def channel(self, target: str, service: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        """A channel to the cumulo service `service` at `target`, as this identity. The server
        must prove it is `service` (its certificate's name), whatever address it has."""
        return grpc.aio.secure_channel(
            target, self._channel_credentials, options=[("grpc.ssl_target_name_override", service), *options]
        )

    def sync_channel(self, target: str, service: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
        """The same, for blocking code (start-up checks)."""
        return grpc.secure_channel(target, self._channel_credentials, options=[("grpc.ssl_target_name_override", service), *options])


    def ssl_context(self) -> ssl.SSLContext:
        """For clients of other protocols (NATS): this identity's certificate, the internal CA
        trusted alone."""
        assert self.home is not None, "an identity read from its folder"
        context = ssl.create_default_context(cadata=self.ca.decode())
        context.load_cert_chain(self.home / CERT_FILE, self.home / KEY_FILE)  # the ssl module reads files only
        return context


def caller(context: grpc.aio.ServicerContext) -> str | None:
    """The identity the peer proved in its handshake; None without one (a plaintext port)."""
    identities = context.peer_identities()
    if not identities:
        return None
    first = identities[0]
    return first.decode("ascii", "replace") if isinstance(first, bytes) else str(first)


def _read(path: pathlib.Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"{path}: cannot read it ({exc.strerror or exc})") from None
