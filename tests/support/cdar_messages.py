"""CDAR D22B lifecycle messages built field by field from the official XSD, for the tests of CDAR in.

Independent of any Relais writer (never `flows.returns.cdar`): the element names, their order and their
namespaces are the XSD's (``schemas/cdar/xsd``: ``CrossDomainAcknowledgementAndResponseType``,
``ExchangedDocumentType``, ``AcknowledgementDocumentType``, ``ReferencedDocumentType``, ``DocumentStatusType``,
``TradePartyType``, ``DocumentCharacteristicType``), the values those XP Z12-012 / BR-FR-CDV asks for.
A processing status (204..212) goes in a message of type 23 whose issuer is the buyer (``BY``) or the seller
(``SE``) and whose sender is the platform (``WK``); a transmission status (202, 203) in a message of type 305
whose sender and issuer are the platform.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from xml.sax.saxutils import escape

RSM = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"

TRANSMISSION = {"200", "201", "202", "203", "213", "221", "501"}


@dataclasses.dataclass
class Line:
    number: str
    status: str
    seller_siren: str = "123456789"
    issue_date: dt.date | None = dt.date(2026, 3, 2)
    reason_code: str | None = None
    reason: str | None = None
    action: str | None = None
    amounts: tuple[tuple[str, str], ...] = ()  # (amount, VAT rate) of a 212's MEN
    type_code: str = "380"


def _e(tag: str, text: str | None = None, **attrs: str) -> str:
    a = "".join(f' {k}="{escape(v)}"' for k, v in attrs.items())
    return f"<{tag}{a}>{escape(text) if text is not None else ''}</{tag}>"


def _party(tag: str, role: str, gid: str | None, scheme: str | None, name: str | None = None) -> str:
    inner = ""
    if gid:
        inner += _e("ram:GlobalID", gid, schemeID=scheme or "0238")
    if name:
        inner += _e("ram:Name", name)
    inner += _e("ram:RoleCode", role)
    return f"<{tag}>{inner}</{tag}>"


def message(
    lines: list[Line],
    *,
    message_id: str = "CDV-0001",
    platform: str = "0042",
    recipient_platform: str = "9998",
    issuer: tuple[str, str, str] | None = None,  # (role, id, scheme): default the buyer (23) or the platform (305)
    buyer_siren: str = "987654321",
    issued_at: dt.datetime = dt.datetime(2026, 3, 5, 10, 15, 0),
    process: str = "REGULATED",
) -> bytes:
    """One CDAR message carrying `lines` (one AcknowledgementDocument each), sent by platform `platform`."""
    phase = "305" if all(line.status in TRANSMISSION for line in lines) else "23"
    if issuer is None:
        issuer = ("WK", platform, "0238") if phase == "305" else ("BY", buyer_siren, "0002")
    stamp = issued_at.strftime("%Y%m%d%H%M%S")
    out = [
        f'<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{RSM}" xmlns:ram="{RAM}" xmlns:udt="{UDT}" xmlns:qdt="{QDT}">'
    ]
    out.append(
        "<rsm:ExchangedDocumentContext>"
        f"<ram:BusinessProcessSpecifiedDocumentContextParameter>{_e('ram:ID', process)}</ram:BusinessProcessSpecifiedDocumentContextParameter>"
        f"<ram:GuidelineSpecifiedDocumentContextParameter>{_e('ram:ID', 'urn.cpro.gouv.fr:1p0:CDV:invoice')}</ram:GuidelineSpecifiedDocumentContextParameter>"
        "</rsm:ExchangedDocumentContext>"
    )
    out.append(
        "<rsm:ExchangedDocument>"
        + _e("ram:ID", message_id)
        + _e("ram:Name", "Statut de facture")
        + _e("ram:TypeCode", phase)
        + f"<ram:IssueDateTime>{_e('udt:DateTimeString', stamp, format='204')}</ram:IssueDateTime>"
        + _party("ram:SenderTradeParty", "WK", platform, "0238", "Plateforme partenaire")
        + _party("ram:IssuerTradeParty", issuer[0], issuer[1], issuer[2])
        + _party("ram:RecipientTradeParty", "WK", recipient_platform, "0238", "Relais")
        + "</rsm:ExchangedDocument>"
    )
    for i, line in enumerate(lines, start=1):
        out.append(_ack(line, i, phase, stamp, buyer_siren))
    out.append("</rsm:CrossDomainAcknowledgementAndResponse>")
    return "".join(out).encode()


def _ack(line: Line, sequence: int, phase: str, stamp: str, buyer_siren: str) -> str:
    status = f"<ram:ReferenceDateTime>{_e('udt:DateTimeString', stamp, format='204')}</ram:ReferenceDateTime>"
    if line.reason_code:
        status += _e("ram:ReasonCode", line.reason_code)
    if line.reason:
        status += _e("ram:Reason", line.reason)
    if line.action:
        status += _e("ram:RequestedActionCode", line.action)
    status += _e("ram:SequenceNumeric", str(sequence))
    for amount, rate in line.amounts:
        status += (
            "<ram:SpecifiedDocumentCharacteristic>"
            + _e("ram:TypeCode", "MEN")
            + _e("ram:ValueAmount", amount, currencyID="EUR")
            + _e("ram:ValuePercent", rate)
            + "</ram:SpecifiedDocumentCharacteristic>"
        )
    date = ""
    if line.issue_date is not None:
        date = f"<ram:FormattedIssueDateTime>{_e('qdt:DateTimeString', line.issue_date.strftime('%Y%m%d'), format='102')}</ram:FormattedIssueDateTime>"
    ref = (
        "<ram:ReferenceReferencedDocument>"
        + _e("ram:IssuerAssignedID", line.number)
        + _e("ram:TypeCode", line.type_code)
        + date
        + _e("ram:ProcessConditionCode", line.status)
        + _party("ram:IssuerTradeParty", "SE", line.seller_siren, "0002")
        + _party("ram:RecipientTradeParty", "BY", buyer_siren, "0002")
        + f"<ram:SpecifiedDocumentStatus>{status}</ram:SpecifiedDocumentStatus>"
        + "</ram:ReferenceReferencedDocument>"
    )
    return (
        "<rsm:AcknowledgementDocument>"
        + _e("ram:TypeCode", phase)
        + f"<ram:IssueDateTime>{_e('udt:DateTimeString', stamp, format='204')}</ram:IssueDateTime>"
        + ref
        + "</rsm:AcknowledgementDocument>"
    )
