"""Certificates and key pairs of AS2 stations.

AS2 stations sign and encrypt with RSA keys, so `KeyPair.key` is normally an
`rsa.RSAPrivateKey`; an elliptic-curve key is accepted for *signing* only
(CMS key transport, which AS2 encryption uses, needs RSA).

`problems` is the one place that decides whether a certificate may be used
now: validity dates, and KeyUsage when the extension is present
(``digitalSignature`` to sign, ``keyEncipherment`` to receive encrypted data).
Signature verification refuses a signer certificate with problems;
`expires_within` feeds the "expiring partner certificate" warnings.

Stations load their key pairs with `load_keypair` (the self-signed ones of the
tests and the benchmark are made by ``tests/support/as2_keys.py``).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from flows.domain.errors import ConfigError

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

__all__ = [
    "KeyPair",
    "PrivateKey",
    "expires_within",
    "load_cert",
    "load_key",
    "load_keypair",
    "problems",
    "write_pem",
]


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key (RSA; EC accepted for signing only)."""

    cert: x509.Certificate
    key: PrivateKey


def load_cert(path: Path) -> x509.Certificate:
    """The certificate in `path`, PEM or DER. Raises `ConfigError` when unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"certificate {path}: {e}") from e
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as e:
        raise ConfigError(f"certificate {path}: not a PEM or DER X.509 certificate ({e})") from e


def load_key(path: Path, password: bytes | None = None) -> PrivateKey:
    """The private key in `path` (PEM or DER, PKCS#8 or traditional; RSA or EC)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"private key {path}: {e}") from e
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"private key {path}: unreadable ({e})") from e
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigError(f"private key {path}: {type(key).__name__} is not an RSA or EC key")
    return key


def load_keypair(cert_path: Path, key_path: Path, password: bytes | None = None) -> KeyPair:
    """Certificate and private key, checked to belong together."""
    cert = load_cert(cert_path)
    key = load_key(key_path, password)
    if not _same_public_key(cert, key):
        raise ConfigError(f"private key {key_path} does not match certificate {cert_path}")
    return KeyPair(cert, key)


def _same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return cert.public_key().public_bytes(enc, fmt) == key.public_key().public_bytes(enc, fmt)


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


def problems(
    cert: x509.Certificate,
    *,
    purpose: Literal["signing", "encryption"],
    now: dt.datetime | None = None,
) -> list[str]:
    """Why `cert` must not be used for `purpose` at `now` (empty list: fine).

    Checks the validity period, the key type (encryption needs RSA key
    transport) and, when the KeyUsage extension is present, the bit the
    purpose needs. Chain building is not done: AS2 partners pin certificates.
    """
    when = _now(now)
    found: list[str] = []
    subject = cert.subject.rfc4514_string()
    if when < cert.not_valid_before_utc:
        found.append(f"certificate {subject} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M}Z")
    if when > cert.not_valid_after_utc:
        found.append(f"certificate {subject} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M}Z")
    public = cert.public_key()
    if purpose == "encryption" and not isinstance(public, rsa.RSAPublicKey):
        found.append(f"certificate {subject} has a {type(public).__name__}, encryption needs RSA")
    if purpose == "signing" and not isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        found.append(f"certificate {subject} has a {type(public).__name__}, signing needs RSA or EC")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None:
        if purpose == "signing" and not (usage.digital_signature or usage.content_commitment):
            found.append(f"certificate {subject}: KeyUsage lacks digitalSignature")
        if purpose == "encryption" and not usage.key_encipherment:
            found.append(f"certificate {subject}: KeyUsage lacks keyEncipherment")
    return found


def expires_within(cert: x509.Certificate, days: int = 30, now: dt.datetime | None = None) -> bool:
    """True when `cert` is expired or expires in the next `days` days."""
    return cert.not_valid_after_utc <= _now(now) + dt.timedelta(days=days)


def write_pem(kp: KeyPair, cert_path: Path, key_path: Path) -> None:
    """Write the certificate (PEM) and the unencrypted PKCS#8 key (PEM, mode 0600)."""
    Path(cert_path).write_bytes(kp.cert.public_bytes(serialization.Encoding.PEM))
    pem = kp.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(key_path, 0o600)
