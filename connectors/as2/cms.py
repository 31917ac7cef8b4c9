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
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sympadding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ, useful
from pyasn1_modules import rfc3274, rfc4055, rfc5083, rfc5084, rfc5280, rfc5652

from connectors.as2 import certs
from connectors.as2.certs import KeyPair
from connectors.as2.errors import (
    As2CryptoError,
    AuthenticationFailed,
    CertificateRejected,
    DecompressionFailed,
    DecryptionFailed,
    IntegrityCheckFailed,
    MalformedMessage,
    SignatureInvalid,
    UnexpectedProcessingError,
    UnknownSigner,
    UnsupportedAlgorithm,
)

__all__ = [
    "CIPHERS",
    "DIGESTS",
    "As2CryptoError",
    "AuthenticationFailed",
    "CertificateRejected",
    "DecompressionFailed",
    "DecryptionFailed",
    "IntegrityCheckFailed",
    "SignatureInvalid",
    "UnknownSigner",
    "UnsupportedAlgorithm",
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

ContentKind = Literal["enveloped", "auth-enveloped", "signed", "compressed", "data"]

# --------------------------------------------------------------------------- digests

DIGESTS: dict[str, Callable[..., Any]] = {
    "sha-1": hashlib.sha1,
    "sha1": hashlib.sha1,
    "sha-224": hashlib.sha224,
    "sha224": hashlib.sha224,
    "sha-256": hashlib.sha256,
    "sha256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha384": hashlib.sha384,
    "sha-512": hashlib.sha512,
    "sha512": hashlib.sha512,
}

# normalised name -> (OID, cryptography hash class)
_DIGEST_INFO: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "sha-1": ("1.3.14.3.2.26", hashes.SHA1),
    "sha-224": ("2.16.840.1.101.3.4.2.4", hashes.SHA224),
    "sha-256": ("2.16.840.1.101.3.4.2.1", hashes.SHA256),
    "sha-384": ("2.16.840.1.101.3.4.2.2", hashes.SHA384),
    "sha-512": ("2.16.840.1.101.3.4.2.3", hashes.SHA512),
}
_DIGEST_BY_OID = {oid: name for name, (oid, _cls) in _DIGEST_INFO.items()}

# signature algorithm OIDs -> (key type, digest name or None = the SignerInfo's digestAlgorithm)
_SIG_ALGS: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa", None),  # rsaEncryption
    "1.2.840.113549.1.1.5": ("rsa", "sha-1"),
    "1.2.840.113549.1.1.14": ("rsa", "sha-224"),
    "1.2.840.113549.1.1.11": ("rsa", "sha-256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha-384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha-512"),
    "1.2.840.113549.1.1.10": ("rsa-pss", None),
    "1.2.840.10045.2.1": ("ecdsa", None),  # id-ecPublicKey
    "1.2.840.10045.4.1": ("ecdsa", "sha-1"),
    "1.2.840.10045.4.3.1": ("ecdsa", "sha-224"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha-256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha-384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha-512"),
}
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_RSAES_OAEP = "1.2.840.113549.1.1.7"
_ECDSA_WITH = {"sha-1": "1.2.840.10045.4.1", "sha-224": "1.2.840.10045.4.3.1", "sha-256": "1.2.840.10045.4.3.2",
               "sha-384": "1.2.840.10045.4.3.3", "sha-512": "1.2.840.10045.4.3.4"}
_MGF1 = "1.2.840.113549.1.1.8"


def normalise_digest(name: str) -> str:
    """``"sha256"``, ``"SHA-256"``, ``"sha_256"`` -> ``"sha-256"``; `UnsupportedAlgorithm` otherwise."""
    key = name.strip().lower().replace("_", "-")
    if key in DIGESTS:
        return key if "-" in key else "sha-" + key[3:]
    raise UnsupportedAlgorithm(f"unsupported digest algorithm {name!r}")


def _hash_cls(digest: str) -> type[hashes.HashAlgorithm]:
    return _DIGEST_INFO[normalise_digest(digest)][1]


def mic(data: bytes, digest: str) -> str:
    """Base64 digest of `data` (the caller appends ``", <digest>"`` in the MDN)."""
    return base64.b64encode(DIGESTS[normalise_digest(digest)](data).digest()).decode("ascii")


# --------------------------------------------------------------------------- ciphers

