"""The development certificate authority: what `make run` and the tests put under `<var>/tls/`
so that the gateway serves TLS from the first start, without an operator.

    ca.pem       the CA certificate: clients trust it (CUMULO_CA=var/tls/ca.pem)
    ca.key       its private key (0600), kept so that later certificates chain to the same CA
    tls.crt      the gateway's certificate (names as in a cert-manager Secret), then the CA's
    tls.key      its private key (0600)

The CA is made once and kept: a client that trusts it keeps working across restarts. The
server certificate is made again when it is missing, does not cover the names asked for, or
expires within 30 days. Keys are ECDSA P-256 (cheap handshakes on small machines).

`ensure_identities` makes the cluster's internal CA — a second one, which no client outside
trusts — and from it one identity per service, the gateway and the operator, in the layout
`cumulo_platform.identity` reads (`<dir>/<name>/ca.crt, tls.crt, tls.key`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import pathlib
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    ca: pathlib.Path
    cert: pathlib.Path
    key: pathlib.Path


def ensure_dev_tls(folder: pathlib.Path, names: Iterable[str] = DEFAULT_NAMES) -> TlsFiles:
    """The CA and a server certificate for `names` (host names and IP addresses) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = TlsFiles(folder / "ca.pem", folder / "tls.crt", folder / "tls.key")
    wanted = sorted(set(names))
    ca_key_path = folder / "ca.key"
    if not (files.ca.exists() and ca_key_path.exists()):
        _make_ca(files.ca, ca_key_path)
    if not _current(files.cert, wanted):
        ca_cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        _make_leaf(files, ca_cert, ca_key, wanted, usages=[ExtendedKeyUsageOID.SERVER_AUTH])
    return files


def identity_names() -> list[str]:
    """Everyone inside the cluster: every service, the gateway, the operator, and the NATS
    server (whose certificate its clients check)."""
    from cumulo_platform.bus_access import SERVER_IDENTITY
    from cumulo_platform.identity import GATEWAY, OPERATOR
    from cumulo_platform.registry import SERVICES

    return [*SERVICES, GATEWAY, OPERATOR, SERVER_IDENTITY]


def ensure_identities(folder: pathlib.Path, names: Iterable[str] | None = None) -> pathlib.Path:
    """The internal CA in `folder` (made once, kept) and an identity per name under
    `folder/<name>/` (made again when missing or expiring within 30 days): `folder`, what
    CUMULO_IDENTITY_DIR names."""
    from cumulo_platform.identity import CA_FILE, CERT_FILE, KEY_FILE

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_path, ca_key_path = folder / CA_FILE, folder / "ca.key"
    if not (ca_path.exists() and ca_key_path.exists()):
        _make_ca(ca_path, ca_key_path, "cumulo internal development CA")
    ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    for name in names if names is not None else identity_names():
        home = folder / name
        home.mkdir(exist_ok=True, mode=0o700)
        files = TlsFiles(home / CA_FILE, home / CERT_FILE, home / KEY_FILE)
        if _current(files.cert, [name]) and files.ca.exists() and files.ca.read_bytes() == ca_path.read_bytes():
            continue
        _make_leaf(files, ca_cert, ca_key, [name], usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
        _write_public(files.ca, ca_path.read_bytes())
    return folder


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: pathlib.Path, data: bytes) -> None:
    scratch = path.with_name(path.name + ".part")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    scratch.replace(path)


def _write_public(path: pathlib.Path, data: bytes) -> None:
    scratch = path.with_name(path.name + ".part")
    scratch.write_bytes(data)
    scratch.replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _make_ca(cert_path: pathlib.Path, key_path: pathlib.Path, common_name: str = "cumulo development CA") -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cumulo development"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _current(cert_path: pathlib.Path, names: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    try:
        covered = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(_general_name(name) in covered for name in names)


def _make_leaf(
    files: TlsFiles, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str], *, usages: list[x509.ObjectIdentifier]
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(files.key, _pem_key(key))
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    _write_public(files.cert, chain)
