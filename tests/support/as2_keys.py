"""Self-signed AS2 key pairs for the tests and the benchmark (bench/as2.py).

Real stations load theirs with `connectors.as2.certs.load_keypair`; nothing of Relais itself
makes certificates.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors.as2.certs import KeyPair

__all__ = ["make_test_keypair"]


def make_test_keypair(common_name: str, *, days: int = 365, not_before_days: int = 0) -> KeyPair:
    """A self-signed RSA-2048 key pair for tests and the benchmark.

    Valid from now + `not_before_days` (minus a minute of clock skew) to now +
    `days`: ``days=-1`` gives an expired certificate, ``not_before_days=2`` one
    not yet valid. KeyUsage is digitalSignature + keyEncipherment (critical);
    the certificate carries a SubjectKeyIdentifier.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=days)
    not_before = now + dt.timedelta(days=not_before_days) - dt.timedelta(minutes=1)
    if not_before >= not_after:
        not_before = not_after - dt.timedelta(days=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)
