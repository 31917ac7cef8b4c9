"""Read the routing and accounting facts of an invoice from its XML.

Where Chorus Pro reads them (EN 16931 business terms):
- buyer SIRET: BT-46 buyer id with scheme 0009 (SIRET), else BT-47 buyer legal
  registration id (UBL ``PartyLegalEntity/CompanyID``, CII ``SpecifiedLegalOrganization/ID``);
- service code: BT-10 buyer reference (for the reform's directory: the routing code when BT-49 gives none);
- the reform's directory (docs/reform.md §4): BT-47 when it is a SIREN (``buyer_siren``) and BT-49, the
  buyer's electronic address (``buyer_endpoint``: UBL ``EndpointID``, CII ``URIUniversalCommunication/URIID``);
- commitment number (engagement juridique, EJ): BT-13 purchase order reference;
- supplier id: BT-29 seller id with scheme 0009, else BT-30 seller legal registration id;
- VAT total (BT-110): the document-level VAT amount in the invoice currency (BT-5), not the
  one in the VAT accounting currency (BT-111) whatever their order; the first one when none
  is in BT-5.

`Facts` adds what the platform rules read and the store does not keep: prepaid amount
(BT-113), rounding amount (BT-114), the currencies the document totals are stated in and the
billing framework as written (BT-23, `framework_text`: `flows.domain.frameworks.parse` reads it).

Billing circuits (docs/billing-frameworks.md, section 1): BT-25 (the preceding invoice reference) is
`previous_number`; the actors are supporting documents (BG-24) whose description (BT-123) is their role
(``VALIDEUR`` or ``VALIDEUR_1``, ``VALIDEUR_2``, ``MOE``, ``MOA``) and whose reference (BT-122) is their
SIRET; in CII only the documents of type 916 (``ram:TypeCode``) count. The first document of a role wins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal, InvalidOperation

from lxml import etree

from flows.domain.model import InvoiceFacts, Syntax

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


@dataclasses.dataclass(slots=True, kw_only=True)
class Facts(InvoiceFacts):
    has_attachments: bool = False
    prepaid_amount: Decimal | None = None  # BT-113
    rounding_amount: Decimal | None = None  # BT-114
    total_currencies: tuple[str, ...] = ()  # currencyID of the document totals (BT-109, 112, 113, 114, 115 ...)
    total_vat_currency: str | None = None  # currencyID of the amount read as BT-110
    framework_text: str | None = None  # BT-23 as written (business process type): the billing framework
    buyer_siren: str | None = None  # BT-47 when it is a SIREN (9 digits): the reform's directory routes by it
    buyer_endpoint: str | None = None  # BT-49, the buyer's electronic address (the reform's addressing identifier)


def _x(path: str) -> etree.XPath:
    return etree.XPath(f"string(({path})[1])", namespaces=NS)


def _first_of(preferred: str, fallback: str) -> str:
    """`preferred` when it selects anything, else `fallback` (a union would take document order)."""
    return f"{preferred} | {fallback}[not({preferred})]"


@dataclasses.dataclass(frozen=True)
class _Paths:
    number: etree.XPath
    type_code: etree.XPath
    issue_date: etree.XPath
    supplier_siret: etree.XPath
    supplier_legal: etree.XPath
    buyer_legal: etree.XPath
    buyer_siret_id: etree.XPath
    service_code: etree.XPath
    commitment_number: etree.XPath
    currency: etree.XPath
    total_without_vat: etree.XPath
    total_vat: etree.XPath
    total_with_vat: etree.XPath
    amount_due: etree.XPath
    attachments: etree.XPath
    prepaid_amount: etree.XPath
    rounding_amount: etree.XPath
    total_currencies: etree.XPath
    total_vat_currency: etree.XPath
    framework: etree.XPath
    previous_number: etree.XPath
    actors: etree.XPath  # the supporting documents (BG-24) that may name an actor
    actor_role: etree.XPath  # of one of them: its description (BT-123)
    actor_id: etree.XPath  # its reference (BT-122)
    buyer_endpoint: etree.XPath  # BT-49


_UBL_VAT = _first_of(
    "/*/cac:TaxTotal/cbc:TaxAmount[@currencyID = /*/cbc:DocumentCurrencyCode]", "/*/cac:TaxTotal/cbc:TaxAmount"
)
_UBL_SELLER = "/*/cac:AccountingSupplierParty/cac:Party"
_UBL_BUYER = "/*/cac:AccountingCustomerParty/cac:Party"
_UBL_TOTAL = "/*/cac:LegalMonetaryTotal"
UBL = _Paths(
    number=_x("/*/cbc:ID"),
    type_code=_x("/*/cbc:InvoiceTypeCode | /*/cbc:CreditNoteTypeCode"),
    issue_date=_x("/*/cbc:IssueDate"),
    supplier_siret=_x(f"{_UBL_SELLER}/cac:PartyIdentification/cbc:ID[@schemeID='0009']"),
    supplier_legal=_x(f"{_UBL_SELLER}/cac:PartyLegalEntity/cbc:CompanyID"),
    buyer_legal=_x(f"{_UBL_BUYER}/cac:PartyLegalEntity/cbc:CompanyID"),
    buyer_siret_id=_x(f"{_UBL_BUYER}/cac:PartyIdentification/cbc:ID[@schemeID='0009']"),
    service_code=_x("/*/cbc:BuyerReference"),
    commitment_number=_x("/*/cac:OrderReference/cbc:ID"),
    currency=_x("/*/cbc:DocumentCurrencyCode"),
    total_without_vat=_x(f"{_UBL_TOTAL}/cbc:TaxExclusiveAmount"),
    total_vat=_x(_UBL_VAT),
    total_with_vat=_x(f"{_UBL_TOTAL}/cbc:TaxInclusiveAmount"),
    amount_due=_x(f"{_UBL_TOTAL}/cbc:PayableAmount"),
    attachments=etree.XPath(
        "boolean(/*/cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject)",
        namespaces=NS,
    ),
    prepaid_amount=_x(f"{_UBL_TOTAL}/cbc:PrepaidAmount"),
    rounding_amount=_x(f"{_UBL_TOTAL}/cbc:PayableRoundingAmount"),
    total_currencies=etree.XPath(f"{_UBL_TOTAL}/*/@currencyID", namespaces=NS),
    total_vat_currency=_x(f"({_UBL_VAT})[1]/@currencyID"),
    framework=_x("/*/cbc:ProfileID"),
    previous_number=_x("/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID"),
    actors=etree.XPath("/*/cac:AdditionalDocumentReference", namespaces=NS),
    actor_role=_x("cbc:DocumentDescription"),
    actor_id=_x("cbc:ID"),
    buyer_endpoint=_x(f"{_UBL_BUYER}/cbc:EndpointID"),
)

_CII_TX = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
_CII_AGREEMENT = f"{_CII_TX}/ram:ApplicableHeaderTradeAgreement"
_CII_SETTLEMENT = f"{_CII_TX}/ram:ApplicableHeaderTradeSettlement"
_CII_SUM = f"{_CII_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_CII_VAT = _first_of(
    f"{_CII_SUM}/ram:TaxTotalAmount[@currencyID = {_CII_SETTLEMENT}/ram:InvoiceCurrencyCode]",
    f"{_CII_SUM}/ram:TaxTotalAmount",
)
CII = _Paths(
    number=_x("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID"),
    type_code=_x("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode"),
    issue_date=_x("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString"),
    supplier_siret=_x(
        f"{_CII_AGREEMENT}/ram:SellerTradeParty/ram:GlobalID[@schemeID='0009']"
        f" | {_CII_AGREEMENT}/ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0009']"
    ),
    supplier_legal=_x(f"{_CII_AGREEMENT}/ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID"),
    buyer_legal=_x(f"{_CII_AGREEMENT}/ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID"),
    buyer_siret_id=_x(f"{_CII_AGREEMENT}/ram:BuyerTradeParty/ram:GlobalID[@schemeID='0009']"),
    service_code=_x(f"{_CII_AGREEMENT}/ram:BuyerReference"),
    commitment_number=_x(f"{_CII_AGREEMENT}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID"),
    currency=_x(f"{_CII_SETTLEMENT}/ram:InvoiceCurrencyCode"),
    total_without_vat=_x(f"{_CII_SUM}/ram:TaxBasisTotalAmount"),
    total_vat=_x(_CII_VAT),
    total_with_vat=_x(f"{_CII_SUM}/ram:GrandTotalAmount"),
    amount_due=_x(f"{_CII_SUM}/ram:DuePayableAmount"),
    attachments=etree.XPath(
        f"boolean({_CII_AGREEMENT}/ram:AdditionalReferencedDocument/ram:AttachmentBinaryObject)",
        namespaces=NS,
    ),
    prepaid_amount=_x(f"{_CII_SUM}/ram:TotalPrepaidAmount"),
    rounding_amount=_x(f"{_CII_SUM}/ram:RoundingAmount"),
    # BT-111 (VAT in accounting currency) is a TaxTotalAmount in another currency by design.
    total_currencies=etree.XPath(f"{_CII_SUM}/*[not(self::ram:TaxTotalAmount)]/@currencyID", namespaces=NS),
    total_vat_currency=_x(f"({_CII_VAT})[1]/@currencyID"),
    framework=_x(
        "/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
        "/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID"
    ),
    previous_number=_x(f"{_CII_SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID"),
    actors=etree.XPath(
        f"{_CII_AGREEMENT}/ram:AdditionalReferencedDocument[normalize-space(ram:TypeCode) = '916']", namespaces=NS
    ),
    actor_role=_x("ram:Name"),
    actor_id=_x("ram:IssuerAssignedID"),
    buyer_endpoint=_x(f"{_CII_AGREEMENT}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID"),
)

#: The role a supporting document names (BT-123, case and spaces aside) -> the `InvoiceFacts` field it fills.
ACTOR_ROLES = {
    "VALIDEUR": "validator_1",
    "VALIDEUR_1": "validator_1",
    "VALIDEUR_2": "validator_2",
    "MOE": "moe_siret",
    "MOA": "moa_siret",
}


def _text(value: object, limit: int = 100) -> str | None:
    text = " ".join(str(value).split())
    return text[:limit] or None


def _amount(value: object) -> Decimal | None:
    text = str(value).strip()
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _date(value: object) -> dt.date | None:
    text = str(value).strip()
    try:
        if len(text) == 8 and text.isdigit():  # CII format 102: YYYYMMDD
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _siret_like(value: str | None) -> str | None:
    return value.replace(" ", "") if value else None


def _actors(p: _Paths, root: etree._Element) -> dict[str, str | None]:
    """The circuit's actors the supporting documents name: `ACTOR_ROLES` field -> SIRET (the first wins).

    >>> doc = etree.fromstring(
    ...     '<Invoice xmlns:cac="%s" xmlns:cbc="%s"><cac:AdditionalDocumentReference><cbc:ID>356 000 000 00048</cbc:ID>'
    ...     '<cbc:DocumentDescription> valideur </cbc:DocumentDescription></cac:AdditionalDocumentReference></Invoice>'
    ...     % (NS["cac"], NS["cbc"]))
    >>> _actors(UBL, doc)
    {'validator_1': '35600000000048'}
    """
    found: dict[str, str | None] = {}
    for doc in p.actors(root):
        role = "_".join(str(p.actor_role(doc)).upper().split())
        field = ACTOR_ROLES.get(role)
        if field is not None and field not in found:
            found[field] = _siret_like(_text(p.actor_id(doc)))
    return found


def extract(syntax: Syntax, tree: etree._ElementTree) -> Facts:
    """Facts of a parsed invoice; a missing or malformed value is None, never an exception."""
    p = CII if syntax in (Syntax.CII, Syntax.FACTURX) else UBL
    root = tree.getroot() if hasattr(tree, "getroot") else tree
    supplier_siret = _text(p.supplier_siret(root))
    supplier_id = supplier_siret or _text(p.supplier_legal(root))
    supplier_type = None
    if supplier_id:
        digits = supplier_id.replace(" ", "")
        supplier_type = "1" if supplier_siret or (len(digits) == 14 and digits.isdigit()) else "2"
    buyer = _siret_like(_text(p.buyer_siret_id(root))) or _siret_like(_text(p.buyer_legal(root)))
    facts = Facts(
        number=_text(p.number(root), 200),
        type_code=_text(p.type_code(root), 10),
        issue_date=_date(p.issue_date(root)),
        supplier_id=supplier_id,
        supplier_id_type=supplier_type,
        buyer_siret=buyer,
        service_code=_text(p.service_code(root)),
        commitment_number=_text(p.commitment_number(root)),
        currency=_text(p.currency(root), 3),
        total_without_vat=_amount(p.total_without_vat(root)),
        total_vat=_amount(p.total_vat(root)),
        total_with_vat=_amount(p.total_with_vat(root)),
        amount_due=_amount(p.amount_due(root)),
        has_attachments=bool(p.attachments(root)),
        prepaid_amount=_amount(p.prepaid_amount(root)),
        rounding_amount=_amount(p.rounding_amount(root)),
        total_vat_currency=_text(p.total_vat_currency(root), 3),
        total_currencies=tuple(sorted({" ".join(str(c).split())[:3] for c in p.total_currencies(root)} - {""})),
        framework_text=_text(p.framework(root)),
        previous_number=_text(p.previous_number(root), 200),
        buyer_endpoint=_text(p.buyer_endpoint(root), 125),
    )
    legal = _siret_like(_text(p.buyer_legal(root)))
    if legal and len(legal) == 9 and legal.isdigit():
        facts.buyer_siren = legal
    for field, siret in _actors(p, root).items():
        setattr(facts, field, siret)
    return facts
