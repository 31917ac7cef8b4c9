"""UBL 2.1 Invoice / CreditNote writer."""

from __future__ import annotations

import datetime as dt

from relais.generate.constants import CUSTOMIZATION_ID, PAYMENT_DAYS, VAT_RATE
from relais.generate.content import (
    _amount,
    _bad_amount,
    _buyer_name,
    _esc,
    _iban,
    _lines,
    _Party,
    _party,
    _totals,
    vat_number,
)
from relais.generate.specs import InvoiceSpec

_UBL_NS = (
    'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
    'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"'
)
_UBL_VAT_CATEGORY = (
    f"<cbc:ID>S</cbc:ID><cbc:Percent>{VAT_RATE}</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>"
)


def _ubl_party(p: _Party, legal_scheme: str, vat: bool) -> str:
    tax = (
        f"<cac:PartyTaxScheme><cbc:CompanyID>{vat_number(p.siren)}</cbc:CompanyID>"
        "<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>\n"
        if vat
        else ""
    )
    name = _esc(p.name)
    return (
        "<cac:Party>\n"
        f'<cbc:EndpointID schemeID="0009">{p.siret}</cbc:EndpointID>\n'
        f'<cac:PartyIdentification><cbc:ID schemeID="0009">{p.siret}</cbc:ID></cac:PartyIdentification>\n'
        f"<cac:PartyName><cbc:Name>{name}</cbc:Name></cac:PartyName>\n"
        f"<cac:PostalAddress><cbc:StreetName>{_esc(p.street)}</cbc:StreetName>"
        f"<cbc:CityName>{_esc(p.city)}</cbc:CityName><cbc:PostalZone>{p.postcode}</cbc:PostalZone>"
        "<cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>\n"
        f"{tax}"
        f"<cac:PartyLegalEntity><cbc:RegistrationName>{name}</cbc:RegistrationName>"
        f'<cbc:CompanyID schemeID="{legal_scheme}">{p.siret}</cbc:CompanyID></cac:PartyLegalEntity>\n'
        "</cac:Party>"
    )


def _ubl_references(spec: InvoiceSpec) -> str:
    """BT-25 (BillingReference) then BG-24 (AdditionalDocumentReference), in the XSD's order (after
    OrderReference, before AccountingSupplierParty, for Invoice and CreditNote alike)."""
    out = []
    if spec.previous is not None:
        out.append(
            "<cac:BillingReference><cac:InvoiceDocumentReference>"
            f"<cbc:ID>{_esc(spec.previous)}</cbc:ID></cac:InvoiceDocumentReference></cac:BillingReference>\n"
        )
    for role, siret in spec.supporting:
        out.append(
            f"<cac:AdditionalDocumentReference><cbc:ID>{_esc(siret)}</cbc:ID>"
            f"<cbc:DocumentDescription>{_esc(role)}</cbc:DocumentDescription></cac:AdditionalDocumentReference>\n"
        )
    return "".join(out)


