"""CII D16B (Factur-X EN 16931 profile) writer."""

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

_CII_OPEN = (
    '<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" '
    'xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100" '
    'xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" '
    'xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">\n'
)


def _cii_date(d: dt.date) -> str:
    return f'<udt:DateTimeString format="102">{d.strftime("%Y%m%d")}</udt:DateTimeString>'


def _cii_party(tag: str, p: _Party, legal_scheme: str, vat: bool) -> str:
    tax = (
        f'<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{vat_number(p.siren)}</ram:ID></ram:SpecifiedTaxRegistration>'
        if vat
        else ""
    )
    return (
        f"<ram:{tag}>"
        f'<ram:GlobalID schemeID="0009">{p.siret}</ram:GlobalID>'
        f"<ram:Name>{_esc(p.name)}</ram:Name>"
        f'<ram:SpecifiedLegalOrganization><ram:ID schemeID="{legal_scheme}">{p.siret}</ram:ID></ram:SpecifiedLegalOrganization>'
        f"<ram:PostalTradeAddress><ram:PostcodeCode>{p.postcode}</ram:PostcodeCode>"
        f"<ram:LineOne>{_esc(p.street)}</ram:LineOne><ram:CityName>{_esc(p.city)}</ram:CityName>"
        "<ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>"
        f'<ram:URIUniversalCommunication><ram:URIID schemeID="0009">{p.siret}</ram:URIID></ram:URIUniversalCommunication>'
        f"{tax}</ram:{tag}>\n"
    )


def _cii_framework(spec: InvoiceSpec) -> str:
    """BT-23, before the guideline (CustomizationID) in the document context."""
    if spec.framework is None:
        return ""
    return (
        "<ram:BusinessProcessSpecifiedDocumentContextParameter>"
        f"<ram:ID>{_esc(spec.framework)}</ram:ID></ram:BusinessProcessSpecifiedDocumentContextParameter>"
    )


def _cii_previous(spec: InvoiceSpec) -> str:
    """BT-25, after the header monetary summation (the XSD's order)."""
    if spec.previous is None:
        return ""
    return (
        "<ram:InvoiceReferencedDocument>"
        f"<ram:IssuerAssignedID>{_esc(spec.previous)}</ram:IssuerAssignedID></ram:InvoiceReferencedDocument>\n"
    )


