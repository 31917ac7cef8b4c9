"""BR-FR directed mutants of a French UBL invoice: the rich base and one entry per assert id (see
`tests.support.brfr_mutants` for the edits and how the mutants are made)."""

from __future__ import annotations

from tests.support.brfr_mutants import Directed, Edit, _d

UBL_BASE = "gen:ubl-fr-inv:3l:s2"
_SUP = "/*/cac:AccountingSupplierParty/cac:Party"
_CUS = "/*/cac:AccountingCustomerParty/cac:Party"
_TOT = "/*/cac:LegalMonetaryTotal"
_L1 = "/*/cac:InvoiceLine[1]"
_L2 = "/*/cac:InvoiceLine[2]"
_HREF = "/*/cac:BillingReference/cac:InvoiceDocumentReference"
_LREF = f"{_L1}/cac:BillingReference/cac:InvoiceDocumentReference"
_DOC_AC = "/*/cac:AllowanceCharge"


def _party(tag: str, n: int, inner: str = "") -> str:
    siren = f"97002155{n}"
    body = (
        f"<cbc:EndpointID schemeID='0225'>{siren}_{n}</cbc:EndpointID><cac:PartyIdentification><cbc:ID schemeID='0009'>"
        f"{siren}00017</cbc:ID></cac:PartyIdentification><cac:PartyLegalEntity><cbc:RegistrationName>Partie {n}"
        f"</cbc:RegistrationName><cbc:CompanyID schemeID='0002'>{siren}</cbc:CompanyID></cac:PartyLegalEntity>"
    )
    return f"<cac:{tag}>{inner.replace('{}', body) if inner else body}</cac:{tag}>"


_REF = (
    "<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>FA-2025-001</cbc:ID><cbc:IssueDate>2025-12-01"
    "</cbc:IssueDate><cbc:DocumentTypeCode>380</cbc:DocumentTypeCode></cac:InvoiceDocumentReference></cac:BillingReference>"
)
_PERIOD = "<cac:InvoicePeriod><cbc:StartDate>2025-12-01</cbc:StartDate><cbc:EndDate>2025-12-31</cbc:EndDate></cac:InvoicePeriod>"
_ALLOWANCE = (
    "<cac:AllowanceCharge><cbc:ChargeIndicator>false</cbc:ChargeIndicator><cbc:AllowanceChargeReason>Remise"
    "</cbc:AllowanceChargeReason><cbc:Amount currencyID='EUR'>0.00</cbc:Amount><cbc:BaseAmount currencyID='EUR'>100.00"
    "</cbc:BaseAmount>{}</cac:AllowanceCharge>"
)
_TAXCAT = "<cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory>"


def _docref(scheme: str, ident: str, tag: str = "AdditionalDocumentReference") -> str:
    return f"<cac:{tag}><cbc:ID schemeID='{scheme}'>{ident}</cbc:ID><cbc:DocumentTypeCode>130</cbc:DocumentTypeCode></cac:{tag}>"


#: (party path, its id in BR-FR-09 / BR-FR-CO-10, its id in BR-FR-23 / BR-FR-25)
_PARTIES = (
    ("/*/cac:PayeeParty", "BT-60", "EXT-FR-FE-29"),
    (f"{_CUS}/cac:AgentParty", "EXT-FR-FE-06", "EXT-FR-FE-12"),
    ("/*/cac:PaymentMeans/cac:PaymentMandate/cac:PayerParty", "EXT-FR-FE-46", "EXT-FR-FE-52"),
    (f"{_SUP}/cac:AgentParty", "EXT-FR-FE-69", "EXT-FR-FE-75"),
    (f"{_CUS}/cac:ServiceProviderParty/cac:Party", "EXT-FR-FE-92", "EXT-FR-FE-98"),
    (f"{_SUP}/cac:ServiceProviderParty/cac:Party", "EXT-FR-FE-115", "EXT-FR-FE-121"),
)

