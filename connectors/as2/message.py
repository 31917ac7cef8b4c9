"""AS2 message bodies (RFC 4130): build (`wrap`) and open (`unwrap`) S/MIME layers.

The AS2 HTTP body is the body of the outermost MIME entity, and that entity's
headers travel as HTTP headers (Content-Type, ...). `wrap` returns both;
`unwrap` takes the HTTP Content-Type (and, optionally, Content-Disposition)
and rebuilds the outer entity from them.

Layers built by `wrap`, innermost first::

    payload entity      Content-Type: <content_type>, Content-Transfer-Encoding: binary,
                        Content-Disposition: attachment; filename="<filename>"
    compressed (opt.)   application/pkcs7-mime; smime-type=compressed-data   (RFC 3274 / 5402)
    signed (opt.)       multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256
                        part 1: the entity above, byte for byte; part 2: base64 detached CMS signature
    encrypted (opt.)    application/pkcs7-mime; smime-type=enveloped-data (CBC)
                        or smime-type=authEnveloped-data (GCM, RFC 5083)

Compression comes *before* signing by default (RFC 5402 allows both orders):
the signature and the MIC then cover exactly the bytes transmitted, and the
receiver verifies before it inflates anything. ``compress_before_sign=False``
gives the other order (compressed-data around the multipart/signed). `unwrap`
accepts both orders, and opaque (``application/pkcs7-mime;
smime-type=signed-data``) signatures.

MIC (RFC 4130 §7.3.1, RFC 5402 §4), always over bytes as received, never
re-serialised:

- signed message (RFC 5402 §4.1: "calculated over the same data that was
  signed in the original message"): the signed MIME entity (part 1 of
  multipart/signed: its headers, the empty line and its content). Compressed
  before signing, that entity is the compressed-data entity; signed before
  compressing, it is the uncompressed payload entity. If the signature only
  verifies over the CRLF-canonical form of that part (a sender that
  canonicalised while the transport delivered bare LFs), the MIC is over that
  canonical form, i.e. over what was actually signed;
- unsigned, compressed (encrypted or not; RFC 5402 §4.2, §4.3: "calculated
  over the uncompressed data content including all MIME header fields and
  any applied Content-Transfer-Encoding"): the MIME entity found once every
  compression (and encryption) layer is removed, headers and content;
- encrypted, unsigned, not compressed: the decrypted MIME entity (headers
  and content);
- neither signed, encrypted nor compressed: the message content without any
  MIME header, i.e. the HTTP body as received.

The MIC digest is the first algorithm of the sender's ``signed-receipt-micalg``
list that Relais supports (returned in the sender's own spelling, ``sha256``
or ``sha-256``); else the signature's digest; else ``sha-256``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509

from connectors.as2 import cms, mime
from connectors.as2.certs import KeyPair
from connectors.as2.errors import (
    As2CryptoError,
    InsufficientSecurity,
    IntegrityCheckFailed,
    MalformedMessage,
    SignatureInvalid,
    UnexpectedProcessingError,
    UnsupportedAlgorithm,
)

__all__ = [
    "Unwrapped",
    "Wrapped",
    "choose_mic_digest",
    "requested_micalgs",
    "signed_multipart",
    "unwrap",
    "wrap",
]

_PKCS7_MIME = {"application/pkcs7-mime", "application/x-pkcs7-mime"}
_SMIME_TYPES = {
    "enveloped-data": "enveloped",
    "authenveloped-data": "auth-enveloped",
    "compressed-data": "compressed",
    "signed-data": "signed",
}
_MAX_LAYERS = 8


@dataclass
class Wrapped:
    """An AS2 body ready to POST: `headers` go out as HTTP headers, `body` as the HTTP body.

    `mic` / `mic_digest` are what the partner must return in its MDN's
    Received-Content-MIC (``f"{mic}, {mic_digest}"``).
    """

    headers: list[tuple[str, str]]
    body: bytes
    mic: str
    mic_digest: str

    @property
    def content_type(self) -> str:
        """The Content-Type header value."""
        return next(v for k, v in self.headers if k.lower() == "content-type")


@dataclass
class Unwrapped:
    """What `unwrap` found: the payload, its protections, and the MIC to return in the MDN.

    `filename` comes from the sender and is untrusted (may hold path separators).
    `mic_digest` is spelled as the sender asked (``sha256`` or ``sha-256``).
    `content_type` / `payload_headers` are those of the innermost MIME entity
    (for an MDN: ``multipart/report`` and its boundary); `signature_digest`
    is the digest the signer used (``sha-256`` form), None when unsigned.
    """

    payload: bytes
    filename: str | None
    signed: bool
    encrypted: bool
    compressed: bool
    signer: x509.Certificate | None
    mic: str
    mic_digest: str
    content_type: str = "application/octet-stream"
    signature_digest: str | None = None
    payload_headers: list[tuple[str, str]] = field(default_factory=list)


def _disposition(filename: str) -> str:
    if re.fullmatch(r"[\x20-\x7e]*", filename) and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    encoded = "".join(
        chr(b) if chr(b).isalnum() or chr(b) in "!#$&+-.^_`|~" else f"%{b:02X}" for b in filename.encode()
    )
    return f"attachment; filename*=utf-8''{encoded}"


def _base64_lines(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def wrap(
    payload: bytes,
    filename: str,
    *,
    content_type: str = "application/octet-stream",
    sign: KeyPair | None = None,
    encrypt_for: x509.Certificate | None = None,
    compress: bool = False,
    digest: str = "sha-256",
    algorithm: str = "aes256-cbc",
    compress_before_sign: bool = True,
) -> Wrapped:
    """Build an AS2 body: payload entity -> compress (opt.) -> sign (opt.) -> encrypt (opt.).

    `digest` is the signature's digest and the MIC's; `algorithm` the content
    encryption (see `cms.normalise_cipher`). With `compress_before_sign`
    false (and both `compress` and `sign`), the signed multipart is compressed
    instead: payload entity -> sign -> compress -> encrypt. The payload bytes
    are never altered (binary transfer, no text canonicalisation).
    """
    digest = cms.normalise_digest(digest)
    # the current outermost layer: its headers (Content-Type first) and its body
    headers: list[tuple[str, str]] = [
        ("Content-Type", content_type),
        ("Content-Transfer-Encoding", "binary"),
        ("Content-Disposition", _disposition(filename)),
    ]
    body = payload
    mic: str | None = None  # computed as soon as its bytes exist (RFC 4130 §7.3.1, RFC 5402 §4: module doc)

    def entity() -> bytes:
        return mime.make(headers[0][1], body, headers[1:])

    def compress_layer() -> None:
        nonlocal body, headers, mic
        uncompressed = entity()
        if mic is None and sign is None:  # unsigned (RFC 5402 §4.2, §4.3): the uncompressed entity
            mic = cms.mic(uncompressed, digest)
        body = cms.compress(uncompressed)
        del uncompressed
        headers = [
            ("Content-Type", 'application/pkcs7-mime; smime-type=compressed-data; name="smime.p7z"'),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-Disposition", 'attachment; filename="smime.p7z"'),
        ]

    if compress and (compress_before_sign or sign is None):
        compress_layer()
    if sign is not None:
        signed = entity()
        mic = cms.mic(signed, digest)  # RFC 5402 §4.1: what was signed, compressed or not
        multipart_type, body = signed_multipart(signed, sign, digest)
        del signed
        headers = [("Content-Type", multipart_type)]
        if compress and not compress_before_sign:
            compress_layer()
    if encrypt_for is not None:
        cipher = cms.normalise_cipher(algorithm)
        smime_type = "authEnveloped-data" if cipher.endswith("-gcm") else "enveloped-data"
        plain = entity()
        if mic is None:  # encrypted, unsigned, uncompressed: the MIME entity that was encrypted
            mic = cms.mic(plain, digest)
        body = cms.encrypt(plain, encrypt_for, cipher)
        del plain
        headers = [
            ("Content-Type", f'application/pkcs7-mime; smime-type={smime_type}; name="smime.p7m"'),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-Disposition", 'attachment; filename="smime.p7m"'),
        ]
    if mic is None:  # neither signed, encrypted nor compressed: the content, without headers
        mic = cms.mic(body, digest)
    return Wrapped(headers, body, mic, digest)


def signed_multipart(entity: bytes, kp: KeyPair, digest: str = "sha-256") -> tuple[str, bytes]:
    """(Content-Type value, body) of a multipart/signed holding `entity` byte for byte (RFC 5751 §3.5.3).

    Part 1 is `entity` as given (sign MDNs and payloads with this: the MIC
    and signature cover exactly these bytes); part 2 is the detached CMS
    signature, base64. CRLF framing; the boundary never occurs in `entity`.
    """
    digest = cms.normalise_digest(digest)
    signature = cms.sign_detached(entity, kp, digest)
    boundary = "----=_Relais_" + uuid.uuid4().hex
    while b"--" + boundary.encode() in entity:
        boundary = "----=_Relais_" + uuid.uuid4().hex
    delim = b"--" + boundary.encode()
    sig_entity = mime.make(
        'application/pkcs7-signature; name="smime.p7s"; smime-type=signed-data',
        _base64_lines(signature),
        [("Content-Transfer-Encoding", "base64"), ("Content-Disposition", 'attachment; filename="smime.p7s"')],
    )
    body = b"".join([delim, b"\r\n", entity, b"\r\n", delim, b"\r\n", sig_entity, b"\r\n", delim, b"--\r\n"])
    content_type = f'multipart/signed; protocol="application/pkcs7-signature"; micalg={digest}; boundary="{boundary}"'
    return content_type, body


def requested_micalgs(disposition_notification_options: str | None) -> list[str]:
    """The ``signed-receipt-micalg`` list of a Disposition-Notification-Options header, as spelled.

    ``"signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha256, sha1"``
    -> ``["sha256", "sha1"]`` (the importance token is dropped).
    """
    if not disposition_notification_options:
        return []
    for param in disposition_notification_options.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "signed-receipt-micalg":
            items = [v.strip().strip('"') for v in value.split(",")]
            if items and items[0].lower() in ("required", "optional"):
                items = items[1:]
            return [i for i in items if i]
    return []


def choose_mic_digest(requested: Sequence[str], signature_digest: str | None = None) -> str:
    """The first supported requested digest (as spelled, lowercased), else the signature's, else sha-256."""
    for name in requested:
        try:
            cms.normalise_digest(name)
        except UnsupportedAlgorithm:
            continue
        return name.strip().lower()
    return signature_digest or "sha-256"


