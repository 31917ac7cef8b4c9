"""Typed errors of the AS2 message layer, each with its MDN disposition modifier.

Every error carries ``disposition``: the RFC 4130 §7.4.3 modifier a negative
MDN reports (``processed/error: <disposition>``). RFC 5402 adds
``decompression-failed``. This module is the one place they live: import them from here.

    As2CryptoError                      unexpected-processing-error
    ├── AuthenticationFailed            authentication-failed
    │   ├── SignatureInvalid            bad signature, malformed SignedData
    │   ├── UnknownSigner               signer not among the partner's certificates
    │   └── CertificateRejected         signer certificate expired / not yet valid / wrong KeyUsage
    ├── IntegrityCheckFailed            integrity-check-failed (signature valid, content digest differs)
    ├── DecryptionFailed                decryption-failed
    ├── InsufficientSecurity            insufficient-message-security (unsigned/unencrypted when required)
    └── UnexpectedProcessingError       unexpected-processing-error
        ├── MalformedMessage            MIME or ASN.1 structure unusable
        ├── UnsupportedAlgorithm        (also a ValueError) unknown digest / cipher name
        └── DecompressionFailed         decompression-failed (bad zlib data, over the size limit)
"""

from __future__ import annotations

from typing import ClassVar

from flows.domain.errors import RelaisError

__all__ = [
    "As2CryptoError",
    "AuthenticationFailed",
    "CertificateRejected",
    "DecompressionFailed",
    "DecryptionFailed",
    "InsufficientSecurity",
    "IntegrityCheckFailed",
    "MalformedMessage",
    "SignatureInvalid",
    "UnexpectedProcessingError",
    "UnknownSigner",
    "UnsupportedAlgorithm",
]


class As2CryptoError(RelaisError):
    """Base of the AS2 message errors; ``disposition`` is the MDN modifier to report."""

    disposition: ClassVar[str] = "unexpected-processing-error"


class AuthenticationFailed(As2CryptoError):
    """The signature cannot be trusted: invalid, unknown signer, unusable signer certificate."""

    disposition: ClassVar[str] = "authentication-failed"


class SignatureInvalid(AuthenticationFailed):
    """The signature does not verify with the signer's key, or the SignedData is malformed."""


class UnknownSigner(AuthenticationFailed):
    """The signer is none of the trusted (partner) certificates."""


class CertificateRejected(AuthenticationFailed):
    """The signer's certificate is expired, not yet valid or lacks digitalSignature."""


class IntegrityCheckFailed(As2CryptoError):
    """The signature is valid, but the content's digest is not the signed messageDigest."""

    disposition: ClassVar[str] = "integrity-check-failed"


class DecryptionFailed(As2CryptoError):
    """Not encrypted for our certificate, undecryptable, or tampered (GCM tag, padding)."""

    disposition: ClassVar[str] = "decryption-failed"


class InsufficientSecurity(As2CryptoError):
    """The partner must sign / encrypt and this message is not signed / encrypted."""

    disposition: ClassVar[str] = "insufficient-message-security"


class UnexpectedProcessingError(As2CryptoError):
    """Anything else that prevents processing."""

    disposition: ClassVar[str] = "unexpected-processing-error"


class MalformedMessage(UnexpectedProcessingError):
    """The MIME or ASN.1 structure cannot be used (no boundary, truncated DER, ...)."""


class UnsupportedAlgorithm(UnexpectedProcessingError, ValueError):
    """An algorithm name or identifier Relais does not implement."""


class DecompressionFailed(UnexpectedProcessingError):
    """RFC 3274 data that does not decompress, or would exceed the size limit (zip bomb)."""

    disposition: ClassVar[str] = "decompression-failed"
