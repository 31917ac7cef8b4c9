"""Pieces of billing frameworks for the tests: the generator's invoices with BT-23, BT-25 and BG-24 actors.

`piece` edits a generated UBL or CII invoice (`relais.generate`) where docs/billing-frameworks.md says a
piece names its framework, its previous piece and its actors, in the order each schema wants;
`facturx` wraps such a CII into a Factur-X PDF.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from lxml import etree

from relais import generate as gen
from relais.generate.documents import _blank_pdf

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"


def _el(ns: str, tag: str, text: str | None = None, *children: etree._Element) -> etree._Element:
    e = etree.Element(f"{{{ns}}}{tag}")
    e.text = text
    e.extend(children)
    return e


def piece(
    xml: bytes, *, framework: str | None = None, previous: str | None = None, actors: Mapping[str, str] = {}
) -> bytes:
    """`xml` (a generated UBL or CII invoice) naming `framework` (BT-23), `previous` (BT-25) and `actors`
    (role -> SIRET: supporting documents, BG-24)."""
    root = etree.fromstring(xml)
    if root.tag == f"{{{RSM}}}CrossIndustryInvoice":
        _cii(root, framework, previous, actors)
    else:
        _ubl(root, framework, previous, actors)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _ubl(root: etree._Element, framework: str | None, previous: str | None, actors: Mapping[str, str]) -> None:
    if framework is not None:
        root.find(f"{{{CBC}}}CustomizationID").addnext(_el(CBC, "ProfileID", framework))
    supplier = root.find(f"{{{CAC}}}AccountingSupplierParty")
    if previous is not None:
        ref = _el(CAC, "BillingReference", None, _el(CAC, "InvoiceDocumentReference", None, _el(CBC, "ID", previous)))
        supplier.addprevious(ref)
    for role, siret in actors.items():
        supplier.addprevious(
            _el(CAC, "AdditionalDocumentReference", None, _el(CBC, "ID", siret), _el(CBC, "DocumentDescription", role))
        )


def _cii(root: etree._Element, framework: str | None, previous: str | None, actors: Mapping[str, str]) -> None:
    if framework is not None:
        context = root.find(f"{{{RSM}}}ExchangedDocumentContext")
        context.insert(0, _el(RAM, "BusinessProcessSpecifiedDocumentContextParameter", None, _el(RAM, "ID", framework)))
    tx = root.find(f"{{{RSM}}}SupplyChainTradeTransaction")
    agreement = tx.find(f"{{{RAM}}}ApplicableHeaderTradeAgreement")
    for role, siret in actors.items():
        agreement.append(
            _el(
                RAM,
                "AdditionalReferencedDocument",
                None,
                _el(RAM, "IssuerAssignedID", siret),
                _el(RAM, "TypeCode", "916"),
                _el(RAM, "Name", role),
            )
        )
    if previous is not None:
        settlement = tx.find(f"{{{RAM}}}ApplicableHeaderTradeSettlement")
        settlement.append(_el(RAM, "InvoiceReferencedDocument", None, _el(RAM, "IssuerAssignedID", previous)))


def facturx(cii: bytes) -> bytes:
    """A Factur-X (EN 16931) PDF carrying this CII invoice."""
    from facturx import generate_from_binary

    return generate_from_binary(_blank_pdf(), cii, flavor="factur-x", level="en16931", check_xsd=False)


def spec_for(recipient: gen.Recipient | None = None, *, seed: int = 1, **changes: object) -> gen.InvoiceSpec:
    """A valid invoice spec (to `recipient` when given), with `changes` (``number=``...)."""
    recipients = gen.sample_directory() if recipient is None else [recipient]
    spec = next(s for s in gen.plan(20, 1, recipients, seed=seed) if not s.defect)
    return dataclasses.replace(spec, **changes)
