"""AS2 MDNs (RFC 4130 §7, RFC 3798): build the receipts Relais gives, read the ones it gets.

An MDN is a ``multipart/report; report-type=disposition-notification`` with a
human-readable text part and a ``message/disposition-notification`` part,
wrapped in ``multipart/signed`` when the sender asked for a signed receipt.

`build` returns the whole MDN as one byte string: the AS2 headers (AS2-From,
AS2-To, Message-ID...) and the MIME entity. That string is what Relais
archives, sends (sync: the HTTP response; async: a POST) and re-sends
unchanged when a message is received twice: `http_parts` splits it into
HTTP headers and body.

``Received-Content-MIC`` is given whenever the MIC is known, for unsigned
messages too (RFC 4130 §7.3.1 requires it whenever a signed receipt is
requested); the digest is written in the sender's own spelling
(``sha-256`` or ``sha256``).
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import secrets
from collections.abc import Sequence

from cryptography import x509

from connectors.as2 import cms, mime
from connectors.as2.certs import KeyPair
from connectors.as2.errors import As2CryptoError, AuthenticationFailed, MalformedMessage
from connectors.as2.station import new_message_id, quote_id

CRLF = b"\r\n"
REPORTING_UA = "Relais AS2"
ERROR_TEXTS = {
    "authentication-failed": "the message could not be authenticated (signature, signer or trading partner)",
    "decryption-failed": "the message could not be decrypted with Relais's key",
    "integrity-check-failed": "the content does not match its signature",
    "insufficient-message-security": "the message must be signed and/or encrypted",
    "decompression-failed": "the compressed content could not be decompressed",
    "unexpected-processing-error": "the message could not be processed",
}


@dataclasses.dataclass(frozen=True)
class Built:
    data: bytes  # AS2 headers + MIME entity, CRLF line ends
    message_id: str


def _boundary() -> str:
    return f"----=_Relais_{secrets.token_hex(12)}"


def disposition_value(modifier: str | None) -> str:
    """The Disposition field: processed, or processed/error: <modifier>."""
    kind = "processed" if modifier is None else f"processed/error: {modifier}"
    return f"automatic-action/MDN-sent-automatically; {kind}"


def build(
    *,
    our_id: str,
    partner_id: str,
    original_message_id: str,
    modifier: str | None = None,
    mic: str | None = None,
    mic_label: str | None = None,
    detail: str | None = None,
    sign: KeyPair | None = None,
    sign_digest: str = "sha-256",
    micalg_label: str | None = None,
) -> Built:
    """An MDN for `original_message_id`: positive when `modifier` is None, else processed/error.

    `mic_label` is the digest name written after the MIC (the sender's spelling);
    with `sign`, the report is signed (multipart/signed) with `sign_digest`, and
    the ``micalg`` parameter reads `micalg_label` (default: `sign_digest`).
    """
    report = _report(our_id, original_message_id, modifier, mic, mic_label, detail)
    if sign is None:
        content_type, body = _split_entity(report)
    else:
        content_type, body = _signed(report, sign, sign_digest, micalg_label or sign_digest)
    message_id = new_message_id(our_id)
    headers = [
        ("AS2-Version", "1.2"),
        ("AS2-From", quote_id(our_id)),
        ("AS2-To", quote_id(partner_id)),
        ("Message-ID", message_id),
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Subject", "AS2 MDN"),
        ("MIME-Version", "1.0"),
        ("Content-Type", content_type),
    ]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("utf-8")
    return Built(head + CRLF + body, message_id)


def _report(
    our_id: str,
    original_message_id: str,
    modifier: str | None,
    mic: str | None,
    mic_label: str | None,
    detail: str | None,
) -> bytes:
    """The multipart/report entity: the human-readable text, then the disposition notification."""
    if modifier is None:
        text = (
            f"The AS2 message {original_message_id} was received and processed by {our_id}.\r\n"
            "This is not a guarantee that the content was accepted: its integration report follows.\r\n"
        )
    else:
        text = (
            f"The AS2 message {original_message_id} was received by {our_id} but not processed:\r\n"
            f"{ERROR_TEXTS.get(modifier, modifier)}" + (f" ({_one_line(detail)})" if detail else "") + ".\r\n"
        )
    fields = [
        f"Reporting-UA: {REPORTING_UA}",
        f"Original-Recipient: rfc822; {quote_id(our_id)}",
        f"Final-Recipient: rfc822; {quote_id(our_id)}",
        f"Original-Message-ID: {original_message_id}",
    ]
    if mic:
        fields.append(f"Received-Content-MIC: {mic}, {mic_label or 'sha-256'}")
    fields.append(f"Disposition: {disposition_value(modifier)}")
    notification = ("\r\n".join(fields) + "\r\n").encode("utf-8")
    boundary = _boundary()
    seven_bit = [("Content-Transfer-Encoding", "7bit")]
    parts = [
        mime.make("text/plain; charset=us-ascii", text.encode("ascii", "replace"), seven_bit),
        mime.make("message/disposition-notification", notification, seven_bit),
    ]
    content_type = f'multipart/report; report-type=disposition-notification; boundary="{boundary}"'
    return mime.make(content_type, _multipart_body(boundary, parts))


def _signed(report: bytes, sign: KeyPair, sign_digest: str, micalg: str) -> tuple[str, bytes]:
    """(Content-Type, body) of the multipart/signed holding `report` and its detached signature."""
    signature = cms.sign_detached(mime.canonical(report), sign, digest=sign_digest)
    outer = _boundary()
    b64 = base64.encodebytes(signature).replace(b"\n", CRLF)
    smime_p7s = mime.make(
        'application/pkcs7-signature; name="smime.p7s"',
        b64,
        [("Content-Transfer-Encoding", "base64"), ("Content-Disposition", 'attachment; filename="smime.p7s"')],
    )
    content_type = f'multipart/signed; protocol="application/pkcs7-signature"; micalg={micalg}; boundary="{outer}"'
    return content_type, _multipart_body(outer, [report, smime_p7s])


def _multipart_body(boundary: str, parts: Sequence[bytes]) -> bytes:
    """``--boundary`` CRLF part CRLF ... ``--boundary--`` CRLF."""
    delimiter = b"--" + boundary.encode()
    return b"".join(delimiter + CRLF + part + CRLF for part in parts) + delimiter + b"--" + CRLF


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _split_entity(entity: bytes) -> tuple[str, bytes]:
    parsed = mime.parse(entity)
    return parsed.header("Content-Type") or "text/plain", parsed.body


def http_parts(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """The HTTP headers and body of an MDN made by `build` (or archived as received)."""
    parsed = mime.parse(data)
    return list(parsed.headers), parsed.body


# ---- reading MDNs -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mdn:
    original_message_id: str | None
    disposition: str  # what follows "automatic-action/MDN-sent-automatically;", e.g. "processed"
    mic: str | None
    mic_digest: str | None  # normalised ("sha-256"), None when absent or unknown
    signed: bool
    fields: dict[str, str]

    @property
    def processed(self) -> bool:
        """True for ``processed`` (also ``processed/warning``), False for errors and failures."""
        d = self.disposition.lower().replace(" ", "")
        return d == "processed" or d.startswith("processed/warning")


def parse(
    content_type: str,
    body: bytes,
    *,
    partner_certs: Sequence[x509.Certificate],
    require_signature: bool = True,
    verify: bool = True,
) -> Mdn:
    """Read an MDN (HTTP Content-Type + body); a signed one must verify with a partner certificate.

    Raises `AuthenticationFailed` for a bad signature or an unsigned MDN when one is required,
    `MalformedMessage` for anything that is not an MDN. With ``verify=False`` the signature is not
    checked (to learn which message an untrustworthy MDN is about).
    """
    entity = mime.parse(b"Content-Type: " + content_type.encode("latin-1") + CRLF + CRLF + body)
    signed = False
    if entity.content_type == "multipart/signed":
        parts = mime.split_multipart(entity)
        if len(parts) != 2:
            raise MalformedMessage(f"signed MDN with {len(parts)} parts instead of 2")
        signature = mime.parse(parts[1])
        if signature.content_type not in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
            raise MalformedMessage(f"signed MDN: unexpected signature type {signature.content_type}")
        if verify:
            cms.verify_detached(parts[0], mime.decoded_body(signature), list(partner_certs))
        signed = True
        entity = mime.parse(parts[0])
    elif require_signature and verify:
        raise AuthenticationFailed(f"the MDN is not signed ({entity.content_type})")
    if entity.content_type != "multipart/report":
        raise MalformedMessage(f"not an MDN: {entity.content_type}")
    notification = None
    for part in mime.split_multipart(entity):
        p = mime.parse(part)
        if p.content_type == "message/disposition-notification":
            notification = mime.decoded_body(p)
            break
    if notification is None:
        raise MalformedMessage("MDN without a message/disposition-notification part")
    fields = {k.lower(): v for k, v in mime.parse(notification.strip() + CRLF).headers}
    disposition = fields.get("disposition", "")
    if ";" in disposition:
        disposition = disposition.split(";", 1)[1]
    mic = mic_digest = None
    if fields.get("received-content-mic"):
        value, _, label = fields["received-content-mic"].partition(",")
        mic = value.strip()
        try:
            mic_digest = cms.normalise_digest(label.strip()) if label.strip() else None
        except (ValueError, As2CryptoError):
            mic_digest = None
    return Mdn(
        fields.get("original-message-id", "").strip() or None, disposition.strip(), mic, mic_digest, signed, fields
    )
