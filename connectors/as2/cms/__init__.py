"""CMS (RFC 5652) for AS2: detached signatures, enveloped data, compressed data.

Built with `cryptography` where it has an API, with `pyasn1` /
`pyasn1-modules` (rfc5652, rfc3274, rfc5083, rfc5084, rfc4055) where it has
none:

==========================  ==================================================
operation                   implementation
==========================  ==================================================
sign, SHA-2                 ``cryptography`` ``PKCS7SignatureBuilder`` (detached, binary)
sign, SHA-1                 pyasn1 SignedData (the builder refuses SHA-1; legacy AS2 partners ask for it)
verify                      pyasn1 parsing + ``cryptography`` RSA (PKCS#1 v1.5, PSS) / ECDSA
encrypt, AES-128/256-CBC    ``cryptography`` ``PKCS7EnvelopeBuilder``
encrypt, AES-192-CBC, 3DES  pyasn1 EnvelopedData + ``cryptography`` ciphers
encrypt, AES-GCM            pyasn1 AuthEnvelopedData (RFC 5083 / 5084)
decrypt (all of the above)  pyasn1 parsing + ``cryptography`` (one path: RSA PKCS#1 v1.5 and OAEP key transport)
compress / decompress       pyasn1 CompressedData (RFC 3274) + ``zlib``
==========================  ==================================================

Signature checking (`verify`): the signer must be one of the *trusted*
certificates (matched by issuer + serial number or by subject key
identifier); the certificate embedded in the message is never trusted by
itself. The signature is checked over the DER encoding of the signed
attributes with the SET OF tag (RFC 5652 §5.4), first as re-encoded in DER
order, then in the order received (for senders that do not sort). Only then
is the messageDigest attribute compared with the digest of the content: a
valid signature over a different content is `IntegrityCheckFailed`, anything
else about the signature is `AuthenticationFailed` (`SignatureInvalid`,
`UnknownSigner`, `CertificateRejected`).

Digest names: both ``sha-256`` (RFC 5751 / RFC 4130 micalg) and ``sha256``
spellings are accepted; `normalise_digest` gives the ``sha-256`` form.

The implementation lives in one module per job; this module re-exports
their public names, so ``from connectors.as2 import cms`` / ``cms.xxx``
is the interface; its errors are `connectors.as2.errors`'s:

``cms_algorithms``  digest / cipher names, `mic`
``cms_asn1``        ASN.1 / BER helpers, `content_kind`
``cms_signed``      SignedData: `sign_detached`, `verify*`, `Verified`
``cms_enveloped``   (Auth)EnvelopedData: `encrypt`, `decrypt`
``cms_compressed``  CompressedData (RFC 3274): `compress`, `decompress`
"""

from __future__ import annotations

from connectors.as2.cms.algorithms import CIPHERS, DIGESTS, ContentKind, mic, normalise_cipher, normalise_digest
from connectors.as2.cms.asn1 import content_kind
from connectors.as2.cms.compressed import compress, decompress
from connectors.as2.cms.enveloped import decrypt, encrypt
from connectors.as2.cms.signed import Verified, sign_detached, verify, verify_attached, verify_detached

__all__ = [
    "CIPHERS",
    "DIGESTS",
    "Verified",
    "compress",
    "content_kind",
    "decompress",
    "decrypt",
    "encrypt",
    "mic",
    "normalise_cipher",
    "normalise_digest",
    "sign_detached",
    "verify",
    "verify_attached",
    "verify_detached",
]

# a name importable from here though not in __all__ (as before the split)
_ = ContentKind