def _cii(spec: InvoiceSpec) -> str:
    lines = _lines(spec)
    totals = _totals(lines)
    seller = _party(spec.supplier_siret, spec.supplier_name)
    buyer = _party(spec.buyer_siret, _buyer_name(spec))
    due = spec.issue_date + dt.timedelta(days=PAYMENT_DAYS)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        _CII_OPEN,
        "<rsm:ExchangedDocumentContext>",
        _cii_framework(spec),
        "<ram:GuidelineSpecifiedDocumentContextParameter>"
        f"<ram:ID>{CUSTOMIZATION_ID}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>"
        "</rsm:ExchangedDocumentContext>\n",
        "<rsm:ExchangedDocument>",
    ]
    if spec.defect != "xsd-missing-id":
        out.append(f"<ram:ID>{_esc(spec.number)}</ram:ID>")
    out += [
        f"<ram:TypeCode>{381 if spec.credit_note else 380}</ram:TypeCode>",
        f"<ram:IssueDateTime>{_cii_date(spec.issue_date)}</ram:IssueDateTime></rsm:ExchangedDocument>\n",
        "<rsm:SupplyChainTradeTransaction>\n",
    ]
    for i, line in enumerate(lines, 1):
        price = _bad_amount(line.price) if i == 1 and spec.defect == "xsd-amount" else _amount(line.price)
        out.append(
            "<ram:IncludedSupplyChainTradeLineItem>"
            f"<ram:AssociatedDocumentLineDocument><ram:LineID>{i}</ram:LineID></ram:AssociatedDocumentLineDocument>"
            f"<ram:SpecifiedTradeProduct><ram:Name>{_esc(line.name)}</ram:Name></ram:SpecifiedTradeProduct>"
            "<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice>"
            f"<ram:ChargeAmount>{price}</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>"
            "<ram:SpecifiedLineTradeDelivery>"
            f'<ram:BilledQuantity unitCode="C62">{line.quantity}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>'
            "<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode>"
            f"<ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>{VAT_RATE}</ram:RateApplicablePercent>"
            "</ram:ApplicableTradeTax><ram:SpecifiedTradeSettlementLineMonetarySummation>"
            f"<ram:LineTotalAmount>{_amount(line.net)}</ram:LineTotalAmount>"
            "</ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement>"
            "</ram:IncludedSupplyChainTradeLineItem>\n"
        )
    out.append("<ram:ApplicableHeaderTradeAgreement>\n")
    if spec.service_code is not None:
        out.append(f"<ram:BuyerReference>{_esc(spec.service_code)}</ram:BuyerReference>\n")
    out.append(_cii_party("SellerTradeParty", seller, "0002", True))
    out.append(_cii_party("BuyerTradeParty", buyer, "0009", False))
    if spec.ej is not None:
        out.append(
            "<ram:BuyerOrderReferencedDocument>"
            f"<ram:IssuerAssignedID>{_esc(spec.ej)}</ram:IssuerAssignedID></ram:BuyerOrderReferencedDocument>\n"
        )
    for role, siret in spec.supporting:  # BG-24: after BuyerOrderReferencedDocument (the XSD's order)
        out.append(
            f"<ram:AdditionalReferencedDocument><ram:IssuerAssignedID>{_esc(siret)}</ram:IssuerAssignedID>"
            f"<ram:TypeCode>916</ram:TypeCode><ram:Name>{_esc(role)}</ram:Name></ram:AdditionalReferencedDocument>\n"
        )
    out += [
        "</ram:ApplicableHeaderTradeAgreement>\n",
        "<ram:ApplicableHeaderTradeDelivery><ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime>"
        f"{_cii_date(spec.issue_date)}</ram:OccurrenceDateTime></ram:ActualDeliverySupplyChainEvent>"
        "</ram:ApplicableHeaderTradeDelivery>\n",
        "<ram:ApplicableHeaderTradeSettlement>\n",
        f"<ram:InvoiceCurrencyCode>{spec.currency}</ram:InvoiceCurrencyCode>\n",
        "<ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>30</ram:TypeCode>"
        f"<ram:PayeePartyCreditorFinancialAccount><ram:IBANID>{_iban(spec.supplier_siret)}</ram:IBANID>"
        "</ram:PayeePartyCreditorFinancialAccount></ram:SpecifiedTradeSettlementPaymentMeans>\n",
        f"<ram:ApplicableTradeTax><ram:CalculatedAmount>{_amount(totals.vat)}</ram:CalculatedAmount>"
        f"<ram:TypeCode>VAT</ram:TypeCode><ram:BasisAmount>{_amount(totals.lines)}</ram:BasisAmount>"
        f"<ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>{VAT_RATE}</ram:RateApplicablePercent>"
        "</ram:ApplicableTradeTax>\n",
        f"<ram:SpecifiedTradePaymentTerms><ram:Description>Paiement à {PAYMENT_DAYS} jours par virement</ram:Description>"
        f"<ram:DueDateDateTime>{_cii_date(due)}</ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>\n",
        "<ram:SpecifiedTradeSettlementHeaderMonetarySummation>"
        f"<ram:LineTotalAmount>{_amount(totals.lines)}</ram:LineTotalAmount>"
        f"<ram:TaxBasisTotalAmount>{_amount(totals.lines)}</ram:TaxBasisTotalAmount>"
        f'<ram:TaxTotalAmount currencyID="{spec.currency}">{_amount(totals.vat)}</ram:TaxTotalAmount>'
        f"<ram:GrandTotalAmount>{_amount(totals.with_vat)}</ram:GrandTotalAmount>"
        f"<ram:DuePayableAmount>{_amount(totals.with_vat)}</ram:DuePayableAmount>"
        "</ram:SpecifiedTradeSettlementHeaderMonetarySummation>\n",
        _cii_previous(spec),
        "</ram:ApplicableHeaderTradeSettlement>\n",
        "</rsm:SupplyChainTradeTransaction>\n",
        "</rsm:CrossIndustryInvoice>\n",
    ]
    return "".join(out)