RICH_UBL: tuple[Edit, ...] = (
    ("add", "/*", "<cbc:Note>#BAR#B2B</cbc:Note><cbc:TaxPointDate>2026-01-05</cbc:TaxPointDate>"),
    ("set", f"{_CUS}/cbc:EndpointID", "263480543"),
    ("set", f"{_CUS}/cbc:EndpointID/@schemeID", "0225"),
    ("set", f"{_SUP}/cbc:EndpointID", "970021556"),
    ("set", f"{_SUP}/cbc:EndpointID/@schemeID", "0225"),
    (
        "add",
        _SUP,
        "<cac:PartyIdentification><cbc:ID schemeID='0224'>SIREN-970021556</cbc:ID></cac:PartyIdentification>",
    ),
    (
        "add",
        _CUS,
        "<cac:PartyIdentification><cbc:ID schemeID='0224'>SIREN-263480543</cbc:ID></cac:PartyIdentification>",
    ),
    ("add", _CUS, "<cac:PartyIdentification><cbc:ID schemeID='0002'>263480543</cbc:ID></cac:PartyIdentification>"),
    ("add", _SUP, _party("AgentParty", 1) + _party("ServiceProviderParty", 2, "<cac:Party>{}</cac:Party>")),
    ("add", _CUS, _party("AgentParty", 3) + _party("ServiceProviderParty", 4, "<cac:Party>{}</cac:Party>")),
    ("add", "/*", _party("PayeeParty", 5)),
    ("add", "/*/cac:PaymentMeans", "<cac:PaymentMandate>" + _party("PayerParty", 6) + "</cac:PaymentMandate>"),
    (
        "add",
        "/*/cac:Delivery",
        "<cac:DeliveryLocation><cbc:ID schemeID='0009'>97002155700017</cbc:ID></cac:DeliveryLocation><cac:DeliveryParty>"
        "<cac:PartyLegalEntity><cbc:RegistrationName>Livré</cbc:RegistrationName><cbc:CompanyID schemeID='0002'>"
        "970021557</cbc:CompanyID></cac:PartyLegalEntity></cac:DeliveryParty>",
    ),
    ("add", "/*", _REF + _PERIOD + _docref("AFL", "AFL-1") + _docref("AVV", "AVV-1")),
    (
        "add",
        "/*",
        "<cac:AdditionalDocumentReference><cbc:ID>PJ-1</cbc:ID><cbc:DocumentDescription>RIB</cbc:DocumentDescription>"
        "</cac:AdditionalDocumentReference>",
    ),
    ("add", "/*", _ALLOWANCE.replace("{}", _TAXCAT)),
    ("add", _TOT, "<cbc:AllowanceTotalAmount currencyID='EUR'>0.00</cbc:AllowanceTotalAmount>"),
    ("add", _TOT, "<cbc:ChargeTotalAmount currencyID='EUR'>0.00</cbc:ChargeTotalAmount>"),
    ("add", _TOT, "<cbc:PrepaidAmount currencyID='EUR'>0.00</cbc:PrepaidAmount>"),
    ("add", _TOT, "<cbc:PayableRoundingAmount currencyID='EUR'>0.00</cbc:PayableRoundingAmount>"),
    (
        "add",
        _L1,
        _REF + _PERIOD + _docref("AFL", "AFL-L1", "DocumentReference") + _docref("AVV", "AVV-L1", "DocumentReference"),
    ),
    (
        "add",
        _L1,
        "<cac:Delivery><cbc:ActualDeliveryDate>2026-01-05</cbc:ActualDeliveryDate><cac:DeliveryLocation><cbc:ID "
        "schemeID='0009'>97002155800017</cbc:ID></cac:DeliveryLocation></cac:Delivery>",
    ),
    ("add", _L1, _ALLOWANCE.replace("{}", "")),
    (
        "add",
        f"{_L1}/cac:Item",
        "<cac:AdditionalItemProperty><cbc:Name>Couleur</cbc:Name><cbc:NameCode listID='X'>COUL</cbc:NameCode>"
        "<cbc:Value>Bleu</cbc:Value></cac:AdditionalItemProperty>",
    ),
    ("add", f"{_L1}/cac:Price", "<cbc:BaseQuantity unitCode='C62'>1</cbc:BaseQuantity>" + _ALLOWANCE.replace("{}", "")),
)

