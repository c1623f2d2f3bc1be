"""How the SDK reaches the gateway: TLS by default, trusting the system's roots plus an extra CA
(CUMULO_CA, a PEM file: `make run`'s var/tls/ca.pem); plaintext only when asked for explicitly
(--plaintext, CUMULO_PLAINTEXT=1) and only to this machine, so that a password or token never
leaves it in clear by mistake."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import os
import pathlib
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from cumulo_sdk.reach import host_and_port

LOOPBACK_NAMES = ("localhost",)


class TransportError(ValueError):
    """The connection settings cannot be used (a CA file missing, plaintext to another machine)."""


def is_loopback(target: str) -> bool:
    place = host_and_port(target)
    if place is None:
        return False
    host = place[0]
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.cache
def _system_roots() -> bytes:
    """The machine's trusted roots (Debian's ca-certificates bundle), or none found; read once
    per process, not per client."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            try:
                return pathlib.Path(candidate).read_bytes()
            except OSError:
                continue
    return b""


@dataclasses.dataclass(frozen=True)
class Transport:
    """`ca`: an extra PEM file of trusted CAs; `plaintext`: no TLS (loopback targets only)."""

    ca: str = ""
    plaintext: bool = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Transport:
        environ = os.environ if environ is None else environ
        plaintext = environ.get("CUMULO_PLAINTEXT", "")
        if plaintext not in ("", "0", "1"):
            raise TransportError(f"CUMULO_PLAINTEXT takes 1 or 0, not {plaintext!r}")
        return cls(ca=environ.get("CUMULO_CA", ""), plaintext=plaintext == "1")

    def credentials(self) -> grpc.ChannelCredentials:
        extra = b""
        if self.ca:
            try:
                extra = pathlib.Path(self.ca).read_bytes()
            except OSError as exc:
                raise TransportError(f"CUMULO_CA: cannot read {self.ca} ({exc.strerror or exc})") from None
            if b"-----BEGIN CERTIFICATE-----" not in extra:
                raise TransportError(f"CUMULO_CA: {self.ca} holds no PEM certificate")
        roots = b"\n".join(part for part in (_system_roots(), extra) if part)
        # None: grpc's own bundled roots, when the machine has none we can find.
        return grpc.ssl_channel_credentials(root_certificates=roots or None)

    def fetches_by_url(self) -> bool:
        """Downloads go by signed URL (https) when the server offers one; a plaintext setup streams."""
        return not self.plaintext

    def https_context(self) -> ssl.SSLContext:
        """For HTTPS requests (signed download URLs): the same trust as the gRPC channel."""
        context = ssl.create_default_context()
        if self.ca:
            context.load_verify_locations(cafile=self.ca)
        return context

    def _ssl_context(self) -> ssl.SSLContext:
        """What the channel offers in its handshake: the same trust, HTTP/2."""
        context = self.https_context()
        context.set_alpn_protocols(["h2"])
        return context

    async def handshake_problem(self, target: str, timeout: float = 3.0) -> tuple[str, str] | None:
        """Why a connection to `target` fails at the TLS step: (reason, words a person can act
        on); None when it does not (or the reason is elsewhere: the channel's own attempts tell)."""
        place = host_and_port(target)
        if place is None:
            return None
        host, port = place
        if self.plaintext:
            return await _speaks_tls(host, port, target, timeout)
        try:
            context = self._ssl_context()
        except (OSError, ssl.SSLError):
            return None  # credentials() names a bad CUMULO_CA first
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout)
        except ssl.SSLCertVerificationError as exc:
            hint = "is CUMULO_CA the gateway's CA (make run prints it: var/tls/ca.pem)?" if not self.ca else f"it is not signed by {self.ca}"
            return "GATEWAY_NOT_TRUSTED", f"the gateway at {target} has a certificate this machine does not trust ({exc.verify_message}); {hint}"
        except ssl.SSLError:
            hint = " (to a gateway on this machine without TLS: --plaintext or CUMULO_PLAINTEXT=1)" if is_loopback(target) else ""
            return "GATEWAY_TLS_MISMATCH", f"the gateway at {target} does not speak TLS{hint}"
        except (OSError, TimeoutError):
            return None
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        return None

    def channel(self, target: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        if self.plaintext:
            if not is_loopback(target):
                raise TransportError(
                    f"plaintext is only allowed to this machine (127.0.0.1, ::1, localhost), not to {target}; "
                    "drop --plaintext / CUMULO_PLAINTEXT to use TLS"
                )
            return grpc.aio.insecure_channel(target, options=list(options))
        return grpc.aio.secure_channel(target, self.credentials(), options=list(options))


async def _speaks_tls(host: str, port: int, target: str, timeout: float) -> tuple[str, str] | None:
    """What stops a plaintext connection: the other end wants TLS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only asking whether it speaks TLS at all; nothing is sent
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout)
    except (OSError, ssl.SSLError, TimeoutError):
        return None
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return "GATEWAY_TLS_MISMATCH", f"the gateway at {target} speaks TLS: drop --plaintext / CUMULO_PLAINTEXT (and set CUMULO_CA if its CA is not a system one)"
