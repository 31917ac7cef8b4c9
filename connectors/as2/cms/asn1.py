"""ASN.1 plumbing shared by the CMS modules (split out of `connectors.as2.cms`).

pyasn1 helpers, signer / recipient identifier matching, a hand-written BER
reader for ContentInfo (pyasn1 mis-decodes an indefinite-length ``ANY``),
and `content_kind`.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc3274, rfc5083, rfc5280, rfc5652

from connectors.as2.cms.algorithms import ContentKind
from connectors.as2.errors import MalformedMessage

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


def _matches(
    ident: Any,
    cert: x509.Certificate,
    *,
    ias_name: str = "issuerAndSerialNumber",
    ski_name: str = "subjectKeyIdentifier",
) -> bool:
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
    oid = _oid(bytes(data[start:oid_end]))
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
    return str(_oid(bytes(data[start : _end(data, start)])))


def _oid(der: bytes) -> univ.ObjectIdentifier:
    """The OBJECT IDENTIFIER encoded in `der`; `MalformedMessage` when it is not one (empty, bad octets)."""
    try:
        oid, _ = ber_decoder.decode(der, asn1Spec=univ.ObjectIdentifier())
    except PyAsn1Error as e:
        raise MalformedMessage(f"bad content type OID: {e}") from None
    return oid


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
