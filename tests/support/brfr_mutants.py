"""Directed mutants for the French BR-FR rules (issue 24): one table entry per assert id.

The generic and assert-directed mutants of `tests.support.mutants` leave most BR-FR asserts seen one way
only: the French bases lack the optional parts the rules look at (agent, payee, invoicee... parties,
referenced invoices, attachments, allowances, product characteristics, special billing frameworks), and a
random change rarely breaks a French format check. Here:

- `RICH_CII` / `RICH_UBL`: edits that give a French generated invoice every such optional part, each
  satisfying its BR-FR asserts (the "rich" base: every assert below is seen passing on it);
- `CII` / `UBL`: per assert id, the edits that make that assert fail on the rich base (``fail``), and,
  when the assert needs a setting the rich base does not have (a billing framework, a document type),
  the edits that set it up (``setup``: the setup alone is a mutant too, on which the assert passes).

An edit is ``(op, xpath, arg)`` on the document, the xpath evaluated with `NS` (the root element is
``/*``):

``set``     the text of every match (``.../@name``: that attribute) becomes ``arg``
``add``     ``arg``, an XML fragment with the usual prefixes, is appended to the first match
``del``     every match is removed
``dup``     the first match is copied right after itself
``copy``    the text of the first match becomes the text of the first match of the xpath ``arg``

An edit whose xpath matches nothing raises (the table must not rot silently). Find an assert with
``grep -n 'BR-FR-09_BT-60' tests/support/brfr_mutants.py``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator

from lxml import etree

from tests.support.mutants import NS as _NS
from tests.support.mutants import Document, Mutant, _mutant

NS = {**_NS, "ubl": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"}
Edit = tuple[str, str, str]
CII_BASE = "gen:cii-fr-inv:3l:s2"
UBL_BASE = "gen:ubl-fr-inv:3l:s2"
_DECL = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items())


@dataclasses.dataclass(frozen=True)
class Directed:
    rule: str  # the assert id (several asserts may share it: all of them are aimed at)
    fail: tuple[Edit, ...]
    setup: tuple[Edit, ...] = ()


def apply(root: etree._Element, edits: tuple[Edit, ...] | list[Edit]) -> None:
    for op, xpath, arg in edits:
        found = root.xpath(xpath, namespaces=NS)
        if not found:
            raise LookupError(f"{op} {xpath}: no match")
        if op == "set":
            for node in found:
                if isinstance(node, etree._Element):
                    node.text = arg
                else:  # an attribute result
                    node.getparent().set(node.attrname, arg)
        elif op == "add":
            for el in etree.fromstring(f"<w {_DECL}>{arg}</w>"):
                found[0].append(el)
        elif op == "del":
            for node in found:
                node.getparent().remove(node)
        elif op == "dup":
            found[0].addnext(copy.deepcopy(found[0]))
        elif op == "copy":
            found[0].text = root.xpath(arg, namespaces=NS)[0].text
        else:
            raise ValueError(op)


def _shown(edits: tuple[Edit, ...]) -> str:
    return "; ".join(f"{op} {x}" + (f"={a[:30]!r}" if op in ("set", "copy") else "") for op, x, a in edits)


def directed(base: Document, rich: tuple[Edit, ...], table: tuple[Directed, ...]) -> Iterator[Mutant]:
    """The rich base, then per entry its setup (when any) and its failing change."""
    root0 = etree.fromstring(base.xml)
    apply(root0, rich)
    yield _mutant(base, root0, "br-fr rich base")
    for d in table:
        root = copy.deepcopy(root0)
        if d.setup:
            apply(root, d.setup)
            yield _mutant(base, copy.deepcopy(root), f"br-fr setup: {_shown(d.setup)}")
        apply(root, d.fail)
        yield _mutant(base, root, f"br-fr {d.rule}: {_shown(d.setup + d.fail)}")


# ---- CII ------------------------------------------------------------------------------------------------------

_AGR = "//ram:ApplicableHeaderTradeAgreement"
_SET = "//ram:ApplicableHeaderTradeSettlement"
_DEL = "//ram:ApplicableHeaderTradeDelivery"
_SUM = f"{_SET}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_L1 = "//ram:IncludedSupplyChainTradeLineItem[1]"
_L2 = "//ram:IncludedSupplyChainTradeLineItem[2]"
_BP = "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID"
_DOC = "/*/rsm:ExchangedDocument"


def _cii_party(tag: str, n: int) -> str:
    siren = f"97002155{n}"
    return (
        f"<ram:{tag}><ram:GlobalID schemeID='0009'>{siren}00017</ram:GlobalID><ram:Name>Partie {n}</ram:Name>"
        f"<ram:SpecifiedLegalOrganization><ram:ID schemeID='0002'>{siren}</ram:ID></ram:SpecifiedLegalOrganization>"
        f"<ram:URIUniversalCommunication><ram:URIID schemeID='0225'>{siren}_{tag[:6]}</ram:URIID>"
        f"</ram:URIUniversalCommunication></ram:{tag}>"
    )


_REF_DOC = (
    "<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>FA-2025-001</ram:IssuerAssignedID><ram:TypeCode>380"
    "</ram:TypeCode><ram:FormattedIssueDateTime><qdt:DateTimeString format='102'>20251201</qdt:DateTimeString>"
    "</ram:FormattedIssueDateTime></ram:InvoiceReferencedDocument>"
)
_PERIOD = (
    "<ram:BillingSpecifiedPeriod><ram:StartDateTime><udt:DateTimeString format='102'>20251201</udt:DateTimeString>"
    "</ram:StartDateTime><ram:EndDateTime><udt:DateTimeString format='102'>20251231</udt:DateTimeString>"
    "</ram:EndDateTime></ram:BillingSpecifiedPeriod>"
)
_ALLOWANCE = (
    "<ram:SpecifiedTradeAllowanceCharge><ram:ChargeIndicator><udt:Indicator>false</udt:Indicator></ram:ChargeIndicator>"
    "<ram:BasisAmount>100.00</ram:BasisAmount><ram:ActualAmount>0.00</ram:ActualAmount><ram:Reason>Remise</ram:Reason>"
    "<ram:CategoryTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode>"
    "<ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:CategoryTradeTax></ram:SpecifiedTradeAllowanceCharge>"
)


_LINE_ALLOWANCE = (
    "<ram:SpecifiedTradeAllowanceCharge><ram:ChargeIndicator><udt:Indicator>false</udt:Indicator></ram:ChargeIndicator>"
    "<ram:BasisAmount>100.00</ram:BasisAmount><ram:ActualAmount>0.00</ram:ActualAmount><ram:Reason>Remise</ram:Reason>"
    "</ram:SpecifiedTradeAllowanceCharge>"
)


def _ard(code: str, ident: str) -> str:
    return (
        f"<ram:AdditionalReferencedDocument><ram:IssuerAssignedID>{ident}</ram:IssuerAssignedID>"
        f"<ram:TypeCode>130</ram:TypeCode><ram:ReferenceTypeCode>{code}</ram:ReferenceTypeCode>"
        "</ram:AdditionalReferencedDocument>"
    )


#: a French generated CII invoice given every optional part BR-FR looks at, each satisfying its asserts
RICH_CII: tuple[Edit, ...] = (
    (
        "add",
        _DOC,
        "<ram:IncludedNote><ram:Content>B2B</ram:Content><ram:SubjectCode>BAR</ram:SubjectCode></ram:IncludedNote>",
    ),
    ("set", f"{_AGR}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID", "263480543"),
    ("set", f"{_AGR}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID/@schemeID", "0225"),
    ("set", f"{_AGR}/ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID", "970021556"),
    ("set", f"{_AGR}/ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID/@schemeID", "0225"),
    ("add", f"{_AGR}/ram:SellerTradeParty", "<ram:GlobalID schemeID='0224'>SIREN-970021556</ram:GlobalID>"),
    ("add", f"{_AGR}/ram:BuyerTradeParty", "<ram:GlobalID schemeID='0224'>SIREN-263480543</ram:GlobalID>"),
    ("add", f"{_AGR}/ram:BuyerTradeParty", "<ram:GlobalID schemeID='0002'>263480543</ram:GlobalID>"),
    ("add", _AGR, _cii_party("SalesAgentTradeParty", 1) + _cii_party("BuyerAgentTradeParty", 2)),
    ("add", _AGR, _ard("AFL", "AFL-1") + _ard("AVV", "AVV-1")),
    (
        "add",
        _AGR,
        "<ram:AdditionalReferencedDocument><ram:IssuerAssignedID>PJ-1</ram:IssuerAssignedID><ram:TypeCode>916"
        "</ram:TypeCode><ram:Name>RIB</ram:Name></ram:AdditionalReferencedDocument>",
    ),
    ("add", _DEL, _cii_party("ShipToTradeParty", 3)),
    ("add", _SET, _cii_party("InvoiceeTradeParty", 4) + _cii_party("InvoicerTradeParty", 5)),
    ("add", _SET, _cii_party("PayeeTradeParty", 6) + _cii_party("PayerTradeParty", 7)),
    ("add", _SET, _REF_DOC + _PERIOD + _ALLOWANCE),
    (
        "add",
        f"{_SET}/ram:ApplicableTradeTax",
        "<ram:TaxPointDate><udt:DateString format='102'>20260105</udt:DateString></ram:TaxPointDate>",
    ),
    (
        "add",
        _SUM,
        "<ram:AllowanceTotalAmount>0.00</ram:AllowanceTotalAmount><ram:ChargeTotalAmount>0.00</ram:ChargeTotalAmount>",
    ),
    ("add", _SUM, "<ram:TotalPrepaidAmount>0.00</ram:TotalPrepaidAmount><ram:RoundingAmount>0.00</ram:RoundingAmount>"),
    (
        "add",
        f"{_L1}/ram:SpecifiedTradeProduct",
        "<ram:ApplicableProductCharacteristic><ram:TypeCode>COUL</ram:TypeCode><ram:Description>Couleur</ram:Description>"
        "<ram:Value>Bleu</ram:Value></ram:ApplicableProductCharacteristic>",
    ),
    (
        "add",
        f"{_L1}/ram:SpecifiedLineTradeAgreement",
        "<ram:GrossPriceProductTradePrice><ram:ChargeAmount>4.53</ram:ChargeAmount><ram:AppliedTradeAllowanceCharge>"
        "<ram:ChargeIndicator><udt:Indicator>false</udt:Indicator></ram:ChargeIndicator><ram:ActualAmount>0.00"
        "</ram:ActualAmount></ram:AppliedTradeAllowanceCharge></ram:GrossPriceProductTradePrice>",
    ),
    (
        "add",
        f"{_L1}/ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice",
        "<ram:BasisQuantity unitCode='C62'>1</ram:BasisQuantity>",
    ),
    (
        "add",
        f"{_L1}/ram:SpecifiedLineTradeDelivery",
        _cii_party("ShipToTradeParty", 8)
        + "<ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime><udt:DateTimeString "
        "format='102'>20260105</udt:DateTimeString></ram:OccurrenceDateTime></ram:ActualDeliverySupplyChainEvent>",
    ),
    ("add", f"{_L1}/ram:SpecifiedLineTradeSettlement", _REF_DOC + _PERIOD),
    ("add", f"{_L1}/ram:SpecifiedLineTradeSettlement", _LINE_ALLOWANCE),
    ("add", _L1, _ard("AFL", "AFL-L1") + _ard("AVV", "AVV-L1")),
)

_BAD_DATE = "20250230"  # digits (no cast error), but no 30 February
_BAD_ID = "A B"
_LONG = "x" * 130
#: (party path, its id in BR-FR-09 / BR-FR-CO-10, its id in BR-FR-23 / BR-FR-25: None when it has no URIID check)
_RICH_PARTIES = (
    (f"{_AGR}/ram:SalesAgentTradeParty", "EXT-FR-FE-69", "EXT-FR-FE-75"),
    (f"{_AGR}/ram:BuyerAgentTradeParty", "EXT-FR-FE-06", "EXT-FR-FE-12"),
    (f"{_DEL}/ram:ShipToTradeParty", "BT-71", None),
    (f"{_SET}/ram:InvoiceeTradeParty", "EXT-FR-FE-92", "EXT-FR-FE-98"),
    (f"{_SET}/ram:InvoicerTradeParty", "EXT-FR-FE-115", "EXT-FR-FE-121"),
    (f"{_SET}/ram:PayeeTradeParty", "BT-60", "EXT-FR-FE-29"),
    (f"{_SET}/ram:PayerTradeParty", "EXT-FR-FE-46", "EXT-FR-FE-52"),
    (f"{_L1}/ram:SpecifiedLineTradeDelivery/ram:ShipToTradeParty", "EXT-FR-FE-146", None),
)


def _d(rule: str, *fail: Edit, setup: tuple[Edit, ...] = ()) -> Directed:
    return Directed(rule, tuple(fail), setup)


CII: tuple[Directed, ...] = (
    _d("BR-FR-02_BT-1", ("set", f"{_DOC}/ram:ID", _BAD_ID)),
    _d("BR-FR-01_EXT-FR-FE-136", ("set", f"{_L1}//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", "F" * 36)),
    _d("BR-FR-02_EXT-FR-FE-136", ("set", f"{_L1}//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", _BAD_ID)),
    _d("BR-FR-03_BT-2", ("set", f"{_DOC}/ram:IssueDateTime/udt:DateTimeString", _BAD_DATE)),
    _d("BR-FR-03_BT-7", ("set", f"{_SET}/ram:ApplicableTradeTax/ram:TaxPointDate/udt:DateString", _BAD_DATE)),
    _d("BR-FR-03_BT-26", ("set", f"{_SET}/ram:InvoiceReferencedDocument//qdt:DateTimeString", _BAD_DATE)),
    _d("BR-FR-03_BT-73", ("set", f"{_SET}/ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString", _BAD_DATE)),
    _d("BR-FR-03_BT-74", ("set", f"{_SET}/ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString", _BAD_DATE)),
    _d("BR-FR-03_EXT-FR-FE-138", ("set", f"{_L1}//ram:InvoiceReferencedDocument//qdt:DateTimeString", _BAD_DATE)),
    _d("BR-FR-03_EXT-FR-FE-158", ("set", f"{_L1}//ram:ActualDeliverySupplyChainEvent//udt:DateTimeString", "19991231")),
    _d(
        "BR-FR-03_EXT-FR-FE-134",
        ("set", f"{_L1}//ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString", _BAD_DATE),
    ),
    _d(
        "BR-FR-03_EXT-FR-FE-135",
        ("set", f"{_L1}//ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString", _BAD_DATE),
    ),
    _d("BR-FR-04_EXT-FR-FE-02", ("set", f"{_SET}/ram:InvoiceReferencedDocument/ram:TypeCode", "999")),
    _d("BR-FR-04_EXT-FR-FE-137", ("set", f"{_L1}//ram:InvoiceReferencedDocument/ram:TypeCode", "999")),
    _d(
        "BR-FR-06_BT-21_TXD",
        (
            "add",
            _DOC,
            "<ram:IncludedNote><ram:Content>A</ram:Content><ram:SubjectCode>TXD</ram:SubjectCode></ram:IncludedNote>",
        ),
        (
            "add",
            _DOC,
            "<ram:IncludedNote><ram:Content>B</ram:Content><ram:SubjectCode>TXD</ram:SubjectCode></ram:IncludedNote>",
        ),
    ),
    *(
        _d(f"BR-FR-09_{bt}", ("set", f"{p}/ram:GlobalID[@schemeID='0009']", "12345678900011"))
        for p, bt, _ in _RICH_PARTIES
    ),
    _d("BR-FR-11_BT-47", ("set", f"{_AGR}/ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID", "26348054X")),
    _d("BR-FR-15_BT-95_BT-102", ("set", f"{_SET}/ram:SpecifiedTradeAllowanceCharge//ram:CategoryCode", "X")),
    _d("BR-FR-15_BT-95_BT-102_LM", ("set", f"{_SET}/ram:SpecifiedTradeAllowanceCharge//ram:CategoryCode", "L")),
    _d(
        "BR-FR-15_BT-95_BT-151",
        ("set", f"{_L2}/ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", "X"),
    ),
    _d(
        "BR-FR-15_BT-95_BT-151_LM",
        ("set", f"{_L2}/ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", "M"),
    ),
    _d("BR-FR-17_BT-123", ("set", f"{_AGR}/ram:AdditionalReferencedDocument[ram:TypeCode='916']/ram:Name", "FACTURE")),
    _d(
        "BR-FR-18_BT-123",
        ("set", f"{_AGR}/ram:AdditionalReferencedDocument[ram:TypeCode='916']/ram:Name", "LISIBLE"),
        ("dup", f"{_AGR}/ram:AdditionalReferencedDocument[ram:TypeCode='916']", ""),
    ),
    _d("BR-FR-20_BT-21", ("set", f"{_DOC}/ram:IncludedNote[ram:SubjectCode='BAR']/ram:Content", "B2X")),
    _d("BR-FR-31_BT-21", ("dup", f"{_DOC}/ram:IncludedNote[ram:SubjectCode='BAR']", "")),
    _d(
        "BR-FR-21_BT-49",
        ("set", f"{_AGR}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID/@schemeID", "0009"),
    ),
    _d(
        "BR-FR-22_BT-34",
        ("set", f"{_AGR}/ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID", "123"),
        setup=(("set", f"{_DOC}/ram:TypeCode", "389"),),
    ),
    _d(
        "BR-FR-23_BT-34", ("set", f"{_AGR}/ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID", "970021556 X")
    ),
    _d("BR-FR-23_BT-49", ("set", f"{_AGR}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID", "263480543 X")),
    _d("BR-FR-24_BT-29", ("set", f"{_AGR}/ram:SellerTradeParty/ram:GlobalID[@schemeID='0224']", "SIREN 1")),
    _d("BR-FR-24_BT-46", ("set", f"{_AGR}/ram:BuyerTradeParty/ram:GlobalID[@schemeID='0224']", "SIREN 2")),
    _d("BR-FR-26_BT-29", ("set", f"{_AGR}/ram:SellerTradeParty/ram:GlobalID[@schemeID='0224']", "S" * 101)),
    _d("BR-FR-26_BT-46", ("set", f"{_AGR}/ram:BuyerTradeParty/ram:GlobalID[@schemeID='0224']", "S" * 101)),
    _d("BR-FR-25_BT-34", ("set", f"{_AGR}/ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID", "9" * 126)),
    _d("BR-FR-25_BT-49", ("set", f"{_AGR}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID", "2" * 126)),
    *(
        _d(f"BR-FR-{n}_{bt}", ("set", f"{p}/ram:URIUniversalCommunication/ram:URIID", v))
        for n, v in (("23", "1 2"), ("25", _LONG))
        for p, _, bt in _RICH_PARTIES
        if bt
    ),
    _d("BR-FR-27_BT-160", ("set", f"{_L1}//ram:ApplicableProductCharacteristic/ram:Description", " ")),
    _d("BR-FR-27_EXT-FR-FE-159", ("set", f"{_L1}//ram:ApplicableProductCharacteristic/ram:TypeCode", "")),
    _d(
        "BR-FR-28-Value",
        ("add", f"{_L1}//ram:ApplicableProductCharacteristic", "<ram:ValueMeasure unitCode='KGM'>1</ram:ValueMeasure>"),
    ),
    _d("BR-FR-29_BT-18", ("dup", f"{_AGR}/ram:AdditionalReferencedDocument[ram:ReferenceTypeCode='AFL']", "")),
    _d(
        "BR-FR-29_AFL",
        ("set", f"{_AGR}/ram:AdditionalReferencedDocument[ram:ReferenceTypeCode='AFL']/ram:IssuerAssignedID", ""),
    ),
    _d(
        "BR-FR-29_AVV",
        ("set", f"{_AGR}/ram:AdditionalReferencedDocument[ram:ReferenceTypeCode='AVV']/ram:IssuerAssignedID", " "),
    ),
    _d("BR-FR-30_BT-128", ("dup", f"{_L1}/ram:AdditionalReferencedDocument[ram:ReferenceTypeCode='AVV']", "")),
    _d(
        "BR-FR-30_AFL",
        ("set", f"{_L1}/ram:AdditionalReferencedDocument[ram:ReferenceTypeCode='AFL']/ram:IssuerAssignedID", ""),
    ),
    _d(
        "BR-FR-30_AVV",
        ("set", f"{_L1}/ram:AdditionalReferencedDocument[ram:ReferenceTypeCode='AVV']/ram:IssuerAssignedID", ""),
    ),
    _d("BR-FR-32-GLOBALID", ("set", f"{_AGR}/ram:BuyerTradeParty/ram:GlobalID[@schemeID='0002']", "26348054")),
    _d(
        "BR-FR-CO-03_BT-3",
        ("set", f"{_DOC}/ram:TypeCode", "262"),
    ),
    _d(
        "BR-FR-CO-03_BT-3",
        ("del", f"{_SET}/ram:BillingSpecifiedPeriod", ""),
        setup=(
            ("set", f"{_DOC}/ram:TypeCode", "262"),
            (
                "add",
                _AGR,
                "<ram:ContractReferencedDocument><ram:IssuerAssignedID>CT-1</ram:IssuerAssignedID></ram:ContractReferencedDocument>",
            ),
        ),
    ),
    _d(
        "BR-FR-CO-04_BT-4",
        ("dup", f"{_SET}/ram:InvoiceReferencedDocument", ""),
        setup=(("set", f"{_DOC}/ram:TypeCode", "384"),),
    ),
    _d("BR-FR-CO-08_BT-23", ("set", f"{_DOC}/ram:TypeCode", "386"), setup=(("set", _BP, "B4"),)),
    *(
        _d(
            rule,
            edit,
            setup=(
                ("set", _BP, "B2"),
                ("copy", f"{_SUM}/ram:TotalPrepaidAmount", f"{_SUM}/ram:GrandTotalAmount"),
                ("set", f"{_SUM}/ram:DuePayableAmount", "0.00"),
            ),
        )
        for rule, edit in (
            ("BR-FR-CO-09_BT-23-1", ("set", f"{_SUM}/ram:TotalPrepaidAmount", "1.00")),
            ("BR-FR-CO-09_BT-23-2", ("set", f"{_SUM}/ram:DuePayableAmount", "5.00")),
            ("BR-FR-CO-09_BT-23-3", ("del", f"{_SET}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime", "")),
        )
    ),
    _d("BR-FR-CO-10_BT-29-2", ("dup", f"{_AGR}/ram:SellerTradeParty/ram:GlobalID[@schemeID='0224']", "")),
    _d("BR-FR-CO-10_BT-46-2", ("dup", f"{_AGR}/ram:BuyerTradeParty/ram:GlobalID[@schemeID='0224']", "")),
    *(_d(f"BR-FR-CO-10_{bt}-1", ("add", p, "<ram:GlobalID>X1</ram:GlobalID>")) for p, bt, _ in _RICH_PARTIES),
    *(_d(f"BR-FR-CO-10_{bt}-2", ("dup", f"{p}/ram:GlobalID", "")) for p, bt, _ in _RICH_PARTIES),
    *(
        _d(
            rule,
            edit,
            setup=(
                ("add", f"{_AGR}/ram:SellerTradeParty", "<ram:GlobalID schemeID='0231'>970021556</ram:GlobalID>"),
                (
                    "add",
                    _DOC,
                    "<ram:IncludedNote><ram:Content>MEMBRE_ASSUJETTI_UNIQUE</ram:Content><ram:SubjectCode>TXD</ram:SubjectCode></ram:IncludedNote>",
                ),
                (
                    "add",
                    _AGR,
                    "<ram:SellerTaxRepresentativeTradeParty><ram:Name>Rep</ram:Name><ram:SpecifiedTaxRegistration>"
                    "<ram:ID schemeID='VA'>FR78970021556</ram:ID></ram:SpecifiedTaxRegistration></ram:SellerTaxRepresentativeTradeParty>",
                ),
            ),
        )
        for rule, edit in (
            ("BR-FR-CO-14_BT-29-1", ("set", f"{_DOC}/ram:IncludedNote[ram:SubjectCode='TXD']/ram:Content", "AUTRE")),
            ("BR-FR-CO-15_BT-29-1", ("del", f"{_AGR}/ram:SellerTaxRepresentativeTradeParty", "")),
        )
    ),
    _d("BR-FR-DEC-01_BT-92_BT-99", ("set", f"{_SET}/ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount", "0.001")),
    _d("BR-FR-DEC-01_BT-93_BT-100", ("set", f"{_SET}/ram:SpecifiedTradeAllowanceCharge/ram:BasisAmount", "100.000")),
    _d("BR-FR-DEC-01_BT-106", ("set", f"{_SUM}/ram:LineTotalAmount", "1,00")),
    _d("BR-FR-DEC-01_BT-107", ("set", f"{_SUM}/ram:AllowanceTotalAmount", "0.000")),
    _d("BR-FR-DEC-01_BT-108", ("set", f"{_SUM}/ram:ChargeTotalAmount", "+0")),
    _d("BR-FR-DEC-01_BT-112", ("set", f"{_SUM}/ram:GrandTotalAmount", "1E3")),
    _d("BR-FR-DEC-01_BT-113", ("set", f"{_SUM}/ram:TotalPrepaidAmount", "0.005")),
    _d("BR-FR-DEC-01_BT-114", ("set", f"{_SUM}/ram:RoundingAmount", "0.001")),
    _d(
        "BR-FR-DEC-01_BT-131",
        ("set", f"{_L1}//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount", "181.200"),
    ),
    _d(
        "BR-FR-DEC-01_BT-136_BT-141",
        ("set", f"{_L1}/ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount", ".5"),
    ),
    _d(
        "BR-FR-DEC-01_BT-137_BT-142",
        ("set", f"{_L1}/ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge/ram:BasisAmount", "1."),
    ),
    _d("BR-FR-DEC-02_BT-129", ("set", f"{_L1}//ram:BilledQuantity", "40.00001")),
    _d("BR-FR-DEC-02_BT-149", ("set", f"{_L1}//ram:NetPriceProductTradePrice/ram:BasisQuantity", "1.00001")),
    _d("BR-FR-DEC-03_BT-147", ("set", f"{_L1}//ram:GrossPriceProductTradePrice//ram:ActualAmount", "-1.00")),
    _d("BR-FR-DEC-03_BT-148", ("set", f"{_L1}//ram:GrossPriceProductTradePrice/ram:ChargeAmount", "4.1234567")),
    _d(
        "BR-FR-DEC-04_BT-96_BT-103",
        ("set", f"{_SET}/ram:SpecifiedTradeAllowanceCharge//ram:RateApplicablePercent", "20.001"),
    ),
)

# special billing frameworks (multi-vendor M8/S8/B8, debts B9/S9/M9): the asserts read "not(special) or ...":
# on the rich base (B1) they pass; the setup gives the lines their GROUP / DETAIL status, the change sets the
# framework
_LINE_DOC = "ram:AssociatedDocumentLineDocument"
_GROUPS: tuple[Edit, ...] = (
    ("add", f"{_L1}/{_LINE_DOC}", "<ram:LineStatusReasonCode>GROUP</ram:LineStatusReasonCode>"),
    (
        "add",
        f"{_L2}/{_LINE_DOC}",
        "<ram:ParentLineID>1</ram:ParentLineID><ram:LineStatusReasonCode>DETAIL</ram:LineStatusReasonCode>",
    ),
    (
        "add",
        f"{_L1}/ram:SpecifiedLineTradeAgreement",
        "<ram:ItemSellerTradeParty><ram:Name>Vendeur</ram:Name><ram:SpecifiedLegalOrganization><ram:ID schemeID='0002'>"
        "970021556</ram:ID></ram:SpecifiedLegalOrganization><ram:PostalTradeAddress><ram:CountryID>FR</ram:CountryID>"
        "</ram:PostalTradeAddress></ram:ItemSellerTradeParty>",
    ),
)
CII_SPECIAL: tuple[Directed, ...] = (
    _d(
        "BR-FR-MV-03_EXT-FR-FE-181 BR-FR-MV-05_EXT-FR-FE-BG-12 BR-FR-MV-06_EXT-FR-FE-167 BR-FR-MV-07_BT-128 "
        "BR-FR-MV-08_BT-128 BR-FR-MV-09_EXT-FR-FE-181 BR-FR-MV-11_BT-128 BR-FR-MV-13_BT-3",
        ("set", _BP, "M8"),
        ("set", f"{_DOC}/ram:TypeCode", "389"),
        setup=_GROUPS,
    ),
    _d(
        "BR-FR-MV-01_EXT-FR-FE-163 BR-FR-MV-02_EXT-FR-FE-163",
        ("set", _BP, "S8"),
        ("set", f"{_L1}/{_LINE_DOC}/ram:LineStatusReasonCode", ""),
        setup=_GROUPS,
    ),
    _d(
        "BR-FR-MV-03_BT-128_AFL BR-FR-MV-03_BT-128_AVV",
        ("set", _BP, "B8"),
        ("set", f"{_L1}/ram:SpecifiedLineTradeSettlement/ram:AdditionalReferencedDocument/ram:IssuerAssignedID", ""),
        setup=(*_GROUPS, ("add", f"{_L1}/ram:SpecifiedLineTradeSettlement", _ard("AFL", "F1") + _ard("AVV", "M8"))),
    ),
    _d(
        "BR-FR-MV-03_EXT-FR-FE-164 BR-FR-MV-03_EXT-FR-FE-167 BR-FR-MV-03_EXT-FR-FE-177",
        ("set", _BP, "S8"),
        ("del", f"{_L1}/ram:SpecifiedLineTradeAgreement/ram:ItemSellerTradeParty", ""),
        setup=_GROUPS,
    ),
    _d(
        "BR-FR-MV-03_EXT-FR-FE-182",
        ("set", _BP, "M8"),
        ("add", _SET, "<ram:TaxCurrencyCode>USD</ram:TaxCurrencyCode>"),
        setup=_GROUPS,
    ),
    _d(
        "BR-FR-MV-10_EXT-FR-FE-184",
        ("set", _BP, "M8"),
        (
            "add",
            f"{_L1}//ram:SpecifiedTradeSettlementLineMonetarySummation",
            "<ram:GrandTotalAmount>1.00</ram:GrandTotalAmount>",
        ),
        setup=_GROUPS,
    ),
    _d(
        "BR-FR-MV-12_BT-128",  # an AFL invoice number equal to an earlier IssuerAssignedID (the line's referenced invoice)
        ("set", _BP, "M8"),
        ("add", f"{_L1}/ram:SpecifiedLineTradeSettlement", _ard("AFL", "FA-2025-001")),
        setup=_GROUPS,
    ),
    _d(
        "BR-FR-BD-02_BT-31",
        ("set", _BP, "S9"),
        ("set", f"{_L1}//ram:ItemSellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID", "111111111"),
        setup=_GROUPS,
    ),
    _d(
        "BR-FR-MV-14-EXT-FR-FE-136 BR-FR-MV-14-EXT-FR-FE-138",
        ("set", _BP, "M8"),
        ("del", f"{_L1}/ram:SpecifiedLineTradeSettlement/ram:InvoiceReferencedDocument", ""),
        setup=(*_GROUPS, ("set", f"{_DOC}/ram:TypeCode", "381")),
    ),
    _d(
        "BR-FR-BD-02_EXT-FR-FE-163 BR-FR-BD-02_BT-47 BR-FR-BD-13_BT-3",
        ("set", _BP, "B9"),
        setup=_GROUPS,
    ),
    _d(
        "BR-FR-BD-14-EXT-FR-FE-136 BR-FR-BD-14-EXT-FR-FE-138",
        ("set", _BP, "M9"),
        ("del", f"{_L1}/ram:SpecifiedLineTradeSettlement/ram:InvoiceReferencedDocument", ""),
        setup=(*_GROUPS, ("set", f"{_DOC}/ram:TypeCode", "261")),
    ),
)
