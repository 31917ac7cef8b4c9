"""CDAR messages for the tests of what Relais shows of them (relais statuses, the web pages, the metrics).

`message` writes a small real CDAR D22B message by hand (transmission phase 305, as XP Z12-012 profiles it),
independently of Relais's writer; `seed` checks each against the official XSD and schematron
(`validators.cdar.check`), archives it (`archive.put_bytes`) and records it (`Store.cdar_record`) with a flow
and two invoices, the way the pipeline records the messages it sends and receives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from xml.sax.saxutils import escape

from flows.domain.cdar import QDT, RAM, RSM, UDT
from flows.domain.lifecycle import InvoiceStatus
from flows.domain.model import Channel, Flow, Invoice, invoice_id
from flows.store.cdar import CdarLineRecord, CdarRecord, Outcome
from relais.compose import Runtime

SELLER_SIREN = "123456789"


def message(message_id: str, sender: str, recipient: str, lines: Sequence[tuple[str, str, str | None]]) -> bytes:
    """A CDAR message from platform `sender` to platform `recipient` (registration numbers, scheme 0238),
    one ``AcknowledgementDocument`` per (invoice number, status, reason code) of `lines`."""
    docs = []
    for number, status, reason in lines:
        why = f"<ram:ReasonCode>{reason}</ram:ReasonCode>" if reason else ""
        docs.append(
            f"""  <rsm:AcknowledgementDocument>
    <ram:MultipleReferencesIndicator><udt:Indicator>false</udt:Indicator></ram:MultipleReferencesIndicator>
    <ram:TypeCode>305</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="204">20260315103000</udt:DateTimeString></ram:IssueDateTime>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>{escape(number)}</ram:IssuerAssignedID>
      <ram:StatusCode>10</ram:StatusCode>
      <ram:TypeCode>380</ram:TypeCode>
      <ram:FormattedIssueDateTime><qdt:DateTimeString format="102">20260314</qdt:DateTimeString></ram:FormattedIssueDateTime>
      <ram:ProcessConditionCode>{status}</ram:ProcessConditionCode>
      <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">{SELLER_SIREN}</ram:GlobalID><ram:RoleCode>SE</ram:RoleCode></ram:IssuerTradeParty>
      <ram:SpecifiedDocumentStatus>{why}<ram:SequenceNumeric>1</ram:SequenceNumeric></ram:SpecifiedDocumentStatus>
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
"""
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{RSM}" xmlns:ram="{RAM}" xmlns:udt="{UDT}" xmlns:qdt="{QDT}">
  <rsm:ExchangedDocumentContext>
    <ram:BusinessProcessSpecifiedDocumentContextParameter><ram:ID>REGULATED</ram:ID></ram:BusinessProcessSpecifiedDocumentContextParameter>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{escape(message_id)}</ram:ID>
    <ram:IssueDateTime><udt:DateTimeString format="204">20260315103000</udt:DateTimeString></ram:IssueDateTime>
    <ram:SenderTradeParty><ram:GlobalID schemeID="0238">{sender}</ram:GlobalID><ram:RoleCode>WK</ram:RoleCode></ram:SenderTradeParty>
    <ram:IssuerTradeParty><ram:Name>Plateforme {sender}</ram:Name><ram:RoleCode>WK</ram:RoleCode></ram:IssuerTradeParty>
    <ram:RecipientTradeParty><ram:GlobalID schemeID="0238">{recipient}</ram:GlobalID><ram:RoleCode>WK</ram:RoleCode></ram:RecipientTradeParty>
  </rsm:ExchangedDocument>
{"".join(docs)}</rsm:CrossDomainAcknowledgementAndResponse>
""".encode()


@dataclasses.dataclass
class Seeded:
    flow: Flow
    invoices: list[Invoice]
    sent: CdarRecord  # out, to op-a, queued: 200 for the first invoice, 213 DOUBLON for the second
    not_sent: CdarRecord  # out, to op-b: failed the schematron, an incident
    received: CdarRecord  # in, from op-b: 202 applied, a line about an unknown invoice refused (RLS-C02)
    data: dict[int, bytes]  # the archived bytes of each message, by record id


def _record(rt: Runtime, rec: CdarRecord, data: bytes, seen: dict[int, bytes]) -> CdarRecord:
    from validators.cdar import check

    assert check(data) == [], f"the test's CDAR message {rec.message_id} is not valid"
    rec.sha256 = rt.archive.put_bytes(data).sha256
    stored, inserted = rt.store.cdar_record(rec)
    assert inserted and stored.id is not None
    seen[stored.id] = data
    return stored


def seed(rt: Runtime) -> Seeded:
    store = rt.store
    flow = store.create_flow(
        Flow(id="", partner="op-a", channel=Channel.FOLDER, original_name="lot.xml", size=10, sha256="ab" * 32)
    )
    invoices = [
        Invoice(
            id=invoice_id(flow.id, n),
            flow_id=flow.id,
            position=n,
            entry_name=f"inv_{n}.xml",
            status=InvoiceStatus.DEPOSEE if n == 1 else InvoiceStatus.REJETEE,
            number=f"INV-00000{n}",
            type_code="380",
            supplier_id="12345678900012",
            supplier_id_type="1",
            buyer_siret="98765432100011",
            issue_date=dt.date(2026, 3, 14),
        )
        for n in (1, 2)
    ]
    store.save_invoices(invoices, [])
    seen: dict[int, bytes] = {}
    one, two = invoices
    sent = _record(
        rt,
        CdarRecord(
            direction="out",
            message_id="RLS-CDAR-0001",
            issuer="0238:9998",
            sha256="",
            outcome=Outcome.QUEUED,
            partner="op-a",
            flow_id=flow.id,
            return_id="CR-0001",
            lines=[
                CdarLineRecord(1, one.number or "", "200", "written", invoice_id=one.id),
                CdarLineRecord(2, two.number or "", "213", "written", invoice_id=two.id, reason_code="DOUBLON"),
            ],
        ),
        message(
            "RLS-CDAR-0001", "9998", "0042", [(one.number or "", "200", None), (two.number or "", "213", "DOUBLON")]
        ),
        seen,
    )
    not_sent = _record(
        rt,
        CdarRecord(
            direction="out",
            message_id="RLS-CDAR-0002",
            issuer="0238:9998",
            sha256="",
            outcome=Outcome.REFUSED_OUT,
            partner="op-b",
            detail="BR-FR-CDV-14 : le motif est obligatoire",
            lines=[CdarLineRecord(1, one.number or "", "201", "written", invoice_id=one.id)],
        ),
        message("RLS-CDAR-0002", "9998", "0043", [(one.number or "", "201", None)]),
        seen,
    )
    received = _record(
        rt,
        CdarRecord(
            direction="in",
            message_id="PB-7781",
            issuer="0238:0043",
            sha256="",
            outcome=Outcome.PARTIAL,
            partner="op-b",
            lines=[
                CdarLineRecord(1, one.number or "", "202", "applied", invoice_id=one.id),
                CdarLineRecord(2, "INV-999999", "202", "refused", rule="RLS-C02"),
            ],
        ),
        message("PB-7781", "0043", "9998", [(one.number or "", "202", None), ("INV-999999", "202", None)]),
        seen,
    )
    return Seeded(flow, invoices, sent, not_sent, received, seen)
