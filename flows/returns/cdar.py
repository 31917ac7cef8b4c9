"""Write a CDAR lifecycle message: UN/CEFACT CDAR D22B as AFNOR XP Z12-012 (v1.4) profiles it.

`write` turns a `flows.domain.cdar.Message` into bytes (lxml, elements in the XSD's order, the ``rsm``,
``ram``, ``udt``, ``qdt`` prefixes): the context (business process ``REGULATED``, guideline
``urn.cpro.gouv.fr:1p0:CDV:invoice``), the message (id, issue time, sender / issuer / recipient), then one
``rsm:AcknowledgementDocument`` per `StatusLine`: its phase (305 transmission / 23 processing), when the
status happened, and the invoice it is about (BT-1, type code, issue date, seller ``SE`` by SIREN ``0002``,
status code and label, ``SpecifiedDocumentStatus`` with reason code and text, action code, sequence number
and, for 212, the amounts cashed per VAT rate ``MEN``).

The writer refuses (`CdarRefused`, before writing anything) what the official schematron would refuse
and the values can tell: a status outside BR-FR-CDV-CL-06, a reason missing where BR-FR-CDV-15 requires
one or not in the status's BR-FR-CDV-CL-09 list, an action outside CL-10, a 212 without its amounts, a
message mixing the two phases (BR-FR-CDV-CL-03 wants the issuer ``WK`` for 305 and not ``WK`` for 23).
Everything else is `validators.cdar.check`'s: every message is checked before it leaves.

>>> import datetime as dt
>>> from flows.domain.cdar import Message, Party, StatusLine
>>> relais = Party("WK", "9998", "0238", "Relais")
>>> line = StatusLine("F-1", "213", invoice_issue_date=dt.date(2026, 9, 1), seller_siren="123456789",
...                   reason_code="DOUBLON")
>>> data = write(Message("M1", dt.datetime(2026, 9, 2, 8, 0, tzinfo=dt.UTC), relais, relais,
...                      Party("WK", "0042", "0238"), (line,)))
>>> root = etree.fromstring(data)
>>> root.findtext("rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:SpecifiedDocumentStatus/"
...               "ram:Reason", namespaces=NSMAP)
'Facture en doublon'
>>> write(Message("M2", dt.datetime(2026, 9, 2, tzinfo=dt.UTC), relais, relais, relais,
...               (StatusLine("F-1", "213", reason_code="JUSTIF_ABS"),)))
Traceback (most recent call last):
    ...
flows.returns.cdar.CdarRefused: line 1 (F-1): reason 'JUSTIF_ABS' may not accompany status 213
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from lxml import etree

from flows.domain.cdar import (
    ACTION_CODES,
    GUIDELINE,
    KNOWN_STATUS_CODES,
    QDT,
    RAM,
    REASON_REQUIRED,
    RSM,
    STATUSES,
    UDT,
    Message,
    Party,
    Phase,
    StatusLine,
    reason_allowed,
    reason_label,
)
from flows.domain.errors import RelaisError

NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}


class CdarRefused(RelaisError, ValueError):
    """A message the official artefacts would refuse, seen from its values: nothing is written."""


def file_name(message_id: str) -> str:
    """The name a CDAR message is sent under: ``CDAR_<id>.xml`` ([choice]: the texts name no file).

    >>> file_name("ST000000000042")
    'CDAR_ST000000000042.xml'
    """
    return f"CDAR_{message_id}.xml"


def refusal(message: Message) -> str | None:
    """Why the official artefacts would refuse `message` (None: nothing the values can tell)."""
    if not message.lines:
        return "a CDAR message has at least one status line"
    phases = {line.phase for line in message.lines}
    if len(phases) > 1:
        return "a message holds one phase only (BR-FR-CDV-CL-03: issuer WK for 305, not WK for 23)"
    for position, line in enumerate(message.lines, 1):
        why = line_refusal(line)
        if why:
            return f"line {position} ({line.invoice_number}): {why}"
    return None


def line_refusal(line: StatusLine) -> str | None:
    """Why one status line would be refused (None: it would not)."""
    if line.status not in KNOWN_STATUS_CODES:
        return f"unknown status {line.status!r}"
    if line.reason_code is None and line.status in REASON_REQUIRED:
        return f"status {line.status} requires a reason code"
    if line.reason_code is not None and not reason_allowed(line.status, line.reason_code):
        return f"reason {line.reason_code!r} may not accompany status {line.status}"
    if line.action_code is not None and line.action_code not in ACTION_CODES:
        return f"unknown action code {line.action_code!r}"
    if line.status == "212" and (not line.amounts or any(a.vat_rate is None for a in line.amounts)):
        return "status 212 requires the amounts cashed, each with its VAT rate"
    if not line.invoice_number.strip():
        return "no invoice number (BT-1)"
    return None


def write(message: Message, *, language: str = "fr") -> bytes:
    """The message as CDAR D22B bytes (UTF-8, with its declaration); `CdarRefused` when `refusal` says so.

    `language` is that of the labels written where no free text exists (status label, reason label)."""
    why = refusal(message)
    if why:
        raise CdarRefused(why)
    root = etree.Element(_q(RSM, "CrossDomainAcknowledgementAndResponse"), nsmap=NSMAP)
    context = _sub(root, RSM, "ExchangedDocumentContext")
    _id(_sub(context, RAM, "BusinessProcessSpecifiedDocumentContextParameter"), message.business_process)
    _id(_sub(context, RAM, "GuidelineSpecifiedDocumentContextParameter"), GUIDELINE)
    document = _sub(root, RSM, "ExchangedDocument")
    _text(document, RAM, "ID", message.message_id)
    _datetime(_sub(document, RAM, "IssueDateTime"), message.issued_at)
    _party(_sub(document, RAM, "SenderTradeParty"), message.sender)
    _party(_sub(document, RAM, "IssuerTradeParty"), message.issuer)
    _party(_sub(document, RAM, "RecipientTradeParty"), message.recipient)
    for line in message.lines:
        _line(_sub(root, RSM, "AcknowledgementDocument"), line, message.issued_at, language)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _line(ack: etree._Element, line: StatusLine, default_at: dt.datetime, language: str) -> None:
    info = STATUSES.get(line.status)
    _text(ack, RAM, "TypeCode", str(line.phase))
    _datetime(_sub(ack, RAM, "IssueDateTime"), line.issued_at or default_at)
    ref = _sub(ack, RAM, "ReferenceReferencedDocument")
    _text(ref, RAM, "IssuerAssignedID", line.invoice_number)
    _text(ref, RAM, "TypeCode", line.invoice_type_code)
    if line.invoice_issue_date is not None:
        formatted = _sub(ref, RAM, "FormattedIssueDateTime")
        _text(formatted, QDT, "DateTimeString", line.invoice_issue_date.strftime("%Y%m%d")).set("format", "102")
    _text(ref, RAM, "ProcessConditionCode", line.status)
    if info is not None:
        _text(ref, RAM, "ProcessCondition", info.label_en if language == "en" else info.label_fr)
    seller = _sub(ref, RAM, "IssuerTradeParty")
    if line.seller_siren:
        gid = _text(seller, RAM, "GlobalID", line.seller_siren)
        if len(line.seller_siren) == 9 and line.seller_siren.isdigit():
            gid.set("schemeID", "0002")
    _text(seller, RAM, "RoleCode", "SE")
    if line.buyer is not None:
        _party(_sub(ref, RAM, "RecipientTradeParty"), line.buyer)
    status = _sub(ref, RAM, "SpecifiedDocumentStatus")
    if line.reason_code:
        _text(status, RAM, "ReasonCode", line.reason_code)
    reason = line.reason or (reason_label(line.reason_code, language) if line.reason_code else None)
    if reason:
        _text(status, RAM, "Reason", reason)
    if line.action_code:
        _text(status, RAM, "RequestedActionCode", line.action_code)
    _text(status, RAM, "SequenceNumeric", str(line.sequence))
    for amount in line.amounts:
        characteristic = _sub(status, RAM, "SpecifiedDocumentCharacteristic")
        _text(characteristic, RAM, "TypeCode", amount.type_code)
        _text(characteristic, RAM, "ValueAmount", _decimal(amount.amount)).set("currencyID", amount.currency)
        if amount.vat_rate is not None:
            _text(characteristic, RAM, "ValuePercent", _decimal(amount.vat_rate))


def _party(element: etree._Element, party: Party) -> None:
    """``TradePartyType`` in the XSD's order: GlobalID, Name, RoleCode, URIUniversalCommunication."""
    if party.global_id:
        gid = _text(element, RAM, "GlobalID", party.global_id)
        if party.scheme:
            gid.set("schemeID", str(party.scheme))
    if party.name:
        _text(element, RAM, "Name", party.name)
    _text(element, RAM, "RoleCode", str(party.role))
    if party.uri:
        _text(_sub(element, RAM, "URIUniversalCommunication"), RAM, "URIID", party.uri)


def _datetime(element: etree._Element, at: dt.datetime) -> None:
    """``udt:DateTimeString`` format 204 (CCYYMMDDHHMMSS), in UTC."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC)
    _text(element, UDT, "DateTimeString", at.strftime("%Y%m%d%H%M%S")).set("format", "204")


def _decimal(value: Decimal) -> str:
    """Two decimals (BR-FR-DEC-01's shape for amounts; rates too).

    >>> _decimal(Decimal("120")), _decimal(Decimal("5.5")), _decimal(Decimal("-3.456"))
    ('120.00', '5.50', '-3.46')
    """
    return str(Decimal(value).quantize(Decimal("0.01")))


def _id(parent: etree._Element, value: str) -> None:
    _text(parent, RAM, "ID", value)


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _sub(parent: etree._Element, ns: str, tag: str) -> etree._Element:
    return etree.SubElement(parent, _q(ns, tag))


def _text(parent: etree._Element, ns: str, tag: str, value: str) -> etree._Element:
    element = _sub(parent, ns, tag)
    element.text = value
    return element


__all__ = ["CdarRefused", "Phase", "file_name", "line_refusal", "refusal", "write"]