# normalised name -> (OID, key length, kind)
CIPHERS: dict[str, tuple[str, int, str]] = {
    "aes128-cbc": ("2.16.840.1.101.3.4.1.2", 16, "cbc"),
    "aes192-cbc": ("2.16.840.1.101.3.4.1.22", 24, "cbc"),
    "aes256-cbc": ("2.16.840.1.101.3.4.1.42", 32, "cbc"),
    "des-ede3-cbc": ("1.2.840.113549.3.7", 24, "cbc"),
    "aes128-gcm": (str(rfc5084.id_aes128_GCM), 16, "gcm"),
    "aes192-gcm": (str(rfc5084.id_aes192_GCM), 24, "gcm"),
    "aes256-gcm": (str(rfc5084.id_aes256_GCM), 32, "gcm"),
}
_CIPHER_BY_OID = {oid: name for name, (oid, _n, _k) in CIPHERS.items()}
_CIPHER_ALIASES = {
    "3des": "des-ede3-cbc", "des3": "des-ede3-cbc", "tripledes": "des-ede3-cbc", "tripledes-cbc": "des-ede3-cbc",
    "des-ede3": "des-ede3-cbc", "tripledes-192-cbc": "des-ede3-cbc",
}


def normalise_cipher(name: str) -> str:
    """``"AES_256_CBC"``, ``"aes-256-cbc"``, ``"aes256"`` -> ``"aes256-cbc"``; ``"3des"`` -> ``"des-ede3-cbc"``."""
    key = name.strip().lower().replace("_", "-")
    key = _CIPHER_ALIASES.get(key, key)
    if key.startswith("aes-"):
        key = "aes" + key[4:]
    key = key.replace("aes128", "aes128-").replace("aes192", "aes192-").replace("aes256", "aes256-")
    key = key.replace("--", "-").rstrip("-")
    if key in ("aes128", "aes192", "aes256"):
        key += "-cbc"
    if key in CIPHERS:
        return key
    raise UnsupportedAlgorithm(f"unsupported content encryption algorithm {name!r}")


def _block_cipher(name: str, key: bytes) -> algorithms.AES | TripleDES:
    return TripleDES(key) if name == "des-ede3-cbc" else algorithms.AES(key)


# --------------------------------------------------------------------------- ASN.1 helpers


def _decode(der: bytes, spec: Any) -> Any:
    value, rest = ber_decoder.decode(der, asn1Spec=spec)
    if rest and bytes(rest).strip(b"\x00"):
        raise PyAsn1Error(f"{len(rest)} bytes after the {type(spec).__name__}")
    return value


def _any(value: Any) -> univ.Any:
    return univ.Any(der_encoder.encode(value))


def _alg(oid: str, params: Any | None = None) -> rfc5280.AlgorithmIdentifier:
    alg = rfc5280.AlgorithmIdentifier()
    alg["algorithm"] = univ.ObjectIdentifier(oid)
    if params is not None:
        alg["parameters"] = _any(params)
    return alg


def _content_info(content_type: univ.ObjectIdentifier, content: Any) -> bytes:
    ci = rfc5652.ContentInfo()
    ci["contentType"] = content_type
    ci["content"] = _any(content)
    return der_encoder.encode(ci)


def _issuer_and_serial(cert: x509.Certificate) -> rfc5652.IssuerAndSerialNumber:
    ias = rfc5652.IssuerAndSerialNumber()
    ias["issuer"] = _decode(cert.issuer.public_bytes(), rfc5280.Name())
    ias["serialNumber"] = cert.serial_number
    return ias