_BAD_DATE = "2025-02-30"
_SPECIAL_LINES: tuple[Edit, ...] = (  # line 1 a GROUP sub-invoice of the seller, line 2 a DETAIL of it
    ("set", f"{_LREF}/cbc:ID", "INV-000001"),
    ("add", _LREF, "<cbc:DocumentStatusCode>GROUP</cbc:DocumentStatusCode>"),
    (
        "add",
        f"{_L1}/cac:Item",
        "<cac:ManufacturerParty><cac:PostalAddress><cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode>"
        "</cac:Country></cac:PostalAddress><cac:PartyLegalEntity><cbc:RegistrationName>Vendeur</cbc:RegistrationName>"
        "<cbc:CompanyID>970021556</cbc:CompanyID></cac:PartyLegalEntity></cac:ManufacturerParty>",
    ),
    (
        "add",
        _L2,
        "<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>INV-000001</cbc:ID><cbc:DocumentStatusCode>DETAIL"
        "</cbc:DocumentStatusCode></cac:InvoiceDocumentReference><cac:BillingReferenceLine><cbc:ID>1</cbc:ID>"
        "</cac:BillingReferenceLine></cac:BillingReference>",
    ),
)
_PROFILE = "/*/cbc:ProfileID"

UBL: tuple[Directed, ...] = (
    _d("BR-FR-01_BT-1-2 BR-FR-02_BT-1", ("set", "/*/cbc:ID", "INV 1")),
    _d("BR-FR-01_BT-25-1", ("set", f"{_HREF}/cbc:ID", "F" * 36)),
    _d("BR-FR-01_BT-25-2 BR-FR-02_BT-25", ("set", f"{_HREF}/cbc:ID", "FA 1")),
    _d("BR-FR-01_EXT-FR-FE-136-1", ("set", f"{_LREF}/cbc:ID", "F" * 36)),
    _d("BR-FR-01_EXT-FR-FE-136-2 BR-FR-02_EXT-FR-FE-136", ("set", f"{_LREF}/cbc:ID", "FA 1")),
    _d("BR-FR-03_BT-2", ("set", "/*/cbc:IssueDate", _BAD_DATE)),
    _d("BR-FR-03_BT-7", ("set", "/*/cbc:TaxPointDate", _BAD_DATE)),
    _d("BR-FR-03_BT-9", ("set", "/*/cbc:DueDate", "1999-02-04")),
    _d("BR-FR-03_BT-26", ("set", f"{_HREF}/cbc:IssueDate", _BAD_DATE)),
    _d("BR-FR-03_BT-72", ("set", "/*/cac:Delivery/cbc:ActualDeliveryDate", _BAD_DATE)),
    _d("BR-FR-03_BT-73", ("set", "/*/cac:InvoicePeriod/cbc:StartDate", _BAD_DATE)),
    _d("BR-FR-03_BT-74", ("set", "/*/cac:InvoicePeriod/cbc:EndDate", _BAD_DATE)),
    _d("BR-FR-03_EXT-FR-FE-138", ("set", f"{_LREF}/cbc:IssueDate", _BAD_DATE)),
    _d("BR-FR-03_EXT-FR-FE-158", ("set", f"{_L1}/cac:Delivery/cbc:ActualDeliveryDate", _BAD_DATE)),
    _d("BR-FR-03_BT-134", ("set", f"{_L1}/cac:InvoicePeriod/cbc:StartDate", _BAD_DATE)),
    _d("BR-FR-03_BT-135", ("set", f"{_L1}/cac:InvoicePeriod/cbc:EndDate", _BAD_DATE)),
    _d("BR-FR-04_EXT-FR-FE-02", ("set", f"{_HREF}/cbc:DocumentTypeCode", "999")),
    _d("BR-FR-04_EXT-FR-FE-137", ("set", f"{_LREF}/cbc:DocumentTypeCode", "999")),
    _d("BR-FR-06_BT-21-2", ("add", "/*", "<cbc:Note>#PMD#Encore</cbc:Note>")),
    _d("BR-FR-06_BT-21-3", ("add", "/*", "<cbc:Note>#AAB#Encore</cbc:Note>")),
    _d("BR-FR-06_BT-21-4", ("add", "/*", "<cbc:Note>#TXD#A</cbc:Note><cbc:Note>#TXD#B</cbc:Note>")),
    *(_d(f"BR-FR-09_{bt}", ("set", f"{p}/cac:PartyIdentification/cbc:ID", "12345678900011")) for p, bt, _ in _PARTIES),
    _d("BR-FR-09_BT-71", ("set", "/*/cac:Delivery/cac:DeliveryLocation/cbc:ID", "12345678900011")),
    _d(
        "BR-FR-09_EXT-FR-FE-146",  # its SIRET is read from a DeliveryLocation inside the line's DeliveryLocation
        (
            "add",
            f"{_L1}/cac:Delivery/cac:DeliveryLocation",
            "<cac:DeliveryLocation><cbc:ID schemeID='0009'>1234</cbc:ID></cac:DeliveryLocation>",
        ),
    ),
    _d("BR-FR-11_BT-47", ("set", f"{_CUS}/cac:PartyLegalEntity/cbc:CompanyID", "26348054X")),
    _d("BR-FR-15_BT-95_BT-102-1", ("set", f"{_DOC_AC}/cac:TaxCategory/cbc:ID", "X")),
    _d("BR-FR-15_BT-95_BT-102-2", ("set", f"{_DOC_AC}/cac:TaxCategory/cbc:ID", "L")),
    _d("BR-FR-16_BT-96", ("set", f"{_DOC_AC}/cac:TaxCategory/cbc:Percent", "21")),
    _d("BR-FR-DEC-04_BT-96_BT-103", ("set", f"{_DOC_AC}/cac:TaxCategory/cbc:Percent", "20.001")),
    _d("BR-FR-17_BT-123", ("set", "/*/cac:AdditionalDocumentReference/cbc:DocumentDescription", "FACTURE")),
    _d(
        "BR-FR-18_BT-123",
        ("set", "/*/cac:AdditionalDocumentReference/cbc:DocumentDescription", "LISIBLE"),
        ("dup", "/*/cac:AdditionalDocumentReference[cbc:DocumentDescription]", ""),
    ),
    _d("BR-FR-20_BT-21", ("set", "/*/cbc:Note[starts-with(., '#BAR#')]", "#BAR#B2X")),
    _d("BR-FR-30_BT-21", ("add", "/*", "<cbc:Note>#BAR#B2C</cbc:Note>")),
    _d("BR-FR-21_BT-49", ("set", f"{_CUS}/cbc:EndpointID/@schemeID", "0009")),
    _d("BR-FR-22_BT-34", ("set", f"{_SUP}/cbc:EndpointID", "123"), setup=(("set", "/*/cbc:InvoiceTypeCode", "389"),)),
    _d("BR-FR-23_BT-34", ("set", f"{_SUP}/cbc:EndpointID", "970021556 X")),
    _d("BR-FR-23_BT-49", ("set", f"{_CUS}/cbc:EndpointID", "263480543 X")),
    _d("BR-FR-25_BT-34", ("set", f"{_SUP}/cbc:EndpointID", "9" * 126)),
    _d("BR-FR-25_BT-49", ("set", f"{_CUS}/cbc:EndpointID", "2" * 126)),
    *(_d(f"BR-FR-23_{bt}", ("set", f"{p}/cbc:EndpointID", "1 2")) for p, _, bt in _PARTIES),
    *(_d(f"BR-FR-25_{bt}", ("set", f"{p}/cbc:EndpointID", "x" * 130)) for p, _, bt in _PARTIES),
    _d("BR-FR-24_BT-29", ("set", f"{_SUP}/cac:PartyIdentification/cbc:ID[@schemeID='0224']", "SIREN 1")),
    _d("BR-FR-24_BT-46", ("set", f"{_CUS}/cac:PartyIdentification/cbc:ID[@schemeID='0224']", "SIREN 2")),
    _d("BR-FR-26_BT-29", ("set", f"{_SUP}/cac:PartyIdentification/cbc:ID[@schemeID='0224']", "S" * 101)),
    _d("BR-FR-26_BT-46", ("set", f"{_CUS}/cac:PartyIdentification/cbc:ID[@schemeID='0224']", "S" * 101)),
    _d(
        "BR-FR-27_BT-160 BR-FR-27_EXT-FR-FE-159",  # their context is an Item right under the Invoice (no such place)
        (
            "set",
            "/*/cac:Item/cac:AdditionalItemProperty/cbc:Name | /*/cac:Item/cac:AdditionalItemProperty/cbc:NameCode",
            "",
        ),
        setup=(
            (
                "add",
                "/*",
                "<cac:Item><cac:AdditionalItemProperty><cbc:Name>Couleur</cbc:Name><cbc:NameCode>COUL</cbc:NameCode>"
                "<cbc:Value>Bleu</cbc:Value></cac:AdditionalItemProperty></cac:Item>",
            ),
        ),
    ),
    _d(
        "BR-FR-28-Value",
        (
            "add",
            f"{_L1}/cac:Item/cac:AdditionalItemProperty",
            "<cbc:ValueQuantity unitCode='KGM'>1</cbc:ValueQuantity>",
        ),
    ),
    _d(
        "BR-FR-29_BT-18",
        ("add", "/*/cac:AdditionalDocumentReference[cbc:ID/@schemeID='AFL']", "<cbc:ID schemeID='AFL'>AFL-2</cbc:ID>"),
    ),
    _d("BR-FR-29_AFL", ("set", "/*/cac:AdditionalDocumentReference/cbc:ID[@schemeID='AFL']", "")),
    _d("BR-FR-29_AVV", ("set", "/*/cac:AdditionalDocumentReference/cbc:ID[@schemeID='AVV']", " ")),
    _d(
        "BR-FR-30_BT-128",
        ("add", f"{_L1}/cac:DocumentReference[cbc:ID/@schemeID='AVV']", "<cbc:ID schemeID='AVV'>AVV-2</cbc:ID>"),
    ),
    _d("BR-FR-30_AFL", ("set", f"{_L1}/cac:DocumentReference/cbc:ID[@schemeID='AFL']", "")),
    _d("BR-FR-30_AVV", ("set", f"{_L1}/cac:DocumentReference/cbc:ID[@schemeID='AVV']", "")),
    _d("BR-FR-32-ID", ("set", f"{_CUS}/cac:PartyIdentification/cbc:ID[@schemeID='0002']", "26348054")),
    _d(
        "BR-FR-CO-07_BT-9",
        ("set", "/*/cbc:DueDate", "2025-12-01"),
    ),
    _d("BR-FR-CO-08_BT-23", ("set", "/*/cbc:InvoiceTypeCode", "386"), setup=(("set", _PROFILE, "B4"),)),
    *(
        _d(
            rule,
            edit,
            setup=(
                ("set", _PROFILE, "S2"),
                ("copy", f"{_TOT}/cbc:PrepaidAmount", f"{_TOT}/cbc:TaxInclusiveAmount"),
                ("set", f"{_TOT}/cbc:PayableAmount", "0.00"),
            ),
        )
        for rule, edit in (
            ("BR-FR-CO-09_BT-23-1", ("set", f"{_TOT}/cbc:PrepaidAmount", "1.00")),
            ("BR-FR-CO-09_BT-23-2", ("set", f"{_TOT}/cbc:PayableAmount", "5.00")),
            ("BR-FR-CO-09_BT-23-3", ("del", "/*/cbc:DueDate", "")),
        )
    ),
    _d("BR-FR-CO-10_BT-29-2", ("dup", f"{_SUP}/cac:PartyIdentification[cbc:ID/@schemeID='0224']", "")),
    _d("BR-FR-CO-10_BT-46-2", ("dup", f"{_CUS}/cac:PartyIdentification[cbc:ID/@schemeID='0224']", "")),
    *(
        _d(f"BR-FR-CO-10_{bt}-1", ("add", p, "<cac:PartyIdentification><cbc:ID>X1</cbc:ID></cac:PartyIdentification>"))
        for p, bt, _ in _PARTIES
    ),
    *(_d(f"BR-FR-CO-10_{bt}-2", ("dup", f"{p}/cac:PartyIdentification", "")) for p, bt, _ in _PARTIES),
    _d("BR-FR-CO-10_BT-71-1", ("add", "/*/cac:Delivery/cac:DeliveryLocation", "<cbc:ID>X1</cbc:ID>")),
    _d("BR-FR-CO-10_BT-71-2", ("dup", "/*/cac:Delivery/cac:DeliveryLocation/cbc:ID", "")),
    _d("BR-FR-CO-10_EXT-FR-FE-146-1", ("add", f"{_L1}/cac:Delivery/cac:DeliveryLocation", "<cbc:ID>X1</cbc:ID>")),
    _d("BR-FR-CO-10_EXT-FR-FE-146-2", ("dup", f"{_L1}/cac:Delivery/cac:DeliveryLocation/cbc:ID", "")),
    *(
        _d(
            rule,
            edit,
            setup=(
                (
                    "add",
                    _SUP,
                    "<cac:PartyIdentification><cbc:ID schemeID='0231'>970021556</cbc:ID></cac:PartyIdentification>",
                ),
                ("add", "/*", "<cbc:Note>#TXD#MEMBRE_ASSUJETTI_UNIQUE</cbc:Note>"),
                (
                    "add",
                    "/*",
                    "<cac:TaxRepresentativeParty><cac:PartyName><cbc:Name>Rep</cbc:Name></cac:PartyName><cac:PartyTaxScheme>"
                    "<cbc:CompanyID>FR78970021556</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>"
                    "</cac:PartyTaxScheme></cac:TaxRepresentativeParty>",
                ),
            ),
        )
        for rule, edit in (
            ("BR-FR-CO-14_BT-29-1", ("set", "/*/cbc:Note[starts-with(., '#TXD#')]", "#TXD#AUTRE")),
            ("BR-FR-CO-15_BT-29-1", ("del", "/*/cac:TaxRepresentativeParty", "")),
        )
    ),
    _d("BR-FR-DEC-01_BT-107", ("set", f"{_TOT}/cbc:AllowanceTotalAmount", "0.000")),
    _d("BR-FR-DEC-01_BT-108", ("set", f"{_TOT}/cbc:ChargeTotalAmount", "+0")),
    _d("BR-FR-DEC-01_BT-113", ("set", f"{_TOT}/cbc:PrepaidAmount", "0.005")),
    _d("BR-FR-DEC-01_BT-114", ("set", f"{_TOT}/cbc:PayableRoundingAmount", "0.001")),
    _d("BR-FR-DEC-01_BT-106", ("set", f"{_TOT}/cbc:LineExtensionAmount", "1,00")),
    _d("BR-FR-DEC-01_BT-109", ("set", f"{_TOT}/cbc:TaxExclusiveAmount", "1E3")),
    _d("BR-FR-DEC-01_BT-110", ("set", "/*/cac:TaxTotal/cbc:TaxAmount", "5387.610")),
    _d("BR-FR-DEC-01_BT-116", ("set", "/*/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount", "26938.060")),
    _d("BR-FR-DEC-01_BT-112", ("set", f"{_TOT}/cbc:TaxInclusiveAmount", "1.")),
    _d("BR-FR-DEC-01_BT-115", ("set", f"{_TOT}/cbc:PayableAmount", ".5")),
    _d("BR-FR-DEC-01_BT-92_BT-99", ("set", f"{_DOC_AC}/cbc:Amount", "0.001")),
    _d("BR-FR-DEC-01_BT-93_BT-100", ("set", f"{_DOC_AC}/cbc:BaseAmount", "100.000")),
    _d("BR-FR-DEC-01_BT-131", ("set", f"{_L1}/cbc:LineExtensionAmount", "181.200")),
    _d("BR-FR-DEC-01_BT-136_BT-141", ("set", f"{_L1}/cac:AllowanceCharge/cbc:Amount", ".5")),
    _d("BR-FR-DEC-01_BT-137_BT-142", ("set", f"{_L1}/cac:AllowanceCharge/cbc:BaseAmount", "1.")),
    _d("BR-FR-DEC-02_BT-129", ("set", f"{_L1}/cbc:InvoicedQuantity", "40.00001")),
    _d("BR-FR-DEC-02_BT-149", ("set", f"{_L1}/cac:Price/cbc:BaseQuantity", "1.00001")),
    _d("BR-FR-DEC-03_BT-146", ("set", f"{_L1}/cac:Price/cbc:PriceAmount", "-4.53")),
    _d("BR-FR-DEC-03_BT-147", ("set", f"{_L1}/cac:Price/cac:AllowanceCharge/cbc:Amount", "-1.00")),
    _d("BR-FR-DEC-03_BT-148", ("set", f"{_L1}/cac:Price/cac:AllowanceCharge/cbc:BaseAmount", "4.1234567")),
    # special billing frameworks (ProfileID M8/S8/B8 multi-vendor, S9/B9/M9 debts): "not(special) or ..."
    _d(
        "BR-FR-MV-03_EXT-FR-FE-181 BR-FR-MV-05_EXT-FR-FE-BG-12 BR-FR-MV-06_EXT-FR-FE-167 "
        "BR-FR-MV-07_BT-128 BR-FR-MV-08_BT-128 BR-FR-MV-09_EXT-FR-FE-181 BR-FR-MV-11_BT-128 BR-FR-MV-13_BT-3",
        ("set", _PROFILE, "M8"),
        ("set", "/*/cbc:InvoiceTypeCode", "389"),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-MV-01_EXT-FR-FE-163 BR-FR-MV-02_EXT-FR-FE-163",
        ("set", _PROFILE, "S8"),
        ("set", f"{_LREF}/cbc:DocumentStatusCode", ""),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-MV-03_EXT-FR-FE-164 BR-FR-MV-03_EXT-FR-FE-167 BR-FR-MV-03_EXT-FR-FE-177",
        ("set", _PROFILE, "B8"),
        ("del", f"{_L1}/cac:Item/cac:ManufacturerParty", ""),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-MV-03_EXT-FR-FE-182",
        ("set", _PROFILE, "M8"),
        ("add", "/*", "<cbc:TaxCurrencyCode>USD</cbc:TaxCurrencyCode>"),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-MV-03_BT-128_AFL BR-FR-MV-03_BT-128_AVV",
        ("set", _PROFILE, "M8"),
        ("set", f"{_L1}/cac:DocumentReference/cbc:ID", ""),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-MV-10_EXT-FR-FE-184",
        ("set", _PROFILE, "M8"),
        (
            "add",
            _L1,
            "<cbc:TaxInclusiveLineExtensionAmount currencyID='EUR'>1.00</cbc:TaxInclusiveLineExtensionAmount>",
        ),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-MV-12_BT-128",  # line 2 a second GROUP line with line 1's AFL sub-invoice number (twice on one line: XPTY0004)
        ("set", _PROFILE, "M8"),
        ("del", f"{_L2}/cac:BillingReference/cac:BillingReferenceLine", ""),
        ("set", f"{_L2}/cac:BillingReference/cac:InvoiceDocumentReference/cbc:DocumentStatusCode", "GROUP"),
        ("add", _L2, _docref("AFL", "AFL-L1", "DocumentReference")),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-MV-14-EXT-FR-FE-136 BR-FR-MV-14-EXT-FR-FE-138",
        ("set", _PROFILE, "M8"),
        setup=(*_SPECIAL_LINES, ("set", "/*/cbc:InvoiceTypeCode", "381")),
    ),
    _d(
        "BR-FR-BD-02_EXT-FR-FE-163 BR-FR-BD-02_BT-47 BR-FR-MV-BD_BT-3",
        ("set", _PROFILE, "B9"),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-BD-02_BT-30",
        ("set", _PROFILE, "M9"),
        ("set", f"{_L1}/cac:Item/cac:ManufacturerParty/cac:PartyLegalEntity/cbc:CompanyID", "111111111"),
        setup=_SPECIAL_LINES,
    ),
    _d(
        "BR-FR-BD-14-EXT-FR-FE-136 BR-FR-BD-14-EXT-FR-FE-138",
        ("set", _PROFILE, "S9"),
        setup=(*_SPECIAL_LINES, ("set", "/*/cbc:InvoiceTypeCode", "261")),
    ),
)

#: a French credit note: BR-FR-CO-03 is on cn:CreditNote only
UBL_CN_BASE = "gen:ubl-fr-cn:2l:s4"
UBL_CN: tuple[Directed, ...] = (
    _d(
        "BR-FR-CO-03_BT-3",
        ("del", "/*/cac:ContractDocumentReference", ""),
        setup=(
            ("set", "/*/cbc:CreditNoteTypeCode", "262"),
            (
                "add",
                "/*",
                "<cac:ContractDocumentReference><cbc:ID>CT-1</cbc:ID></cac:ContractDocumentReference>" + _PERIOD,
            ),
        ),
    ),
)