def _ubl(spec: InvoiceSpec) -> str:
    lines = _lines(spec)
    totals = _totals(lines)
    cur = f'currencyID="{spec.currency}"'
    root, line_tag, qty_tag = (
        ("CreditNote", "CreditNoteLine", "CreditedQuantity")
        if spec.credit_note
        else ("Invoice", "InvoiceLine", "InvoicedQuantity")
    )
    due = spec.issue_date + dt.timedelta(days=PAYMENT_DAYS)
    seller = _party(spec.supplier_siret, spec.supplier_name)
    buyer = _party(spec.buyer_siret, _buyer_name(spec))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<{root} xmlns="urn:oasis:names:specification:ubl:schema:xsd:{root}-2" {_UBL_NS}>\n',
        f"<cbc:CustomizationID>{CUSTOMIZATION_ID}</cbc:CustomizationID>\n",
    ]
    if spec.framework is not None:  # BT-23: after CustomizationID, before ID (the XSD's order)
        out.append(f"<cbc:ProfileID>{_esc(spec.framework)}</cbc:ProfileID>\n")
    if spec.defect != "xsd-missing-id":
        out.append(f"<cbc:ID>{_esc(spec.number)}</cbc:ID>\n")
    out.append(f"<cbc:IssueDate>{spec.issue_date.isoformat()}</cbc:IssueDate>\n")
    if spec.credit_note:
        out.append("<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>\n")
    else:
        out.append(f"<cbc:DueDate>{due.isoformat()}</cbc:DueDate>\n")
        out.append("<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>\n")
    out.append(f"<cbc:DocumentCurrencyCode>{spec.currency}</cbc:DocumentCurrencyCode>\n")
    if spec.service_code is not None:
        out.append(f"<cbc:BuyerReference>{_esc(spec.service_code)}</cbc:BuyerReference>\n")
    if spec.ej is not None:
        out.append(f"<cac:OrderReference><cbc:ID>{_esc(spec.ej)}</cbc:ID></cac:OrderReference>\n")
    out.append(_ubl_references(spec))
    out += [
        f"<cac:AccountingSupplierParty>{_ubl_party(seller, '0002', True)}</cac:AccountingSupplierParty>\n",
        f"<cac:AccountingCustomerParty>{_ubl_party(buyer, '0009', False)}</cac:AccountingCustomerParty>\n",
        f"<cac:Delivery><cbc:ActualDeliveryDate>{spec.issue_date.isoformat()}</cbc:ActualDeliveryDate></cac:Delivery>\n",
        "<cac:PaymentMeans><cbc:PaymentMeansCode>30</cbc:PaymentMeansCode>"
        f"<cac:PayeeFinancialAccount><cbc:ID>{_iban(spec.supplier_siret)}</cbc:ID></cac:PayeeFinancialAccount>"
        "</cac:PaymentMeans>\n",
        f"<cac:PaymentTerms><cbc:Note>Paiement à {PAYMENT_DAYS} jours par virement</cbc:Note></cac:PaymentTerms>\n",
        f"<cac:TaxTotal><cbc:TaxAmount {cur}>{_amount(totals.vat)}</cbc:TaxAmount>"
        f"<cac:TaxSubtotal><cbc:TaxableAmount {cur}>{_amount(totals.lines)}</cbc:TaxableAmount>"
        f"<cbc:TaxAmount {cur}>{_amount(totals.vat)}</cbc:TaxAmount>"
        f"<cac:TaxCategory>{_UBL_VAT_CATEGORY}</cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal>\n",
        "<cac:LegalMonetaryTotal>"
        f"<cbc:LineExtensionAmount {cur}>{_amount(totals.lines)}</cbc:LineExtensionAmount>"
        f"<cbc:TaxExclusiveAmount {cur}>{_amount(totals.lines)}</cbc:TaxExclusiveAmount>"
        f"<cbc:TaxInclusiveAmount {cur}>{_amount(totals.with_vat)}</cbc:TaxInclusiveAmount>"
        f"<cbc:PayableAmount {cur}>{_amount(totals.with_vat)}</cbc:PayableAmount>"
        "</cac:LegalMonetaryTotal>\n",
    ]
    for i, line in enumerate(lines, 1):
        price = _bad_amount(line.price) if i == 1 and spec.defect == "xsd-amount" else _amount(line.price)
        out.append(
            f"<cac:{line_tag}><cbc:ID>{i}</cbc:ID>"
            f'<cbc:{qty_tag} unitCode="C62">{line.quantity}</cbc:{qty_tag}>'
            f"<cbc:LineExtensionAmount {cur}>{_amount(line.net)}</cbc:LineExtensionAmount>"
            f"<cac:Item><cbc:Name>{_esc(line.name)}</cbc:Name>"
            f"<cac:ClassifiedTaxCategory>{_UBL_VAT_CATEGORY}</cac:ClassifiedTaxCategory></cac:Item>"
            f"<cac:Price><cbc:PriceAmount {cur}>{price}</cbc:PriceAmount></cac:Price></cac:{line_tag}>\n"
        )
    out.append(f"</{root}>\n")
    return "".join(out)