def _ski(cert: x509.Certificate) -> set[bytes]:
    """Subject key identifiers `cert` may be named by: its extension and the RFC 5280 method-1 value."""
    found = {x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest}
    try:
        found.add(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    except x509.ExtensionNotFound:
        pass
    return found


def _matches(ident: Any, cert: x509.Certificate, *, ias_name: str = "issuerAndSerialNumber",
             ski_name: str = "subjectKeyIdentifier") -> bool:
    """Whether a SignerIdentifier / RecipientIdentifier names `cert`."""
    kind = ident.getName()
    if kind == ias_name:
        ias = ident[ias_name]
        if int(ias["serialNumber"]) != cert.serial_number:
            return False
        return der_encoder.encode(ias["issuer"]) == cert.issuer.public_bytes()
    if kind == ski_name:
        return bytes(ident[ski_name]) in _ski(cert)
    return False


def _header(data: memoryview, pos: int) -> tuple[int, int | None]:
    """(start of contents, length or None for the indefinite form) of the BER TLV at `pos`."""
    if pos + 2 > len(data):
        raise MalformedMessage("truncated ASN.1 data")
    p = pos + 1
    if data[pos] & 0x1F == 0x1F:  # high tag number form
        while p < len(data) and data[p] & 0x80:
            p += 1
        p += 1
    if p >= len(data):
        raise MalformedMessage("truncated ASN.1 data")
    first = data[p]
    p += 1
    if first == 0x80:
        if not data[pos] & 0x20:
            raise MalformedMessage("indefinite length on a primitive ASN.1 value")
        return p, None
    if first & 0x80:
        n = first & 0x7F
        if n > 8 or p + n > len(data):
            raise MalformedMessage("bad ASN.1 length")
        length = int.from_bytes(data[p : p + n], "big")
        p += n
    else:
        length = first
    if p + length > len(data):
        raise MalformedMessage("truncated ASN.1 data")
    return p, length


def _end(data: memoryview, pos: int, depth: int = 0) -> int:
    """Offset just after the BER TLV at `pos` (definite or indefinite length)."""
    if depth > 64:
        raise MalformedMessage("ASN.1 nesting too deep")
    start, length = _header(data, pos)
    if length is not None:
        return start + length
    p = start
    while True:
        if p + 2 > len(data):
            raise MalformedMessage("truncated ASN.1 data (no end-of-contents)")
        if data[p] == 0 and data[p + 1] == 0:
            return p + 2
        p = _end(data, p, depth + 1)


def _open_content_info(der: bytes) -> tuple[str, bytes]:
    """(content type OID, encoding of the content) of a BER/DER ContentInfo.

    Done by hand because pyasn1 mis-decodes an ``ANY`` in the indefinite
    length form (``openssl cms -stream`` output); the content itself is then
    decoded by pyasn1 with its own specification.
    """
    data = memoryview(der)
    if not data or data[0] != 0x30:
        raise MalformedMessage("not a CMS ContentInfo (no SEQUENCE)")
    start, _length = _header(data, 0)
    if start >= len(data) or data[start] != 0x06:
        raise MalformedMessage("not a CMS ContentInfo (no content type)")
    oid_end = _end(data, start)
    oid, _ = ber_decoder.decode(bytes(data[start:oid_end]), asn1Spec=univ.ObjectIdentifier())
    if oid_end >= len(data) or data[oid_end] != 0xA0:
        raise MalformedMessage(f"CMS ContentInfo {oid} without content")
    inner, _inner_len = _header(data, oid_end)
    return str(oid), bytes(data[inner : _end(data, inner)])


def _peek_content_type(der: bytes) -> str:
    """The OID of a ContentInfo, read from its first bytes only (no full decode)."""
    data = memoryview(der)
    if not data or data[0] != 0x30:
        raise MalformedMessage("not a DER/BER CMS ContentInfo (no SEQUENCE)")
    start, _length = _header(data, 0)
    if start >= len(data) or data[start] != 0x06:
        raise MalformedMessage("not a CMS ContentInfo (no content type)")
    oid, _ = ber_decoder.decode(bytes(data[start : _end(data, start)]), asn1Spec=univ.ObjectIdentifier())
    return str(oid)


_KINDS: dict[str, ContentKind] = {
    str(rfc5652.id_envelopedData): "enveloped",
    str(rfc5083.id_ct_authEnvelopedData): "auth-enveloped",
    str(rfc5652.id_signedData): "signed",
    str(rfc3274.id_ct_compressedData): "compressed",
    str(rfc5652.id_data): "data",
}


def content_kind(der: bytes) -> ContentKind:
    """What a CMS ContentInfo holds; `MalformedMessage` for anything else."""
    oid = _peek_content_type(der)
    try:
        return _KINDS[oid]
    except KeyError:
        raise MalformedMessage(f"unsupported CMS content type {oid}") from None


# --------------------------------------------------------------------------- signing


def sign_detached(data: bytes, kp: KeyPair, digest: str = "sha-256") -> bytes:
    """DER ContentInfo(SignedData) signing `data` detached, as is (binary: no canonicalisation).

    Signed attributes: contentType (id-data), signingTime, messageDigest (and
    S/MIME capabilities with the SHA-2 builder); the signer certificate is
    included. RSA keys sign with PKCS#1 v1.5, EC keys with ECDSA.
    """
    name = normalise_digest(digest)
    if name != "sha-1":
        builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(kp.cert, kp.key, _hash_cls(name)())
        return builder.sign(
            serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
        )
    return _sign_pyasn1(data, kp, name)


def _sign_pyasn1(data: bytes, kp: KeyPair, name: str) -> bytes:
    oid, hash_cls = _DIGEST_INFO[name]
    digest_value = DIGESTS[name](data).digest()

    def attribute(attr_type: univ.ObjectIdentifier, value: Any) -> rfc5652.Attribute:
        attr = rfc5652.Attribute()
        attr["attrType"] = attr_type
        attr["attrValues"].append(_any(value))
        return attr

    now = dt.datetime.now(dt.UTC)
    signing_time = rfc5280.Time()
    signing_time["utcTime"] = useful.UTCTime(now.strftime("%y%m%d%H%M%SZ"))
    attrs = [
        attribute(rfc5652.id_contentType, rfc5652.id_data),
        attribute(rfc5652.id_signingTime, signing_time),
        attribute(rfc5652.id_messageDigest, univ.OctetString(digest_value)),
    ]
    to_sign = rfc5652.SignedAttributes()
    to_sign.extend(attrs)
    signed_bytes = der_encoder.encode(to_sign)
    if isinstance(kp.key, rsa.RSAPrivateKey):
        signature = kp.key.sign(signed_bytes, padding.PKCS1v15(), hash_cls())
        sig_alg = _alg(_RSA_ENCRYPTION, univ.Null(""))
    else:
        signature = kp.key.sign(signed_bytes, ec.ECDSA(hash_cls()))
        sig_alg = _alg(_ECDSA_WITH[name])

    si = rfc5652.SignerInfo()
    si["version"] = 1
    si["sid"]["issuerAndSerialNumber"] = _issuer_and_serial(kp.cert)
    si["digestAlgorithm"] = _alg(oid)
    tagged = si.componentType["signedAttrs"].asn1Object.clone()
    tagged.extend(attrs)
    si["signedAttrs"] = tagged
    si["signatureAlgorithm"] = sig_alg
    si["signature"] = signature

    sd = rfc5652.SignedData()
    sd["version"] = 1
    sd["digestAlgorithms"].append(_alg(oid))
    sd["encapContentInfo"]["eContentType"] = rfc5652.id_data
    cert_choice = rfc5652.CertificateChoices()
    cert_choice["certificate"] = _decode(kp.cert.public_bytes(serialization.Encoding.DER), rfc5280.Certificate())
    certificates = sd.componentType["certificates"].asn1Object.clone()
    certificates.append(cert_choice)
    sd["certificates"] = certificates
    sd["signerInfos"].append(si)
    return _content_info(rfc5652.id_signedData, sd)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Verified:
    """A verified signature: the trusted certificate that signed, and its digest (``sha-256`` form)."""

    signer: x509.Certificate
    digest: str


def verify_detached(
    data: bytes,
    signature_der: bytes,
    trusted: Sequence[x509.Certificate],
    *,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """The trusted certificate whose detached signature `signature_der` covers `data`.

    Raises `UnknownSigner`, `SignatureInvalid`, `CertificateRejected` (all
    `AuthenticationFailed`) or `IntegrityCheckFailed` (valid signature,
    different content).
    """
    return verify(data, signature_der, trusted, now=now).signer


def verify_attached(
    der: bytes, trusted: Sequence[x509.Certificate], *, now: dt.datetime | None = None
) -> tuple[bytes, Verified]:
    """The content of an opaque (attached) SignedData, and who signed it."""
    sd = _signed_data(der)
    econtent = sd["encapContentInfo"]["eContent"]
    if not econtent.isValue:
        raise SignatureInvalid("SignedData has no encapsulated content")
    content = bytes(econtent)
    return content, _verify_signed_data(sd, content, trusted, now)


def verify(
    data: bytes,
    signature_der: bytes,
    trusted: Sequence[x509.Certificate],
    *,
    now: dt.datetime | None = None,
) -> Verified:
    """Like `verify_detached`, also returning the digest algorithm the signer used."""
    return _verify_signed_data(_signed_data(signature_der), data, trusted, now)


def _signed_data(der: bytes) -> Any:
    try:
        oid, content = _open_content_info(der)
        if oid != str(rfc5652.id_signedData):
            raise SignatureInvalid(f"not a SignedData but {oid}")
        return _decode(content, rfc5652.SignedData())
    except (PyAsn1Error, MalformedMessage) as e:
        raise SignatureInvalid(f"malformed CMS signature: {e}") from e


def _embedded_subjects(sd: Any) -> list[str]:
    names: list[str] = []
    if sd["certificates"].isValue:
        for choice in sd["certificates"]:
            if choice.getName() == "certificate":
                try:
                    cert = x509.load_der_x509_certificate(der_encoder.encode(choice["certificate"]))
                    names.append(cert.subject.rfc4514_string())
                except ValueError:
                    continue
    return names


def _signed_attr_encodings(attrs: Any) -> list[bytes]:
    """The bytes a signature over signed attributes may cover: DER (sorted), then received order."""
    plain = rfc5652.SignedAttributes()
    plain.extend(list(attrs))
    sorted_der = der_encoder.encode(plain)
    body = b"".join(der_encoder.encode(a) for a in attrs)
    received = der_encoder.encode(univ.OctetString(body))  # borrow a DER length encoding
    header_len = len(received) - len(body)
    in_order = b"\x31" + received[1:header_len] + body
    return [sorted_der] if in_order == sorted_der else [sorted_der, in_order]


def _check_signature(
    public: Any, sig_alg: Any, digest_name: str, signature: bytes, candidates: list[bytes]
) -> bool:
    oid = str(sig_alg["algorithm"])
    if oid not in _SIG_ALGS:
        raise SignatureInvalid(f"unsupported signature algorithm {oid}")
    key_type, sig_digest = _SIG_ALGS[oid]
    hash_cls = _hash_cls(sig_digest or digest_name)
    if key_type == "rsa-pss":
        params = rfc4055.RSASSA_PSS_params()
        if sig_alg["parameters"].isValue:
            params = _decode(bytes(sig_alg["parameters"]), rfc4055.RSASSA_PSS_params())
        pss_hash = hashes.SHA1
        if params["hashAlgorithm"].isValue:
            pss_hash = _hash_cls(_DIGEST_BY_OID.get(str(params["hashAlgorithm"]["algorithm"]), "?"))
        mgf_hash = pss_hash
        if params["maskGenAlgorithm"].isValue:
            mga = params["maskGenAlgorithm"]
            if str(mga["algorithm"]) != _MGF1:
                raise SignatureInvalid("RSASSA-PSS with a mask generation function other than MGF1")
            inner = _decode(bytes(mga["parameters"]), rfc5280.AlgorithmIdentifier())
            mgf_hash = _hash_cls(_DIGEST_BY_OID.get(str(inner["algorithm"]), "?"))
        salt = int(params["saltLength"]) if params["saltLength"].isValue else 20
        scheme: Any = padding.PSS(mgf=padding.MGF1(mgf_hash()), salt_length=salt)
        hash_cls = pss_hash
    for candidate in candidates:
        try:
            if key_type in ("rsa", "rsa-pss"):
                if not isinstance(public, rsa.RSAPublicKey):
                    raise SignatureInvalid("RSA signature but the certificate has no RSA key")
                pad = scheme if key_type == "rsa-pss" else padding.PKCS1v15()
                public.verify(signature, candidate, pad, hash_cls())
            else:
                if not isinstance(public, ec.EllipticCurvePublicKey):
                    raise SignatureInvalid("ECDSA signature but the certificate has no EC key")
                public.verify(signature, candidate, ec.ECDSA(hash_cls()))
            return True
        except InvalidSignature:
            continue
    return False


def _attr_values(attrs: Any, oid: univ.ObjectIdentifier) -> list[bytes]:
    for attr in attrs:
        if attr["attrType"] == oid:
            return [bytes(v) for v in attr["attrValues"]]
    return []


def _verify_signed_data(
    sd: Any, data: bytes, trusted: Sequence[x509.Certificate], now: dt.datetime | None
) -> Verified:
    try:
        return _verify_signed_data_inner(sd, data, trusted, now)
    except UnsupportedAlgorithm as e:
        raise SignatureInvalid(str(e)) from e
    except As2CryptoError:
        raise
    except (PyAsn1Error, ValueError, LookupError, TypeError) as e:
        raise SignatureInvalid(f"malformed CMS signature: {e}") from e


def _verify_signed_data_inner(
    sd: Any, data: bytes, trusted: Sequence[x509.Certificate], now: dt.datetime | None
) -> Verified:
    signer_infos = list(sd["signerInfos"])
    if not signer_infos:
        raise SignatureInvalid("SignedData without a SignerInfo")
    econtent_type = sd["encapContentInfo"]["eContentType"]
    failure: As2CryptoError | None = None
    for si in signer_infos:
        cert = next((c for c in trusted if _matches(si["sid"], c)), None)
        if cert is None:
            continue
        issues = certs.problems(cert, purpose="signing", now=now)
        if issues:
            failure = CertificateRejected("; ".join(issues))
            continue
        digest_oid = str(si["digestAlgorithm"]["algorithm"])
        if digest_oid not in _DIGEST_BY_OID:
            failure = SignatureInvalid(f"unsupported digest algorithm {digest_oid}")
            continue
        digest_name = _DIGEST_BY_OID[digest_oid]
        signature = bytes(si["signature"])
        attrs = si["signedAttrs"]
        if attrs.isValue and len(attrs):
            if not _check_signature(cert.public_key(), si["signatureAlgorithm"], digest_name, signature,
                                    _signed_attr_encodings(attrs)):
                failure = SignatureInvalid(
                    f"signature by {cert.subject.rfc4514_string()} does not verify over its signed attributes"
                )
                continue
            content_types = _attr_values(attrs, rfc5652.id_contentType)
            if content_types and content_types[0] != der_encoder.encode(econtent_type):
                raise SignatureInvalid("contentType attribute differs from the encapsulated content type")
            digests = _attr_values(attrs, rfc5652.id_messageDigest)
            if len(digests) != 1:
                raise SignatureInvalid("signed attributes without exactly one messageDigest")
            signed_digest = bytes(_decode(digests[0], univ.OctetString()))
            if signed_digest != DIGESTS[digest_name](data).digest():
                raise IntegrityCheckFailed(
                    f"content digest ({digest_name}) differs from the one {cert.subject.rfc4514_string()} signed"
                )
        elif not _check_signature(cert.public_key(), si["signatureAlgorithm"], digest_name, signature, [data]):
            # without signed attributes a changed content and a bad signature look the same
            failure = SignatureInvalid(f"signature by {cert.subject.rfc4514_string()} does not verify")
            continue
        return Verified(cert, digest_name)
    if failure is not None:
        raise failure
    embedded = _embedded_subjects(sd)
    raise UnknownSigner(
        "signer is none of the partner's certificates"
        + (f" (message signed by {', '.join(embedded)})" if embedded else "")
    )


# --------------------------------------------------------------------------- encryption


def encrypt(data: bytes, recipient: x509.Certificate, algorithm: str = "aes256-cbc") -> bytes:
    """DER ContentInfo: EnvelopedData (CBC ciphers) or AuthEnvelopedData (GCM) for `recipient`.

    One KeyTransRecipientInfo (issuer + serial number, RSA PKCS#1 v1.5 key
    transport). `algorithm`: aes128-cbc, aes192-cbc, aes256-cbc,
    des-ede3-cbc (3DES), aes128-gcm, aes192-gcm, aes256-gcm (see
    `normalise_cipher` for the accepted spellings). The data is encrypted as is.
    """
    name = normalise_cipher(algorithm)
    public = recipient.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise UnsupportedAlgorithm("encryption needs a recipient certificate with an RSA key")
    if name in ("aes128-cbc", "aes256-cbc"):
        return (
            pkcs7.PKCS7EnvelopeBuilder()
            .set_data(data)
            .add_recipient(recipient)
            .set_content_encryption_algorithm(algorithms.AES128 if name == "aes128-cbc" else algorithms.AES256)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
    oid, key_len, kind = CIPHERS[name]
    cek = os.urandom(key_len)
    ri = rfc5652.RecipientInfo()
    ktri = ri["ktri"]
    ktri["version"] = 0
    ktri["rid"]["issuerAndSerialNumber"] = _issuer_and_serial(recipient)
    ktri["keyEncryptionAlgorithm"] = _alg(_RSA_ENCRYPTION, univ.Null(""))
    ktri["encryptedKey"] = public.encrypt(cek, padding.PKCS1v15())

    eci = rfc5652.EncryptedContentInfo()
    eci["contentType"] = rfc5652.id_data
    tagged_content = eci.componentType["encryptedContent"].asn1Object
    if kind == "cbc":
        cipher = _block_cipher(name, cek)
        iv = os.urandom(cipher.block_size // 8)
        padder = sympadding.PKCS7(cipher.block_size).padder()
        enc = Cipher(cipher, modes.CBC(iv)).encryptor()
        ciphertext = enc.update(padder.update(data) + padder.finalize()) + enc.finalize()
        eci["contentEncryptionAlgorithm"] = _alg(oid, univ.OctetString(iv))
        eci["encryptedContent"] = tagged_content.clone(ciphertext)
        env = rfc5652.EnvelopedData()
        env["version"] = 0
        env["recipientInfos"].append(ri)
        env["encryptedContentInfo"] = eci
        return _content_info(rfc5652.id_envelopedData, env)

    nonce = os.urandom(12)
    params = rfc5084.GCMParameters()
    params["aes-nonce"] = nonce
    params["aes-ICVlen"] = 16
    enc = Cipher(algorithms.AES(cek), modes.GCM(nonce)).encryptor()
    ciphertext = enc.update(data) + enc.finalize()
    eci["contentEncryptionAlgorithm"] = _alg(oid, params)
    eci["encryptedContent"] = tagged_content.clone(ciphertext)
    auth = rfc5083.AuthEnvelopedData()
    auth["version"] = 0
    auth["recipientInfos"].append(ri)
    auth["authEncryptedContentInfo"] = eci
    auth["mac"] = enc.tag
    return _content_info(rfc5083.id_ct_authEnvelopedData, auth)


def decrypt(der: bytes, kp: KeyPair) -> bytes:
    """The content of an EnvelopedData / AuthEnvelopedData addressed to `kp`.

    Raises `DecryptionFailed` when the data is not (auth-)enveloped data, is
    malformed or truncated, has no KeyTransRecipientInfo for `kp.cert`, or
    does not decrypt (wrong key, bad padding, GCM tag mismatch).
    """
    try:
        return _decrypt(der, kp)
    except (UnsupportedAlgorithm, MalformedMessage) as e:
        raise DecryptionFailed(f"could not decrypt: {e}") from e
    except As2CryptoError:
        raise
    except (PyAsn1Error, ValueError, TypeError, LookupError, InvalidTag) as e:
        raise DecryptionFailed(f"could not decrypt: {type(e).__name__}: {e}") from e


def _decrypt(der: bytes, kp: KeyPair) -> bytes:
    content_type, content = _open_content_info(der)
    if content_type == str(rfc5652.id_envelopedData):
        env = _decode(content, rfc5652.EnvelopedData())
        eci = env["encryptedContentInfo"]
        mac = None
    elif content_type == str(rfc5083.id_ct_authEnvelopedData):
        env = _decode(content, rfc5083.AuthEnvelopedData())
        eci = env["authEncryptedContentInfo"]
        mac = bytes(env["mac"])
    else:
        raise DecryptionFailed(f"not enveloped data but {content_type}")
    del content  # the decoded structure holds the ciphertext; do not keep it twice

    ktri = None
    for ri in env["recipientInfos"]:
        if ri.getName() == "ktri" and _matches(ri["ktri"]["rid"], kp.cert):
            ktri = ri["ktri"]
            break
    if ktri is None:
        raise DecryptionFailed(
            f"message is not encrypted for our certificate {kp.cert.subject.rfc4514_string()} "
            f"(serial {kp.cert.serial_number:x})"
        )
    if not isinstance(kp.key, rsa.RSAPrivateKey):
        raise DecryptionFailed("our key is not an RSA key: cannot unwrap the content key")
    cek = _unwrap_key(ktri, kp.key)

    alg = eci["contentEncryptionAlgorithm"]
    oid = str(alg["algorithm"])
    if oid not in _CIPHER_BY_OID:
        raise DecryptionFailed(f"unsupported content encryption algorithm {oid}")
    name = _CIPHER_BY_OID[oid]
    _oid, key_len, kind = CIPHERS[name]
    if len(cek) != key_len:
        raise DecryptionFailed("could not decrypt the content")
    if not eci["encryptedContent"].isValue:
        raise DecryptionFailed("enveloped data without encrypted content (detached)")
    ciphertext = bytes(eci["encryptedContent"])

    if kind == "cbc":
        if mac is not None:
            raise DecryptionFailed("AuthEnvelopedData with a non-authenticated cipher")
        iv = bytes(_decode(bytes(alg["parameters"]), univ.OctetString()))
        cipher = _block_cipher(name, cek)
        if len(iv) != cipher.block_size // 8 or not ciphertext or len(ciphertext) % len(iv):
            raise DecryptionFailed("could not decrypt the content")
        dec = Cipher(cipher, modes.CBC(iv)).decryptor()
        del eci, env
        padded = dec.update(ciphertext)
        del ciphertext
        padded += dec.finalize()
        return _unpad(padded, len(iv))

    if mac is None:
        raise DecryptionFailed("GCM content outside AuthEnvelopedData")
    params = _decode(bytes(alg["parameters"]), rfc5084.GCMParameters())
    nonce = bytes(params["aes-nonce"])
    icv_len = int(params["aes-ICVlen"]) if params["aes-ICVlen"].isValue else 12
    if len(mac) != icv_len:
        raise DecryptionFailed("GCM tag length differs from aes-ICVlen")
    aad = b""
    if env["authAttrs"].isValue and len(env["authAttrs"]):
        plain = rfc5652.SignedAttributes()  # an untagged SET OF Attribute (RFC 5083 §2.1: SET OF tag)
        plain.extend(list(env["authAttrs"]))
        aad = der_encoder.encode(plain)
    try:
        dec = Cipher(algorithms.AES(cek), modes.GCM(nonce, mac, min_tag_length=max(4, icv_len))).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(ciphertext) + dec.finalize()
    except InvalidTag:
        raise DecryptionFailed("GCM authentication tag mismatch: content tampered or wrong key") from None


def _unpad(padded: bytes, block: int) -> bytes:
    """Remove PKCS#7 padding (RFC 5652 §6.3), checking the whole last block without an early exit."""
    n = padded[-1] if padded else 0
    bad = int(n == 0 or n > block)
    for i in range(1, block + 1):
        bad |= int(i <= n and padded[-i] != n)
    if bad:
        raise DecryptionFailed("could not decrypt the content")
    return padded[:-n]


def _unwrap_key(ktri: Any, key: rsa.RSAPrivateKey) -> bytes:
    alg = ktri["keyEncryptionAlgorithm"]
    oid = str(alg["algorithm"])
    encrypted_key = bytes(ktri["encryptedKey"])
    if oid == _RSA_ENCRYPTION:
        scheme: Any = padding.PKCS1v15()
    elif oid == _RSAES_OAEP:
        params = rfc4055.RSAES_OAEP_params()
        if alg["parameters"].isValue:
            params = _decode(bytes(alg["parameters"]), rfc4055.RSAES_OAEP_params())
        oaep_hash: type[hashes.HashAlgorithm] = hashes.SHA1
        if params["hashFunc"].isValue:
            oaep_hash = _hash_cls(_DIGEST_BY_OID.get(str(params["hashFunc"]["algorithm"]), "?"))
        mgf_hash = hashes.SHA1
        if params["maskGenFunc"].isValue:
            inner = _decode(bytes(params["maskGenFunc"]["parameters"]), rfc5280.AlgorithmIdentifier())
            mgf_hash = _hash_cls(_DIGEST_BY_OID.get(str(inner["algorithm"]), "?"))
        scheme = padding.OAEP(mgf=padding.MGF1(mgf_hash()), algorithm=oaep_hash(), label=None)
    else:
        raise DecryptionFailed(f"unsupported key transport algorithm {oid}")
    try:
        return key.decrypt(encrypted_key, scheme)
    except ValueError:
        # one message for every failure: no padding oracle
        raise DecryptionFailed("could not decrypt the content") from None


# --------------------------------------------------------------------------- compression


def compress(data: bytes) -> bytes:
    """DER ContentInfo(CompressedData), RFC 3274: zlib (RFC 1950) over `data`, as id-data."""
    cd = rfc3274.CompressedData()
    cd["version"] = 0
    cd["compressionAlgorithm"]["algorithm"] = rfc3274.id_alg_zlibCompress
    cd["encapContentInfo"]["eContentType"] = rfc5652.id_data
    cd["encapContentInfo"]["eContent"] = zlib.compress(data, 6)
    return _content_info(rfc3274.id_ct_compressedData, cd)


def decompress(der: bytes, max_bytes: int) -> bytes:
    """The content of a CompressedData, refusing (`DecompressionFailed`) to produce more than `max_bytes`."""
    try:
        oid, content = _open_content_info(der)
        if oid != str(rfc3274.id_ct_compressedData):
            raise DecompressionFailed(f"not compressed data but {oid}")
        cd = _decode(content, rfc3274.CompressedData())
    except (PyAsn1Error, MalformedMessage) as e:
        raise DecompressionFailed(f"malformed CompressedData: {e}") from e
    if cd["compressionAlgorithm"]["algorithm"] != rfc3274.id_alg_zlibCompress:
        raise DecompressionFailed(f"unsupported compression algorithm {cd['compressionAlgorithm']['algorithm']}")
    econtent = cd["encapContentInfo"]["eContent"]
    if not econtent.isValue:
        raise DecompressionFailed("CompressedData without content")
    return _inflate(bytes(econtent), max_bytes)


def _inflate(compressed: bytes, max_bytes: int) -> bytes:
    d = zlib.decompressobj()
    out = bytearray()
    chunk = 1 << 20
    pending = compressed
    try:
        while True:
            room = max_bytes + 1 - len(out)
            piece = d.decompress(pending, min(chunk, room))
            out += piece
            if len(out) > max_bytes:
                raise DecompressionFailed(f"decompressed content exceeds {max_bytes} bytes")
            pending = d.unconsumed_tail
            if d.eof:
                break
            if not pending and not piece:
                raise DecompressionFailed("truncated zlib stream")
    except zlib.error as e:
        raise DecompressionFailed(f"invalid zlib data: {e}") from e
    return bytes(out)


# keep `UnexpectedProcessingError` importable from here as documented in errors.py
_ = UnexpectedProcessingError
