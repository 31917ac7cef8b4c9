"""Differential conformance: Relais reports exactly the fatal rules the official CEN XSLT reports.

Mutants of valid generated invoices (a mandatory element removed, a total broken,
an unknown code, a wrong VAT category combination, ...) are judged twice: by
Relais (`DocumentJudge` with the corpus's CEN artefacts as its rules folder) and
by running the official XSLT from ../shared/corpus/schematron directly with
saxonche, independently of Relais's code. The sets of fatal rule ids must match.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import pytest
from lxml import etree

from flows.domain.model import Container
from relais import generate as gen
from tests.support.mutants import NS, Document, mutants_of

pytestmark = pytest.mark.slow

SVRL = "{http://purl.oclc.org/dsdl/svrl}"

Mutation = Callable[[etree._Element], bool]


def _remove(xpath: str) -> Mutation:
    def mutate(root: etree._Element) -> bool:
        found = root.xpath(xpath, namespaces=NS)
        for el in found:
            el.getparent().remove(el)
        return bool(found)

    return mutate


def _set(xpath: str, value: str) -> Mutation:
    def mutate(root: etree._Element) -> bool:
        found = root.xpath(xpath, namespaces=NS)
        for el in found[:1]:
            if isinstance(el, etree._Element):
                el.text = value
            else:  # an attribute result: set it on its parent
                el.getparent().set(el.attrname, value)
        return bool(found)

    return mutate


def _add(xpath: str, amount: str) -> Mutation:
    def mutate(root: etree._Element) -> bool:
        found = root.xpath(xpath, namespaces=NS)
        for el in found[:1]:
            el.text = f"{float(el.text) + float(amount):.2f}"
        return bool(found)

    return mutate


UBL_MUTATIONS: dict[str, Mutation] = {
    "no-customization-id": _remove("/*/cbc:CustomizationID"),
    "no-currency": _remove("/*/cbc:DocumentCurrencyCode"),
    "no-seller-name": _remove("/*/cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"),
    "no-seller-vat": _remove("/*/cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme"),
    "no-buyer-name": _remove("/*/cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"),
    "no-seller-country": _remove("/*/cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country"),
    "no-payment-means": _remove("/*/cac:PaymentMeans"),
    "no-tax-total": _remove("/*/cac:TaxTotal"),
    "no-line-name": _remove("(//cac:InvoiceLine | //cac:CreditNoteLine)[1]/cac:Item/cbc:Name"),
    "no-line-tax-category": _remove("(//cac:InvoiceLine | //cac:CreditNoteLine)[1]/cac:Item/cac:ClassifiedTaxCategory"),
    "payable-off": _add("/*/cac:LegalMonetaryTotal/cbc:PayableAmount", "1.00"),
    "tax-exclusive-off": _add("/*/cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount", "0.50"),
    "tax-inclusive-off": _add("/*/cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount", "-2.00"),
    "line-sum-off": _add("/*/cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "3.00"),
    "tax-amount-off": _add("/*/cac:TaxTotal/cbc:TaxAmount", "0.10"),
    "line-amount-off": _add("(//cac:InvoiceLine | //cac:CreditNoteLine)[1]/cbc:LineExtensionAmount", "5.00"),
    "unknown-currency": _set("/*/cbc:DocumentCurrencyCode", "EURO"),
    "unknown-type-code": _set("/*/cbc:InvoiceTypeCode | /*/cbc:CreditNoteTypeCode", "999"),
    "unknown-country": _set(
        "/*/cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode", "XX"
    ),
    "unknown-unit": _set("(//cbc:InvoicedQuantity | //cbc:CreditedQuantity)[1]/@unitCode", "ZZZ"),
    "unknown-payment-means": _set("/*/cac:PaymentMeans/cbc:PaymentMeansCode", "999"),
    "unknown-vat-category": _set("/*/cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID", "Q"),
    "standard-rate-zero": _set("/*/cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:Percent", "0"),
    "exempt-with-rate": _set("(//cac:ClassifiedTaxCategory)[1]/cbc:ID", "E"),
    "zero-rated-with-rate": _set("/*/cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID", "Z"),
    "currency-mismatch": _set("/*/cac:LegalMonetaryTotal/cbc:PayableAmount/@currencyID", "USD"),
}

_CII_SUM = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_CII_TAX = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
_CII_LINE = "(//ram:IncludedSupplyChainTradeLineItem)[1]"
CII_MUTATIONS: dict[str, Mutation] = {
    "no-guideline": _remove("//rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter"),
    "no-seller-vat": _remove("//ram:SellerTradeParty/ram:SpecifiedTaxRegistration"),
    "no-seller-country": _remove("//ram:SellerTradeParty/ram:PostalTradeAddress/ram:CountryID"),
    "no-buyer-name": _remove("//ram:BuyerTradeParty/ram:Name"),
    "no-payment-means": _remove("//ram:SpecifiedTradeSettlementPaymentMeans"),
    "no-header-tax": _remove(_CII_TAX),
    "no-line-name": _remove(f"{_CII_LINE}/ram:SpecifiedTradeProduct/ram:Name"),
    "no-line-tax": _remove(f"{_CII_LINE}/ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax"),
    "due-off": _add(f"{_CII_SUM}/ram:DuePayableAmount", "1.00"),
    "grand-total-off": _add(f"{_CII_SUM}/ram:GrandTotalAmount", "-2.00"),
    "tax-basis-off": _add(f"{_CII_SUM}/ram:TaxBasisTotalAmount", "0.50"),
    "line-total-off": _add(f"{_CII_SUM}/ram:LineTotalAmount", "3.00"),
    "tax-total-off": _add(f"{_CII_SUM}/ram:TaxTotalAmount", "0.10"),
    "line-amount-off": _add(
        f"{_CII_LINE}//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount", "5.00"
    ),
    "unknown-currency": _set("//ram:InvoiceCurrencyCode", "EURO"),
    "unknown-type-code": _set("//rsm:ExchangedDocument/ram:TypeCode", "999"),
    "unknown-country": _set("//ram:SellerTradeParty/ram:PostalTradeAddress/ram:CountryID", "XX"),
    "unknown-unit": _set(f"{_CII_LINE}//ram:BilledQuantity/@unitCode", "ZZZ"),
    "unknown-payment-means": _set("//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode", "999"),
    "unknown-vat-category": _set(f"{_CII_TAX}/ram:CategoryCode", "Q"),
    "standard-rate-zero": _set(f"{_CII_TAX}/ram:RateApplicablePercent", "0"),
    "exempt-with-rate": _set(f"{_CII_LINE}//ram:ApplicableTradeTax/ram:CategoryCode", "E"),
    "zero-rated-with-rate": _set(f"{_CII_TAX}/ram:CategoryCode", "Z"),
    "currency-mismatch": _set(f"{_CII_SUM}/ram:TaxTotalAmount/@currencyID", "USD"),
}

BASES = [
    (lines, seed, credit)
    for lines, seed, credit in ((1, 1, False), (3, 2, False), (7, 3, False), (2, 4, True), (12, 5, False))
]


def mutants(fmt: str) -> Iterator[tuple[str, bytes]]:
    """(name, XML) of each mutation that applies to each base invoice (tests/support/mutants.py's generator)."""
    mutations = UBL_MUTATIONS if fmt == "ubl" else CII_MUTATIONS
    recipients = gen.sample_directory()
    for lines, seed, credit in BASES:
        spec = next(gen.plan(1, lines, recipients, seed=seed, credit_note_ratio=1.0 if credit else 0.0))
        base = Document(f"{fmt}:{lines}l:s{seed}", fmt, None, False, gen.invoice_xml(fmt, spec))
        for mutant in mutants_of(base, mutations.items()):
            yield mutant.name, mutant.xml


class Official:
    """The CEN XSLT run directly with saxonche: no Relais code involved."""

    def __init__(self, corpus) -> None:
        from saxonche import PySaxonProcessor

        self.proc = PySaxonProcessor(license=False)
        self.xslt = self.proc.new_xslt30_processor()
        self.paths = {
            "ubl": corpus / "schematron/ubl/EN16931-UBL-validation.xslt",
            "cii": corpus / "schematron/cii/EN16931-CII-validation.xslt",
        }

    @functools.cache  # noqa: B019  # one instance per session, the cache is meant to live as long
    def _exe(self, fmt: str):
        return self.xslt.compile_stylesheet(stylesheet_file=str(self.paths[fmt]))

    def fatal(self, fmt: str, xml: bytes) -> set[str]:
        node = self.proc.parse_xml(xml_text=xml.decode("utf-8"))
        svrl = etree.fromstring(self._exe(fmt).transform_to_string(xdm_node=node).encode("utf-8"))
        return {a.get("id") for a in svrl.iter(f"{SVRL}failed-assert") if a.get("flag") == "fatal"}


@pytest.fixture(scope="module")
def official(corpus):
    return Official(corpus)


@pytest.fixture(scope="module")
def relais_judge(corpus):
    from validators.document import DocumentJudge, JudgeConfig

    return DocumentJudge(JudgeConfig(rules_dir=corpus / "schematron", platform_rules=False))


def test_there_are_enough_mutants():
    assert sum(1 for _ in mutants("ubl")) + sum(1 for _ in mutants("cii")) >= 200


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_relais_reports_the_official_fatal_rules(fmt, official, relais_judge):
    mismatches, fired, total = [], 0, 0
    for name, xml in mutants(fmt):
        total += 1
        expected = official.fatal(fmt, xml)
        verdict = relais_judge.judge(xml, Container.XML, keep_going=True)
        got = {e.rule for e in verdict.errors if e.fatal and e.rule != "XSD"}
        fired += bool(expected)
        if got != expected:
            mismatches.append((name, sorted(expected), sorted(got)))
    assert not mismatches, mismatches[:10]
    # The mutants must mean something: most of them break at least one fatal rule.
    assert fired >= 0.8 * total, (fired, total)
