"""Read a received CDAR D22B lifecycle message into `flows.domain.cdar.Message` (docs/reform.md §2).

The bytes are parsed by `flows.io.safexml` like any received XML (no DTD, no entity, bounded sizes: a hostile
document is refused with its RLS-T rule, `Rejected`). Every ``rsm:AcknowledgementDocument`` and every
``ram:ReferenceReferencedDocument`` in it gives one `StatusLine`, in document order: the invoice (BT-1,
type code, issue date, seller SIREN from its ``IssuerTradeParty``), the status (``ProcessConditionCode``),
and from its ``SpecifiedDocumentStatus`` the reason code and text, the requested action and the amounts
(``SpecifiedDocumentCharacteristic``: 212's ``MEN`` per VAT rate). The reader assumes nothing the XSD and the
schematron do not require: a message they accept always reads; one they do not accept may still read (what
is missing is None), and `CdarUnreadable` says what could not be read at all.

>>> from flows.domain.cdar import RSM, RAM, UDT
>>> msg = read(('<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="%s" xmlns:ram="%s" xmlns:udt="%s">'
...   '<rsm:ExchangedDocument><ram:ID>M1</ram:ID>'
...   '<ram:IssueDateTime><udt:DateTimeString format="204">20260301101500</udt:DateTimeString></ram:IssueDateTime>'
...   '<ram:SenderTradeParty><ram:GlobalID schemeID="0238">0042</ram:GlobalID><ram:RoleCode>WK</ram:RoleCode>'
...   '</ram:SenderTradeParty><ram:RecipientTradeParty><ram:RoleCode>WK</ram:RoleCode></ram:RecipientTradeParty>'
...   '</rsm:ExchangedDocument><rsm:AcknowledgementDocument><ram:ReferenceReferencedDocument>'
...   '<ram:IssuerAssignedID>F-1</ram:IssuerAssignedID><ram:ProcessConditionCode>205</ram:ProcessConditionCode>'
...   '</ram:ReferenceReferencedDocument></rsm:AcknowledgementDocument>'
...   '</rsm:CrossDomainAcknowledgementAndResponse>' % (RSM, RAM, UDT)).encode())
>>> msg.message_id, msg.sender.global_id, msg.issued_at.isoformat(), [(l.invoice_number, l.status) for l in msg.lines]
('M1', '0042', '2026-03-01T10:15:00+00:00', [('F-1', '205')])
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from lxml import etree

from flows.domain.cdar import QDT, RAM, RSM, UDT, Amount, Message, Party, StatusLine
from flows.domain.errors import RelaisError
from flows.io import safexml

_NS = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}


class CdarUnreadable(RelaisError, ValueError):
    """The document is well-formed XML but no CDAR message can be read from it (e.g. no ``ExchangedDocument``)."""


def read(data: bytes | etree._ElementTree, limits: safexml.XmlLimits | None = None) -> Message:
    """The `Message` of a CDAR document (bytes read with `flows.io.safexml`, or a tree parsed by it).
    Raises `flows.domain.errors.Rejected` for hostile or malformed XML, `CdarUnreadable` for a document
    that is no CDAR message."""
    tree = safexml.parse(bytes(data), limits=limits or safexml.XmlLimits()) if isinstance(data, bytes) else data
    root = tree.getroot()
    if etree.QName(root) != etree.QName(RSM, "CrossDomainAcknowledgementAndResponse"):
        raise CdarUnreadable(f"root element <{root.tag}> is not a CDAR message")
    doc = _first(root, "rsm:ExchangedDocument")
    if doc is None:
        raise CdarUnreadable("no rsm:ExchangedDocument")
    process = _text(root, "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID")
    lines: list[StatusLine] = []
    for ack in root.iterfind("rsm:AcknowledgementDocument", _NS):
        ack_at = _datetime(_first(ack, "ram:IssueDateTime"))
        for ref in ack.iterfind("ram:ReferenceReferencedDocument", _NS):
            lines.append(_line(ref, ack_at, len(lines) + 1))
    return Message(
        message_id=_text(doc, "ram:ID") or "",
        issued_at=_datetime(_first(doc, "ram:IssueDateTime")) or dt.datetime.min.replace(tzinfo=dt.UTC),
        sender=_party(_first(doc, "ram:SenderTradeParty")),
        issuer=_party(_first(doc, "ram:IssuerTradeParty")),
        recipient=_party(_first(doc, "ram:RecipientTradeParty")),
        lines=tuple(lines),
        business_process=process or "",
    )


def _line(ref: etree._Element, ack_at: dt.datetime | None, position: int) -> StatusLine:
    status = _first(ref, "ram:SpecifiedDocumentStatus")
    seller = _party(_first(ref, "ram:IssuerTradeParty"))
    siren = seller.global_id if seller.scheme in (None, "0002", "0009") else None
    buyer = _first(ref, "ram:RecipientTradeParty")
    sequence = _text(status, "ram:SequenceNumeric") if status is not None else None
    return StatusLine(
        invoice_number=_text(ref, "ram:IssuerAssignedID") or "",
        status=_text(ref, "ram:ProcessConditionCode") or "",
        invoice_type_code=_text(ref, "ram:TypeCode") or "380",
        invoice_issue_date=_date(_first(ref, "ram:FormattedIssueDateTime")),
        seller_siren=siren[:9] if siren else None,
        buyer=_party(buyer) if buyer is not None else None,
        reason_code=_text(status, "ram:ReasonCode") if status is not None else None,
        reason=_joined(status, "ram:Reason") if status is not None else None,
        action_code=_text(status, "ram:RequestedActionCode") if status is not None else None,
        amounts=tuple(_amounts(status)) if status is not None else (),
        issued_at=(_datetime(_first(status, "ram:ReferenceDateTime")) if status is not None else None) or ack_at,
        sequence=_int(sequence) or position,
    )


def _amounts(status: etree._Element) -> list[Amount]:
    found = []
    for c in status.iterfind("ram:SpecifiedDocumentCharacteristic", _NS):
        amount_el = _first(c, "ram:ValueAmount")
        amount = _decimal(amount_el.text if amount_el is not None else None)
        if amount is None:
            continue
        currency = (amount_el.get("currencyID") if amount_el is not None else None) or "EUR"
        found.append(Amount(_text(c, "ram:TypeCode") or "", amount, _decimal(_text(c, "ram:ValuePercent")), currency))
    return found


def _party(el: etree._Element | None) -> Party:
    if el is None:
        return Party(role="")
    gid = _first(el, "ram:GlobalID")
    ident = gid if gid is not None else _first(el, "ram:ID")
    return Party(
        role=_text(el, "ram:RoleCode") or "",
        global_id=(ident.text or "").strip() or None if ident is not None else None,
        scheme=ident.get("schemeID") if ident is not None else None,
        name=_text(el, "ram:Name"),
        uri=_text(el, "ram:URIUniversalCommunication/ram:URIID"),
    )


def _first(el: etree._Element | None, path: str) -> etree._Element | None:
    return el.find(path, _NS) if el is not None else None


def _text(el: etree._Element | None, path: str) -> str | None:
    found = _first(el, path)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def _joined(el: etree._Element, path: str) -> str | None:
    texts = [(e.text or "").strip() for e in el.iterfind(path, _NS)]
    return " ".join(t for t in texts if t) or None


def _datetime_string(el: etree._Element | None) -> tuple[str, str | None] | None:
    """(text, format) of a ``udt:DateTimeType`` / ``qdt:FormattedDateTimeType``: its DateTimeString or DateTime."""
    if el is None:
        return None
    for child in el:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local in ("DateTimeString", "DateTime") and (child.text or "").strip():
            return child.text.strip(), child.get("format") if local == "DateTimeString" else "iso"
    return None


def _datetime(el: etree._Element | None) -> dt.datetime | None:
    """A date or date-time (formats 102, 203, 204, 205 and xsd:dateTime); UTC when it gives no offset."""
    found = _datetime_string(el)
    if found is None:
        return None
    text, fmt = found
    patterns = {"102": "%Y%m%d", "203": "%Y%m%d%H%M", "204": "%Y%m%d%H%M%S"}
    try:
        if fmt == "iso" or fmt is None and ("-" in text or "T" in text):
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        elif fmt == "205":
            value = dt.datetime.strptime(text, "%Y%m%d%H%M%S%z")
        else:
            value = dt.datetime.strptime(text, patterns.get(fmt or "", "%Y%m%d"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _date(el: etree._Element | None) -> dt.date | None:
    value = _datetime(el)
    return value.date() if value else None


def _decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal(text.strip()) if text and text.strip() else None
    except InvalidOperation:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(Decimal(text)) if text else None
    except (InvalidOperation, ValueError):
        return None