def _der(entity: mime.Entity) -> bytes:
    """The CMS bytes of an application/pkcs7-* entity (binary, or base64 with or without a CTE header)."""
    data = mime.decoded_body(entity)
    if data[:1] != b"\x30":
        try:
            decoded = base64.b64decode(re.sub(rb"\s+", b"", data), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded[:1] == b"\x30":
            return decoded
    return data


def unwrap(
    content_type: str,
    body: bytes,
    *,
    own: KeyPair,
    partner_certs: Sequence[x509.Certificate],
    requested_digests: Sequence[str] = ("sha-256",),
    max_bytes: int = 200_000_000,
    require_signature: bool = False,
    require_encryption: bool = False,
    content_disposition: str | None = None,
    now: dt.datetime | None = None,
) -> Unwrapped:
    """Open an AS2 body: decrypt, verify, decompress, in whatever order the sender nested them.

    `content_type` (and `content_disposition`, for a plain message's file
    name) are the HTTP headers; `own` decrypts; `partner_certs` are the only
    certificates a signature may come from; `requested_digests` is the
    sender's ``signed-receipt-micalg`` list (see `requested_micalgs`), an
    empty list meaning "not given". `max_bytes` bounds the body and every
    decompressed layer.

    Raises an `As2CryptoError` whose ``disposition`` is the MDN modifier:
    `AuthenticationFailed` (bad signature, unknown signer, expired signer
    certificate), `IntegrityCheckFailed` (valid signature over other
    content: tampered), `DecryptionFailed`, `DecompressionFailed`,
    `InsufficientSecurity` (`require_signature` / `require_encryption` not
    met) or `UnexpectedProcessingError` (malformed MIME / CMS, anything else).
    """
    try:
        return _unwrap(
            content_type,
            body,
            own=own,
            partner_certs=partner_certs,
            requested_digests=requested_digests,
            max_bytes=max_bytes,
            require_signature=require_signature,
            require_encryption=require_encryption,
            content_disposition=content_disposition,
            now=now,
        )
    except As2CryptoError:
        raise
    except Exception as e:
        raise UnexpectedProcessingError(f"{type(e).__name__}: {e}") from e


def _is_layer(entity: mime.Entity) -> bool:
    """Another S/MIME layer for `_unwrap` to open (signed, encrypted, compressed), not the payload."""
    return entity.header("Content-Type") is not None and (
        entity.content_type == "multipart/signed" or entity.content_type in _PKCS7_MIME
    )


def _unwrap(
    content_type: str,
    body: bytes,
    *,
    own: KeyPair,
    partner_certs: Sequence[x509.Certificate],
    requested_digests: Sequence[str],
    max_bytes: int,
    require_signature: bool,
    require_encryption: bool,
    content_disposition: str | None,
    now: dt.datetime | None,
) -> Unwrapped:
    body = bytes(body)
    entity: mime.Entity = _outer_entity(content_type, body, content_disposition, max_bytes)
    layers = _Layers(requested_digests)
    raw_payload: bytes | None = None
    for _depth in range(_MAX_LAYERS):
        opening = layers.open(entity, own, partner_certs, max_bytes, now)
        if opening is None:
            break
        inner, opened = opening
        del opening
        entity = None  # type: ignore[assignment]  # release the outer layer before parsing the inner one
        entity = mime.parse(inner)
        if opened and not layers.signed and not _is_layer(entity):
            # the innermost entity of an unsigned message, headers and content as the last layer gave
            # them: RFC 4130 §7.3.1 (decrypted) and RFC 5402 §4.2, §4.3 (uncompressed)
            digest = choose_mic_digest(requested_digests, None)
            layers.opened_mic = (cms.mic(inner, digest), digest)
        if entity.header("Content-Type") is None:
            raw_payload = inner  # not a MIME entity (non-conforming sender): the content itself
            break
        del inner
    else:
        raise MalformedMessage(f"more than {_MAX_LAYERS} nested S/MIME layers")

    if require_encryption and not layers.encrypted:
        raise InsufficientSecurity("the partner must encrypt its messages; this one is not encrypted")
    if require_signature and not layers.signed:
        raise InsufficientSecurity("the partner must sign its messages; this one is not signed")
    return _unwrapped(body, entity, raw_payload, layers, content_disposition)


def _outer_entity(content_type: str, body: bytes, content_disposition: str | None, max_bytes: int) -> mime.Entity:
    """The HTTP body as a MIME entity with the HTTP headers that describe it (checked first)."""
    if not body:
        raise MalformedMessage("empty message body")
    if len(body) > max_bytes:
        raise UnexpectedProcessingError(f"message body of {len(body)} bytes exceeds {max_bytes}")
    if not content_type or "\r" in content_type or "\n" in content_type:
        raise MalformedMessage("missing or invalid Content-Type")
    headers = [("Content-Type", content_type)]
    if content_disposition and "\r" not in content_disposition and "\n" not in content_disposition:
        headers.append(("Content-Disposition", content_disposition))
    return mime.entity(headers, body)


@dataclass
class _Layers:
    """What the S/MIME layers `_unwrap` opened so far say. MICs are computed as soon as their bytes are
    known, so large layers need not be kept."""

    requested_digests: Sequence[str]
    signed: bool = False
    encrypted: bool = False
    compressed: bool = False
    signer: x509.Certificate | None = None
    signature_digest: str | None = None
    signed_mic: tuple[str, str] | None = None  # over the signed entity
    # unsigned: over the innermost entity, once every encryption and compression layer is removed
    opened_mic: tuple[str, str] | None = None

    def take_signature(self, content: bytes, verified: cms.Verified) -> None:
        if self.signed:  # nested signatures: the outermost one is the message's
            return
        self.signed, self.signer, self.signature_digest = True, verified.signer, verified.digest
        digest = choose_mic_digest(self.requested_digests, verified.digest)
        self.signed_mic = (cms.mic(content, digest), digest)

    def open(
        self,
        entity: mime.Entity,
        own: KeyPair,
        partner_certs: Sequence[x509.Certificate],
        max_bytes: int,
        now: dt.datetime | None,
    ) -> tuple[bytes, bool] | None:
        """(the inner bytes, whether this layer was decrypted or decompressed) of `entity`; None when it
        is no S/MIME layer (the payload)."""
        ct = entity.content_type
        if ct in _PKCS7_MIME:
            der = _der(entity)
            kind = _SMIME_TYPES.get(entity.params.get("smime-type", "").lower()) or cms.content_kind(der)
            if kind in ("enveloped", "auth-enveloped"):
                inner = cms.decrypt(der, own)
                self.encrypted = True
                return inner, True
            if kind == "compressed":
                inner = cms.decompress(der, max_bytes)
                self.compressed = True
                return inner, True
            if kind == "signed":
                inner, verified = cms.verify_attached(der, partner_certs, now=now)
                self.take_signature(inner, verified)
                return inner, False
            raise MalformedMessage(f"{ct} holding CMS {kind}")
        if ct == "multipart/signed":
            parts = mime.split_multipart(entity)
            if len(parts) != 2:
                raise SignatureInvalid(f"multipart/signed with {len(parts)} parts instead of 2")
            content, verified = _verify_part(parts[0], _der(mime.parse(parts[1])), partner_certs, now)
            self.take_signature(content, verified)
            return parts[0], False
        return None


def _unwrapped(
    body: bytes, entity: mime.Entity, raw_payload: bytes | None, layers: _Layers, content_disposition: str | None
) -> Unwrapped:
    """What `_unwrap` returns once the innermost `entity` (or a `raw_payload`) is reached."""
    if raw_payload is not None:
        payload, payload_type = raw_payload, "application/octet-stream"
    else:
        payload, payload_type = mime.decoded_body(entity), entity.content_type
    if layers.signed_mic is not None:
        mic_value, mic_digest = layers.signed_mic
    elif layers.opened_mic is not None:
        mic_value, mic_digest = layers.opened_mic
    else:  # neither signed, encrypted nor compressed: the content as received, without headers
        mic_digest = choose_mic_digest(layers.requested_digests, None)
        mic_value = cms.mic(body, mic_digest)
    filename = None if raw_payload is not None else mime.filename(entity)
    if filename is None and content_disposition:
        filename = mime.parse_content_type(content_disposition)[1].get("filename")
    return Unwrapped(
        payload=payload,
        filename=filename,
        signed=layers.signed,
        encrypted=layers.encrypted,
        compressed=layers.compressed,
        signer=layers.signer,
        mic=mic_value,
        mic_digest=mic_digest,
        content_type=payload_type,
        signature_digest=layers.signature_digest,
        payload_headers=[] if raw_payload is not None else list(entity.headers),
    )


def _verify_part(
    content: bytes, signature: bytes, trusted: Sequence[x509.Certificate], now: dt.datetime | None
) -> tuple[bytes, cms.Verified]:
    """Verify a multipart/signed first part as received, else in CRLF-canonical form.

    Returns the bytes the signature covers (the MIC input) and the verification.
    """
    try:
        return content, cms.verify(content, signature, trusted, now=now)
    except IntegrityCheckFailed as first:
        canonical = mime.canonical(content)
        if canonical == content:
            raise
        try:
            return canonical, cms.verify(canonical, signature, trusted, now=now)
        except IntegrityCheckFailed:
            raise first from None
