"""CMS SignedData for AS2: detached signatures and their verification (split out of `connectors.as2.cms`).

See `connectors.as2.cms` for the rules `verify` applies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ, useful
from pyasn1_modules import rfc4055, rfc5280, rfc5652

from connectors.as2 import certs
from connectors.as2.certs import KeyPair
from connectors.as2.cms.algorithms import (
    _DIGEST_BY_OID,
    _DIGEST_INFO,
    _ECDSA_WITH,
    _MGF1,
    _RSA_ENCRYPTION,
    _SIG_ALGS,
    DIGESTS,
    _hash_cls,
    normalise_digest,
)
from connectors.as2.cms.asn1 import _alg, _any, _content_info, _decode, _issuer_and_serial, _matches, _open_content_info
from connectors.as2.errors import (
    As2CryptoError,
    CertificateRejected,
    IntegrityCheckFailed,
    MalformedMessage,
    SignatureInvalid,
    UnknownSigner,
    UnsupportedAlgorithm,
)

# --------------------------------------------------------------------------- signing


def sign_detached(data: bytes, kp: KeyPair, digest: str = "sha-256") -> bytes:
    """DER ContentInfo(SignedData) signing `data` detached, as is (binary: no canonicalisation).

    Signed attributes: contentType (id-data), signingTime, messageDigest (and
    S/MIME capabilities with the SHA-2 builder); the signer certificate is
    included. RSA keys sign with PKCS#1 v1.5, EC keys with ECDSA.
    """
    name = normalise_digest(digest)
    if name != "sha-1":
        algorithm = _hash_cls(name)()
        if not isinstance(algorithm, hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
            raise UnsupportedAlgorithm(f"no SHA-2 signature with {name}")  # (every name but sha-1 is SHA-2)
        builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(kp.cert, kp.key, algorithm)
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


def _check_signature(public: Any, sig_alg: Any, digest_name: str, signature: bytes, candidates: list[bytes]) -> bool:
    oid = str(sig_alg["algorithm"])
    if oid not in _SIG_ALGS:
        raise SignatureInvalid(f"unsupported signature algorithm {oid}")
    key_type, sig_digest = _SIG_ALGS[oid]
    hash_cls = _hash_cls(sig_digest or digest_name)
    if key_type == "rsa-pss":
        params = rfc4055.RSASSA_PSS_params()
        if sig_alg["parameters"].isValue:
            params = _decode(bytes(sig_alg["parameters"]), rfc4055.RSASSA_PSS_params())
        pss_hash: type[hashes.HashAlgorithm] = hashes.SHA1
        if params["hashAlgorithm"].isValue:
            pss_hash = _hash_cls(_DIGEST_BY_OID.get(str(params["hashAlgorithm"]["algorithm"]), "?"))
        mgf_hash: type[hashes.HashAlgorithm] = pss_hash
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


def _verify_signed_data(sd: Any, data: bytes, trusted: Sequence[x509.Certificate], now: dt.datetime | None) -> Verified:
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
            if not _check_signature(
                cert.public_key(), si["signatureAlgorithm"], digest_name, signature, _signed_attr_encodings(attrs)
            ):
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
