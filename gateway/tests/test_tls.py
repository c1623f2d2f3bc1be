"""The public port speaks TLS only (HTTP/2 and HTTP/1.1 by ALPN); clients verify it against the
system's roots plus CUMULO_CA, and plaintext is never chosen silently."""

import asyncio
import os
import pathlib
import socket
import ssl
import stat

import grpc
import pytest
from cryptography import x509

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.testing import unique_email
from cumulo_devstack.testing.cli import run_command
from cumulo_devstack.tls import ensure_dev_tls
from cumulo_gateway.envoy_config import ServerTls, render
from cumulo_platform.registry import SERVICES
from cumulo_sdk import Cumulo, CumuloRpcError
from cumulo_sdk.transport import Transport, TransportError, is_loopback

TERMS = (("x-cumulo-client-id", "cumulo-cli"),)


def _alpn(gateway: str, ca: str, protocols: list[str]) -> str | None:
    host, port = gateway.rsplit(":", 1)
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(protocols)
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        return tls.selected_alpn_protocol()


async def test_the_gateway_negotiates_http2_and_http1_over_tls(gateway):
    ca = os.environ["CUMULO_CA"]
    assert await asyncio.to_thread(_alpn, gateway, ca, ["h2", "http/1.1"]) == "h2"
    assert await asyncio.to_thread(_alpn, gateway, ca, ["http/1.1"]) == "http/1.1"


async def test_a_plaintext_grpc_client_is_refused_at_the_public_port(gateway, client):
    async with grpc.aio.insecure_channel(gateway) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await auth_pb2_grpc.AuthServiceStub(channel).GetTerms(auth_pb2.GetTermsRequest(), metadata=TERMS, timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # ... while the same call over TLS is served.
    assert await client.terms_version()


async def test_a_password_never_crosses_the_public_port_in_clear(gateway):
    """A login sent in plaintext does not reach a service: nothing but a TLS handshake is
    accepted on the port (the first bytes of a plaintext HTTP/2 preface end the connection)."""
    host, port = gateway.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 64)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(1024), 10)
    writer.close()
    assert b"HTTP" not in answer  # closed, or a TLS alert: never an HTTP answer


async def test_a_client_without_the_ca_is_told_the_certificate_is_not_trusted(gateway):
    # The reason, not GATEWAY_UNREACHABLE: said when the handshake failed, not at the deadline.
    async with Cumulo(gateway, transport=Transport(), connect_timeout=60) as stranger:
        with pytest.raises(CumuloRpcError) as caught:
            await stranger.terms_version()
    assert caught.value.reason == "GATEWAY_NOT_TRUSTED"
    assert "CUMULO_CA" in str(caught.value)


async def test_a_ca_that_did_not_sign_the_gateway_is_refused(gateway, tmp_path):
    other = ensure_dev_tls(tmp_path / "other")
    async with Cumulo(gateway, transport=Transport(ca=str(other.ca)), connect_timeout=30) as stranger:
        with pytest.raises(CumuloRpcError) as caught:
            await stranger.terms_version()
    assert caught.value.reason == "GATEWAY_NOT_TRUSTED"


async def test_plaintext_to_the_tls_gateway_says_to_drop_it(gateway):
    async with Cumulo(gateway, transport=Transport(plaintext=True), connect_timeout=30) as confused:
        with pytest.raises(CumuloRpcError) as caught:
            await confused.terms_version()
    assert caught.value.reason == "GATEWAY_TLS_MISMATCH"
    assert "--plaintext" in str(caught.value)


@pytest.mark.parametrize("target", ["cloud.example.com:443", "192.0.2.10:8080", "[2001:db8::1]:443"])
def test_plaintext_to_another_machine_is_refused_before_connecting(target):
    with pytest.raises(TransportError, match="only allowed to this machine"):
        Transport(plaintext=True).channel(target)


@pytest.mark.parametrize(
    ("target", "loopback"),
    [("127.0.0.1:8080", True), ("localhost:1", True), ("[::1]:2", True), ("127.9.9.9:3", True), ("10.0.0.1:4", False),
     ("example.com:443", False), ("unix:/tmp/x", False)],
)
def test_loopback_targets(target, loopback):
    assert is_loopback(target) is loopback


def test_a_missing_or_empty_ca_file_is_named(tmp_path):
    with pytest.raises(TransportError, match="cannot read"):
        Transport(ca=str(tmp_path / "nope.pem")).credentials()
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate")
    with pytest.raises(TransportError, match="no PEM certificate"):
        Transport(ca=str(empty)).credentials()


def test_cumulo_plaintext_takes_only_0_or_1():
    assert Transport.from_environ({"CUMULO_PLAINTEXT": "1"}).plaintext
    assert not Transport.from_environ({}).plaintext
    with pytest.raises(TransportError, match="CUMULO_PLAINTEXT"):
        Transport.from_environ({"CUMULO_PLAINTEXT": "yes"})


async def test_the_cli_names_a_ca_file_it_cannot_read(gateway, tmp_path):
    result = await run_command(
        "cumulo", "whoami", environ={"CUMULO_GATEWAY": gateway, "CUMULO_HOME": str(tmp_path), "CUMULO_CA": str(tmp_path / "missing.pem")}
    )
    assert result.returncode == 1
    assert "CUMULO_CA" in result.stderr and "missing.pem" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_cli_signs_up_over_tls_with_the_ca(gateway, tmp_path):
    email = unique_email()
    environ = {"CUMULO_GATEWAY": gateway, "CUMULO_HOME": str(tmp_path), "CUMULO_CA": os.environ["CUMULO_CA"]}
    result = await run_command(
        "cumulo", "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms",
        environ=environ, stdin="correct horse battery staple\n",
    )
    assert result.returncode == 0, result.stderr


def test_the_development_ca_is_kept_and_the_certificate_made_again_when_names_change(tmp_path):
    first = ensure_dev_tls(tmp_path / "tls")
    ca, cert = first.ca.read_bytes(), first.cert.read_bytes()
    again = ensure_dev_tls(tmp_path / "tls")
    assert again.ca.read_bytes() == ca and again.cert.read_bytes() == cert  # nothing to do
    widened = ensure_dev_tls(tmp_path / "tls", ["localhost", "127.0.0.1", "::1", "cumulo.test"])
    assert widened.ca.read_bytes() == ca  # clients that trust the CA keep working
    leaf = x509.load_pem_x509_certificate(widened.cert.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "cumulo.test" in names.get_values_for_type(x509.DNSName)
    for key in (tmp_path / "tls" / "ca.key", widened.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_public_listener_without_tls_is_refused():
    backends = {name: "127.0.0.1:3" for name in SERVICES}
    with pytest.raises(ValueError, match="without TLS"):
        render(listen_host="0.0.0.0", listen_port=1, admin_port=2, backends=backends, tls=None)
    config = render(
        listen_host="0.0.0.0", listen_port=1, admin_port=2, backends=backends, tls=ServerTls("/c/tls.crt", "/c/tls.key")
    )
    chain = config["static_resources"]["listeners"][0]["filter_chains"][0]
    context = chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert context["alpn_protocols"] == ["h2", "http/1.1"]
    assert pathlib.PurePath(context["tls_certificates"][0]["certificate_chain"]["filename"]).name == "tls.crt"
